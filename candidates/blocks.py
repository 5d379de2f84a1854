"""Exact-equality blocks of a hash embedding (identical perceptual hash = same photo)."""
from __future__ import annotations

import logging

import numpy as np
import polars as pl

log = logging.getLogger(__name__)


# A hash shared by more postings than this is a placeholder or stock photo, not a product:
# pairing all its postings would add block² pairs of mostly different products.
MAX_BLOCK = 200


def hash_block_pairs(values: np.ndarray, missing: np.ndarray,
                     max_block: int = MAX_BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """Ordered pairs (i, j), i ≠ j, of rows with equal non-missing hash values."""
    rows = np.flatnonzero(~missing)
    frame = pl.DataFrame({"i": rows, "h": values[rows]})
    sizes = frame.group_by("h").len()
    too_big = sizes.filter(pl.col("len") > max_block)
    if too_big.height:
        log.warning(f"{too_big.height} hash blocks with more than {max_block} postings were not "
                    f"paired ({int(too_big['len'].sum())} postings)")
        frame = frame.join(too_big.select("h"), on="h", how="anti")
    pairs = (frame.join(frame.rename({"i": "j"}), on="h")
             .filter(pl.col("i") != pl.col("j")))
    return pairs["i"].to_numpy().astype(np.int64), pairs["j"].to_numpy().astype(np.int64)
