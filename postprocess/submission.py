"""Match sets to the Kaggle submission table: posting_id, matches (self first, best first)."""
from __future__ import annotations

import numpy as np
import polars as pl


def to_submission(posting_ids: pl.Series, i: np.ndarray, j: np.ndarray,
                  score: np.ndarray) -> pl.DataFrame:
    """One row per posting in input order; ``matches`` lists itself, then its kept pairs by
    descending score (ties by row order)."""
    n = len(posting_ids)
    every = np.arange(n, dtype=np.int64)
    pairs = pl.DataFrame({
        "q": np.concatenate([every, i.astype(np.int64)]),
        "m": np.concatenate([every, j.astype(np.int64)]),
        "s": np.concatenate([np.full(n, np.inf, np.float64), score.astype(np.float64)]),
    })
    ids = pl.DataFrame({"m": every, "id": posting_ids})
    grouped = (pairs.join(ids, on="m", how="left")
               .sort(["q", "s", "m"], descending=[False, True, False])
               .group_by("q", maintain_order=True)
               .agg(pl.col("id").str.join(" ").alias("matches")))
    return pl.DataFrame({"posting_id": posting_ids, "matches": grouped["matches"]})
