"""Vectorised similarity of given row pairs (never an n × n matrix)."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

PAIR_CHUNK = 250_000


def pair_similarity(vectors, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Inner product of rows ``i`` and ``j`` (cosine, since rows are L2-normalised)."""
    out = np.empty(len(i), dtype=np.float32)
    sparse = sp.issparse(vectors)
    if sparse:
        vectors = sp.csr_matrix(vectors)
    for start in range(0, len(i), PAIR_CHUNK):
        a, b = i[start:start + PAIR_CHUNK], j[start:start + PAIR_CHUNK]
        if sparse:
            out[start:start + len(a)] = np.asarray(
                vectors[a].multiply(vectors[b]).sum(axis=1)).ravel()
        else:
            out[start:start + len(a)] = np.einsum("ij,ij->i", vectors[a], vectors[b])
    return out


def reverse_positions(i: np.ndarray, j: np.ndarray, n: int) -> np.ndarray:
    """Position of pair (j, i) for every pair (i, j) of a table sorted by (i, j) and closed under
    symmetry, as :func:`build_candidates` makes it; -1 where the reverse pair is absent."""
    keys = i.astype(np.int64) * n + j
    reverse = j.astype(np.int64) * n + i
    position = np.searchsorted(keys, reverse)
    position = np.minimum(position, len(keys) - 1)
    return np.where(keys[position] == reverse, position, -1)
