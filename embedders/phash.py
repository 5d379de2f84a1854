"""Perceptual hashes as a 'hash' embedding: one uint64 per posting."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import polars as pl

from .base import Embedder, Embedding

log = logging.getLogger(__name__)


class PhashEmbedder(Embedder):
    """Reads ``image_phash``; where the column is absent and an images folder is given, computes
    the hash from the image with imagehash (same 64-bit DCT hash the Shopee data uses)."""

    name = "phash"
    kind = "hash"
    modality = "image"
    input_columns = ("posting_id", "image", "image_phash")
    per_posting = True

    def __init__(self, hash_size: int = 8):
        self.hash_size = hash_size

    def embed(self, postings: pl.DataFrame, images_dir: Path | None = None) -> Embedding:
        n = postings.height
        if "image_phash" in postings.columns:
            hexes = postings["image_phash"]
            missing = hexes.is_null().to_numpy()
            return Embedding(self.name, self.kind, hex_to_uint64(hexes.fill_null("0" * 16)), missing,
                             modality=self.modality)
        if "image" in postings.columns and images_dir is not None:
            return self._hash_images(postings["image"].to_list(), Path(images_dir))
        return Embedding(self.name, self.kind, np.zeros(n, np.uint64), np.ones(n, dtype=bool),
                         modality=self.modality)

    def _hash_images(self, names: list[str | None], images_dir: Path) -> Embedding:
        import imagehash
        from PIL import Image, UnidentifiedImageError

        from common.console import track

        values = np.zeros(len(names), np.uint64)
        missing = np.ones(len(names), dtype=bool)
        for row, name in enumerate(track(names, "phash images")):
            if name is None:
                continue
            try:
                with Image.open(images_dir / name) as image:
                    digest = imagehash.phash(image, hash_size=self.hash_size)
            except (OSError, UnidentifiedImageError, ValueError):
                continue
            values[row] = np.uint64(int(str(digest), 16))
            missing[row] = False
        unreadable = int(sum(n is not None for n in names) - (~missing).sum())
        if unreadable:
            log.warning(f"{unreadable} images missing or unreadable under {images_dir}; "
                        "their phash features are null")
        return Embedding(self.name, self.kind, values, missing, modality=self.modality)


def hex_to_uint64(hexes: pl.Series) -> np.ndarray:
    """16-hex-digit strings to uint64, in one pass over the joined bytes."""
    raw = bytes.fromhex("".join(hexes.to_list()))
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bitwise Hamming distance of two uint64 arrays."""
    return np.bitwise_count(np.bitwise_xor(a, b)).astype(np.int16)
