"""Generated catalogs: a small deterministic one for the README's first command and the tests,
and real catalogs grown to any size by reworded copies, for the scale benchmarks.

``generate_catalog`` is generated, not real: products are brand × item × size combinations, each
posted several times with reworded titles (Indonesian and English filler, reordered words,
typos, unit spellings) and perceptual hashes that differ by a few bits, or entirely (another
photo). Sizes make hard negatives: "… 100 ml" and "… 250 ml" of one brand are different
products. ``reworded_catalog`` grows a real catalog (Shopee train) with reworded copies.
"""
from __future__ import annotations

import numpy as np
import polars as pl

_BRANDS = ["wardah", "emina", "maybelline", "pigeon", "samsung", "xiaomi", "indomie", "lemonilo",
           "nivea", "garnier", "pepsodent", "baygon", "philips", "miniso", "anker", "logitech",
           "sariayu", "makarizo", "zwitsal", "kahf", "scarlett", "somethinc", "avoskin", "wipro"]
_ITEMS = [("serum wajah", "ml"), ("sabun cair", "ml"), ("lip cream", "gr"), ("powerbank", "mah"),
          ("kabel data usb", "m"), ("mie instan", "gr"), ("body lotion", "ml"), ("shampoo", "ml"),
          ("sikat gigi", "pcs"), ("lampu led", "w"), ("flashdisk", "gb"), ("mouse wireless", "pcs"),
          ("kaos polos", "size"), ("botol minum", "ml"), ("masker wajah", "gr"), ("tisu basah", "lembar")]
_SIZES = {"ml": ["50 ml", "100 ml", "250 ml", "500ml"], "gr": ["10 gr", "30g", "100 gram", "1 kg"],
          "mah": ["5000 mAh", "10000mAh", "20000 mah"], "m": ["1 m", "2 meter", "3m"],
          "pcs": ["1 pcs", "3 pcs", "isi 12 pcs"], "w": ["5 watt", "10w", "18 w"],
          "gb": ["16gb", "32 GB", "64 GB", "128gb"], "size": ["size s", "size m", "size xl"],
          "lembar": ["10 lembar", "50 lembar", "isi 80"]}
_FILLER = ["original", "ori", "murah", "promo", "ready stock", "bpom", "100% asli", "cod",
           "best seller", "new", "grosir", "free ongkir", "termurah", "hot sale", "import"]
_COLOURS = ["hitam", "putih", "pink", "biru", "merah", "black", "white", "navy"]


def generate_catalog(n_products: int = 600, seed: int = 0, labelled: bool = True,
                     id_prefix: str = "demo") -> pl.DataFrame:
    """Postings with ``posting_id``, ``title``, ``image_phash`` and (optionally) ``label_group``."""
    rng = np.random.default_rng(seed)
    rows: list[tuple[str, str, str, str]] = []
    for product in range(n_products):
        brand = _BRANDS[rng.integers(len(_BRANDS))]
        item, unit = _ITEMS[rng.integers(len(_ITEMS))]
        size = _SIZES[unit][rng.integers(len(_SIZES[unit]))]
        colour = _COLOURS[rng.integers(len(_COLOURS))] if rng.random() < 0.4 else ""
        base_hash = int(rng.integers(0, 2**63))
        n_posts = int(min(2 + rng.geometric(0.45) - 1, 12))
        for _ in range(n_posts):
            words = [brand, *item.split(), size, colour]
            if rng.random() < 0.5:
                words.insert(int(rng.integers(len(words) + 1)), _FILLER[rng.integers(len(_FILLER))])
            if rng.random() < 0.3:
                words.append(_FILLER[rng.integers(len(_FILLER))])
            if rng.random() < 0.3:
                cut = int(rng.integers(1, len(words)))
                words = words[cut:] + words[:cut]
            title = " ".join(w for w in words if w)
            if rng.random() < 0.2:
                position = int(rng.integers(len(title)))
                title = title[:position] + title[position + 1:]
            if rng.random() < 0.5:
                title = title.title()
            if rng.random() < 0.25:
                photo = int(rng.integers(0, 2**63))  # the seller took another photo
            else:
                flips = rng.choice(64, size=int(rng.integers(0, 5)), replace=False)
                photo = base_hash ^ int(sum(1 << int(b) for b in flips))
            rows.append((f"{id_prefix}_{len(rows):06d}", title, f"{photo:016x}", f"p{product:05d}"))
    frame = pl.DataFrame(rows, schema=["posting_id", "title", "image_phash", "label_group"],
                         orient="row")
    return frame if labelled else frame.drop("label_group")


_COPY_FILLERS = ["original", "murah", "promo", "ready", "termurah", "new", "best", "seller"]


def reworded_catalog(postings: pl.DataFrame, size: int, seed: int = 0) -> pl.DataFrame:
    """``postings`` (with ``image_phash`` and ``label_group``) followed by reworded copies of
    them until the catalog holds ``size`` rows (cut there). Copy c (1, 2, …) is seeded with
    ``seed + c``, so a larger catalog starts with a smaller one's rows."""
    parts, rows = [postings], postings.height
    while rows < size:
        parts.append(reworded_copy(postings, seed + len(parts), f"_copy{len(parts)}"))
        rows += postings.height
    return pl.concat(parts).head(size)


def reworded_copy(postings: pl.DataFrame, seed: int, suffix: str) -> pl.DataFrame:
    """A copy of ``postings`` with ``suffix`` on ids and label groups, titles reworded (a word
    dropped, two swapped, a filler word appended) and up to three phash bits flipped."""
    rng = np.random.default_rng(seed)
    titles = []
    for title in postings["title"].to_list():
        words = title.split()
        if len(words) > 3:
            del words[rng.integers(len(words))]
        if len(words) > 2:
            a, b = rng.choice(len(words), 2, replace=False)
            words[a], words[b] = words[b], words[a]
        words.append(_COPY_FILLERS[rng.integers(len(_COPY_FILLERS))])
        titles.append(" ".join(words))
    hashes = np.array([int(h, 16) for h in postings["image_phash"].to_list()], dtype=np.uint64)
    for _ in range(3):
        flip = rng.random(len(hashes)) < 0.6
        bits = rng.integers(0, 64, len(hashes)).astype(np.uint64)
        hashes[flip] ^= np.left_shift(np.uint64(1), bits[flip])
    return postings.with_columns(
        (pl.col("posting_id") + suffix).alias("posting_id"),
        pl.Series("title", titles),
        pl.Series("image_phash", [f"{h:016x}" for h in hashes.tolist()]),
        (pl.col("label_group") + suffix).alias("label_group"))
