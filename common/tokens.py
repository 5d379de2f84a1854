"""Binary posting × token matrices: the shared-token structure behind unit, number and code
features and the ``codes`` candidate blocks."""
from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp


def token_matrix(rows: np.ndarray, tokens: pl.Series, n: int) -> sp.csr_matrix:
    """Row r has a 1 in the column of each token it holds (columns: the sorted distinct
    tokens); a token held twice by one row counts once."""
    if len(rows) == 0:
        return sp.csr_matrix((n, 1), dtype=np.float32)
    _, codes = np.unique(tokens.to_numpy(), return_inverse=True)
    matrix = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, codes)),
                           shape=(n, int(codes.max()) + 1))
    matrix.data[:] = 1  # duplicates summed by the constructor count once
    return matrix
