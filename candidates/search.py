"""Exact top-K neighbour search: faiss inner product for dense vectors, chunked sparse products
for sparse ones. Both return ``(index, similarity)`` arrays of shape n × k, best first, without
the query itself; slots past a row's last neighbour hold index -1 and similarity -inf."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

# Query rows per sparse product: bounds the dense chunk × n block to ~chunk × n × 4 bytes.
SPARSE_CHUNK = 2048


def top_k(vectors, k: int, missing: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    n = vectors.shape[0]
    k_eff = max(0, min(k, n - 1))
    if k_eff == 0:
        return np.full((n, k), -1, np.int64), np.full((n, k), -np.inf, np.float32)
    if sp.issparse(vectors):
        index, sims = _top_k_sparse(sp.csr_matrix(vectors, dtype=np.float32), k_eff)
    else:
        index, sims = _top_k_dense(np.ascontiguousarray(vectors, dtype=np.float32), k_eff)
    if missing is not None and missing.any():
        # Rows without a vector have no neighbours and are nobody's neighbour.
        drop = missing[np.clip(index, 0, None)] | (index < 0)
        drop[missing] = True
        index, sims = _compact(np.where(drop, -1, index), np.where(drop, -np.inf, sims))
    if k_eff < k:
        pad = k - k_eff
        index = np.pad(index, ((0, 0), (0, pad)), constant_values=-1)
        sims = np.pad(sims, ((0, 0), (0, pad)), constant_values=-np.inf)
    return index, sims


def _top_k_dense(vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    import faiss

    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    sims, found = index.search(vectors, k + 1)
    return _drop_self(found.astype(np.int64), sims, k)


def _top_k_sparse(matrix: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    n = matrix.shape[0]
    transposed = matrix.T.tocsc()
    found = np.empty((n, k + 1), dtype=np.int64)
    sims = np.empty((n, k + 1), dtype=np.float32)
    for start in range(0, n, SPARSE_CHUNK):
        stop = min(start + SPARSE_CHUNK, n)
        block = (matrix[start:stop] @ transposed).toarray()
        part = np.argpartition(-block, k, axis=1)[:, :k + 1]
        part_sims = np.take_along_axis(block, part, axis=1)
        # Sort by similarity, then by index, so ties come out the same on every run.
        order = np.lexsort((part, -part_sims), axis=1)
        found[start:stop] = np.take_along_axis(part, order, axis=1)
        sims[start:stop] = np.take_along_axis(part_sims, order, axis=1)
    return _drop_self(found, sims, k)


def _drop_self(found: np.ndarray, sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Remove each row's own index (wherever ties put it) and keep k neighbours."""
    rows = np.arange(found.shape[0])[:, None]
    is_self = found == rows
    # Where self is absent (exact duplicates crowded it out), drop the last slot instead.
    no_self = ~is_self.any(axis=1)
    is_self[no_self, -1] = True
    keep = ~is_self
    return found[keep].reshape(-1, k), sims[keep].reshape(-1, k).astype(np.float32)


def _compact(index: np.ndarray, sims: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Move the valid (index >= 0) slots of each row to the front, keeping their order."""
    order = np.argsort(index < 0, axis=1, kind="stable")
    return np.take_along_axis(index, order, axis=1), np.take_along_axis(sims, order, axis=1)
