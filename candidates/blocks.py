"""Blocks: exact-equality blocks of a hash embedding (identical perceptual hash = same photo)
and the shared keys of a blocks embedding (the same model code)."""
from __future__ import annotations

import logging

import numpy as np
import polars as pl

log = logging.getLogger(__name__)


# A hash shared by more postings than this is a placeholder or stock photo, not a product:
# pairing all its postings would add block² pairs of mostly different products.
MAX_BLOCK = 200
# A code shared by more postings than this names a series or a part of many products (a
# product's postings are at most 50 in Shopee's rule).
MAX_KEY_BLOCK = 50


def hash_block_pairs(values: np.ndarray, missing: np.ndarray,
                     max_block: int = MAX_BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """Ordered pairs (i, j), i ≠ j, of rows with equal non-missing hash values."""
    rows = np.flatnonzero(~missing)
    return _block_pairs(pl.DataFrame({"i": rows, "h": values[rows]}), max_block, "hash")


def shared_key_pairs(matrix, max_block: int = MAX_KEY_BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """Ordered pairs (i, j), i ≠ j, of rows of a 0/1 CSR matrix with a column in common (a pair
    sharing several appears once per column)."""
    coo = matrix.tocoo()
    frame = pl.DataFrame({"i": coo.row.astype(np.int64), "h": coo.col.astype(np.int64)})
    return _block_pairs(frame, max_block, "key")


def _block_pairs(frame: pl.DataFrame, max_block: int, what: str
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of the rows ``i`` with equal block ``h``, blocks over ``max_block`` rows left out."""
    sizes = frame.group_by("h").len()
    too_big = sizes.filter(pl.col("len") > max_block)
    if too_big.height:
        log.warning(f"{too_big.height} {what} blocks with more than {max_block} postings were not "
                    f"paired ({int(too_big['len'].sum())} postings)")
        frame = frame.join(too_big.select("h"), on="h", how="anti")
    pairs = (frame.join(frame.rename({"i": "j"}), on="h")
             .filter(pl.col("i") != pl.col("j")))
    return pairs["i"].to_numpy().astype(np.int64), pairs["j"].to_numpy().astype(np.int64)
