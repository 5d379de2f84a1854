"""Exact top-K neighbour search by blocked inner products.

A block of query rows is multiplied with every row at once. Dense blocks (a matmul into a
reused buffer, on CUDA where present) go to torch's multi-threaded ``topk``: exact, and on 2 CPU
cores 2.7x faster than faiss's ``IndexFlatIP`` at n = 70,000, k = 50, 256 dims (its per-query
heaps dominate at large k). Sparse blocks stay sparse: a product row holds only the rows that
share a term, and a per-row heap picks the best of those. Only one block of similarities exists
at a time.

``top_k`` returns ``(index, similarity)`` arrays of shape n × k, best first and ties in index
order, without the query itself (every run gives the same lists; where more rows tie at the k-th
place than fit, sparse search keeps the lowest-numbered, dense search torch's choice); slots past
a row's last neighbour hold index -1 and similarity -inf. A sparse row's neighbours share at
least one term with it (similarity > 0): zero-similarity rows are not neighbours.
"""
from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp

# Query rows per block: a dense block × n float32 similarity matrix is ~BLOCK_BYTES at most;
# sparse blocks take as many rows (their product holds only the overlaps, far less).
BLOCK_BYTES = 512 * 2**20


def top_k(vectors, k: int, missing: np.ndarray | None = None,
          device: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` most similar other rows by inner product (cosine for unit rows)."""
    n = vectors.shape[0]
    k_eff = max(0, min(k, n - 1))
    if k_eff == 0:
        return np.full((n, k), -1, np.int64), np.full((n, k), -np.inf, np.float32)
    if sp.issparse(vectors):
        index, sims = _top_k_sparse(sp.csr_matrix(vectors, dtype=np.float32), k_eff)
    else:
        index, sims = _top_k_dense(np.ascontiguousarray(vectors, dtype=np.float32), k_eff,
                                   device)
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


def _block_rows(n: int) -> int:
    return int(max(64, min(n, BLOCK_BYTES // (4 * max(n, 1)))))


def _top_k_dense(vectors: np.ndarray, k: int, device: str | None) -> tuple[np.ndarray, np.ndarray]:
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    n = len(vectors)
    every = torch.from_numpy(vectors).to(device)
    found = np.empty((n, k + 1), dtype=np.int64)
    sims = np.empty((n, k + 1), dtype=np.float32)
    block = _block_rows(n)
    buffer = torch.empty((block, n), dtype=torch.float32, device=device)
    with torch.inference_mode():
        for start in range(0, n, block):
            stop = min(start + block, n)
            product = torch.mm(every[start:stop], every.T, out=buffer[:stop - start])
            values, index = torch.topk(product, k + 1, dim=1)
            found[start:stop] = index.cpu().numpy()
            sims[start:stop] = values.cpu().numpy()
    return _drop_self(*_order(found, sims), k)


def _top_k_sparse(matrix: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    n = matrix.shape[0]
    transposed = matrix.T.tocsc()
    found = np.empty((n, k + 1), dtype=np.int64)
    sims = np.empty((n, k + 1), dtype=np.float32)
    block = _block_rows(n)
    for start in range(0, n, block):
        stop = min(start + block, n)
        product = (matrix[start:stop] @ transposed).tocsr()
        found[start:stop], sims[start:stop] = _csr_row_top_k(
            product.indptr.astype(np.int64), product.indices.astype(np.int64),
            product.data.astype(np.float32, copy=False), k + 1)
    return _drop_self(*_order(found, sims), k)


@numba.njit(parallel=True, cache=True)
def _csr_row_top_k(indptr, indices, data, k):  # pragma: no cover (compiled)
    """Each CSR row's ``k`` largest positive entries (ties: lower column), through a size-k
    min-heap: a product row holds a few thousand overlaps, not n columns, so this reads only
    those (the dense top-k of the whole row was 10x slower). Unused slots: -1 and -inf."""
    rows = len(indptr) - 1
    found = np.full((rows, k), -1, dtype=np.int64)
    sims = np.full((rows, k), -np.inf, dtype=np.float32)
    for r in numba.prange(rows):
        values, columns = sims[r], found[r]  # row r's heap, worst entry at the root
        size = 0
        for x in range(indptr[r], indptr[r + 1]):
            if data[x] <= 0:
                continue
            if size < k:
                _sift_up(values, columns, size, data[x], indices[x])
                size += 1
            elif _worse(values[0], columns[0], data[x], indices[x]):
                _sift_down(values, columns, data[x], indices[x])
    return found, sims


@numba.njit(cache=True)
def _sift_up(values, columns, position, value, column):  # pragma: no cover (compiled)
    """Add an entry at ``position`` (the heap's end), moving it up past better parents."""
    while position > 0:
        parent = (position - 1) // 2
        if not _worse(value, column, values[parent], columns[parent]):
            break
        values[position], columns[position] = values[parent], columns[parent]
        position = parent
    values[position], columns[position] = value, column


@numba.njit(cache=True)
def _sift_down(values, columns, value, column):  # pragma: no cover (compiled)
    """Replace the root (the worst entry) and move the new entry down past worse children."""
    position, size = 0, len(values)
    while 2 * position + 1 < size:
        child = 2 * position + 1
        if child + 1 < size and _worse(values[child + 1], columns[child + 1],
                                       values[child], columns[child]):
            child += 1
        if not _worse(values[child], columns[child], value, column):
            break
        values[position], columns[position] = values[child], columns[child]
        position = child
    values[position], columns[position] = value, column


@numba.njit(cache=True, inline="always")
def _worse(value_a, index_a, value_b, index_b):  # pragma: no cover (compiled)
    """Whether entry a ranks below entry b: lower value, or equal value and higher index."""
    return value_a < value_b or (value_a == value_b and index_a > index_b)


def _order(found: np.ndarray, sims: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort each row by similarity, then by index (-1 slots last), so ties come out the same on
    every run and device."""
    order = np.lexsort((np.where(found < 0, np.iinfo(np.int64).max, found), -sims), axis=1)
    return np.take_along_axis(found, order, axis=1), np.take_along_axis(sims, order, axis=1)


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
