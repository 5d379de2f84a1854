"""Blocks: the near-identical hashes of a hash embedding (a perceptual hash equal, or a few bits
apart: the same photo, re-encoded, resized or re-cropped) and the shared keys of a blocks
embedding (the same model code)."""
from __future__ import annotations

import logging

import numpy as np
import polars as pl

from common.pairs import pair_keys, split_keys, unique_keys

log = logging.getLogger(__name__)


# A hash shared by more postings than this is a placeholder or stock photo, not a product:
# pairing all its postings would add block² pairs of mostly different products.
MAX_BLOCK = 200
# A code shared by more postings than this names a series or a part of many products (a
# product's postings are at most 50 in Shopee's rule).
MAX_KEY_BLOCK = 50
# Hashes this many bits apart or fewer pair their postings. On Shopee train, radius 2 adds 6,616
# ordered pairs (29,296 against 22,680 equal ones) of which 91 % are matches; radius 4 would add
# half as many matches again, 81 % of its pairs, but its 13-bit pigeonhole segments give
# ~n / 8,192 rows per segment value: 120 per block on a million postings.
HASH_RADIUS = 2


def hash_block_pairs(values: np.ndarray, missing: np.ndarray, max_block: int = MAX_BLOCK,
                     radius: int = HASH_RADIUS) -> tuple[np.ndarray, np.ndarray]:
    """Ordered pairs (i, j), i ≠ j, of non-missing rows whose 64-bit hashes differ in at most
    ``radius`` bits. Hashes shared by more than ``max_block`` rows are left out (stock photos).

    Pigeonhole: two hashes at most ``radius`` bits apart agree exactly on at least one of
    ``radius + 1`` disjoint bit segments, so the near pairs of distinct hashes are among those
    sharing a segment value: one block join per segment, kept where the whole hashes are close.
    A segment value shared by more than ``max_block`` distinct hashes is not joined (bounded
    work; only a near pair that no other segment finds is lost).
    """
    rows = np.flatnonzero(~missing)
    values = np.asarray(values, np.uint64)
    members = _without_big_blocks(pl.DataFrame({"i": rows, "h": values[rows]}), max_block,
                                  "hash")
    pairs = [_pairs_within_blocks(members)]
    hashes = members["h"].unique().sort().to_numpy()
    near = [np.empty(0, np.int64)]
    for shift, width in _segments(64, radius + 1) if radius > 0 else []:
        segment = (hashes >> np.uint64(shift)) & np.uint64((1 << width) - 1)
        a, b = _block_pairs(pl.DataFrame({"i": np.arange(len(hashes)), "h": segment}),
                            max_block, None)
        close = (a < b) & (np.bitwise_count(hashes[a] ^ hashes[b]) <= radius)
        near.append(pair_keys(a[close], b[close], len(hashes)))
    near = unique_keys(np.concatenate(near))
    if len(near):
        # Every posting of the one hash with every posting of the other, both ways.
        a, b = (hashes[side] for side in split_keys(near, len(hashes)))
        links = pl.DataFrame({"h": np.concatenate([a, b]), "g": np.concatenate([b, a])})
        pairs.append(links.join(members, on="h")
                     .join(members.rename({"h": "g", "i": "j"}), on="g").select("i", "j"))
    pairs = pl.concat(pairs)
    return pairs["i"].to_numpy().astype(np.int64), pairs["j"].to_numpy().astype(np.int64)


def _segments(bits: int, parts: int) -> list[tuple[int, int]]:
    """(shift, width) of ``parts`` disjoint segments covering ``bits`` bits, widths within one."""
    widths = [bits // parts + (p < bits % parts) for p in range(parts)]
    return [(sum(widths[:p]), w) for p, w in enumerate(widths)]


def shared_key_pairs(matrix, max_block: int = MAX_KEY_BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """Ordered pairs (i, j), i ≠ j, of rows of a 0/1 CSR matrix with a column in common (a pair
    sharing several appears once per column)."""
    coo = matrix.tocoo()
    frame = pl.DataFrame({"i": coo.row.astype(np.int64), "h": coo.col.astype(np.int64)})
    return _block_pairs(frame, max_block, "key")


def _block_pairs(frame: pl.DataFrame, max_block: int, what: str | None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of the rows ``i`` with equal block ``h``, blocks over ``max_block`` rows left out."""
    pairs = _pairs_within_blocks(_without_big_blocks(frame, max_block, what))
    return pairs["i"].to_numpy().astype(np.int64), pairs["j"].to_numpy().astype(np.int64)


def _pairs_within_blocks(frame: pl.DataFrame) -> pl.DataFrame:
    """The pairs ``i``, ``j`` (i ≠ j) of rows with equal block ``h``."""
    return (frame.join(frame.rename({"i": "j"}), on="h").filter(pl.col("i") != pl.col("j"))
            .select("i", "j"))


def _without_big_blocks(frame: pl.DataFrame, max_block: int, what: str | None) -> pl.DataFrame:
    """``frame`` less the rows of blocks ``h`` over ``max_block`` rows; a warning names ``what``
    the blocks are (None: expected, no warning)."""
    sizes = frame.group_by("h").len()
    too_big = sizes.filter(pl.col("len") > max_block)
    if not too_big.height:
        return frame
    if what is not None:
        log.warning(f"{too_big.height} {what} blocks with more than {max_block} postings were not "
                    f"paired ({int(too_big['len'].sum())} postings)")
    return frame.join(too_big.select("h"), on="h", how="anti")
