"""Top-K neighbour search by inner products: exact, or approximate for large catalogs.

Dense vectors: a block of query rows is multiplied with every row at once (a matmul into a
reused buffer, on CUDA where present), then a per-row heap on every core (torch's ``topk`` on
CUDA) picks the best: exact, and on 2 CPU cores several times faster than faiss's
``IndexFlatIP`` at n = 70,000, k = 50 (its per-query heaps dominate at large k). Only one block
of similarities exists at a time. Approximate: a faiss IVF index (:mod:`candidates.ann`).
Sparse vectors: each row walks an inverted index (the rows that share each of its terms) into a
dense accumulator, and a per-row heap picks the best of the rows it touched; no product is
formed. Approximate: the same walk with the work per query bounded (frequent terms' posting
lists are only partly walked; the similarities stay exact).

``top_k`` returns ``(index, similarity)`` arrays of shape n × k, best first and ties in index
order, without the query itself (every run gives the same lists; where more rows tie at the k-th
place than fit, the lowest-numbered are kept, or torch's or faiss's choice); slots past
a row's last neighbour hold index -1 and similarity -inf. A sparse row's neighbours share at
least one term with it (similarity > 0): zero-similarity rows are not neighbours.
"""
from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp

# Query rows per dense block: a block × n float32 similarity matrix is ~BLOCK_BYTES at most.
BLOCK_BYTES = 512 * 2**20
SEARCH_METHODS = ("exact", "ann", "auto")
# Rows from which `auto` searches approximately (README, "Approximate search": ann is faster
# from about 35,000 rows for dense vectors and 70,000 for sparse ones; below 100,000 exact search
# takes seconds and loses nothing).
AUTO_ANN_FROM = {"dense": 100_000, "sparse": 100_000}
# The approximate sparse search sums whole posting lists of at most cap = n / SPARSE_CAP_SHARE
# rows, within [SPARSE_CAP_MIN, SPARSE_CAP_MAX], and reads at most max(4·k, cap / 32) rows of a
# longer one. The upper bound keeps a query's work from growing with n (with cap n / 64 the
# million-posting walk took 2,024 s, with 2,048 217 s at recall 0.979; README, "Approximate
# search").
SPARSE_CAP_MIN = 1000
SPARSE_CAP_MAX = 2048
SPARSE_CAP_SHARE = 64


def top_k(vectors, k: int, missing: np.ndarray | None = None, device: str | None = None,
          method: str = "exact") -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` most similar other rows by inner product (cosine for unit rows)."""
    index, sims, _ = find_neighbours(vectors, k, missing, method, device)
    return index, sims


def search_method(method: str, vectors) -> str:
    """``exact`` or ``ann`` for ``method`` (``auto``: ann from the measured crossover on)."""
    if method not in SEARCH_METHODS:
        raise ValueError(f"search method {method!r} is not one of {', '.join(SEARCH_METHODS)}")
    if method != "auto":
        return method
    kind = "sparse" if sp.issparse(vectors) else "dense"
    return "ann" if vectors.shape[0] >= AUTO_ANN_FROM[kind] else "exact"


def find_neighbours(vectors, k: int, missing: np.ndarray | None = None, method: str = "exact",
                    device: str | None = None, queries: tuple[int, int] | None = None
                    ) -> tuple[np.ndarray, np.ndarray, dict]:
    """:func:`top_k` by ``method`` (exact, ann or auto), and how it searched as plain data:
    ``method`` (exact or ann) and, for ann, the index parameters. ``queries`` (start, stop)
    limits an exact search to those rows' lists, the same as a whole search gives them: one
    shard of the queries (:func:`query_shards`), a Dask task."""
    n = vectors.shape[0]
    method = search_method(method, vectors)
    if queries is not None and method != "exact":
        raise ValueError("only an exact search is split into query shards")
    first, last = queries or (0, n)
    k_eff = max(0, min(k, n - 1))
    info: dict = {"method": method}
    if k_eff == 0:
        return (np.full((last - first, k), -1, np.int64),
                np.full((last - first, k), -np.inf, np.float32), info)
    if sp.issparse(vectors):
        matrix = sp.csr_matrix(vectors, dtype=np.float32)
        if method == "ann":
            info.update(bounded_walk(n, k_eff))
        index, sims = _top_k_sparse(matrix, k_eff, info.get("df_cap"), info.get("prefix"),
                                    queries)
    elif method == "ann":
        index, sims, params = _ann_dense(np.asarray(vectors, dtype=np.float32), k_eff, missing)
        info.update(params)
    else:
        index, sims = _top_k_dense(np.ascontiguousarray(vectors, dtype=np.float32), k_eff,
                                   device, queries)
    if missing is not None and missing.any():
        # Rows without a vector have no neighbours and are nobody's neighbour.
        drop = missing[np.clip(index, 0, None)] | (index < 0)
        drop[missing[first:last]] = True
        index, sims = _compact(np.where(drop, -1, index), np.where(drop, -np.inf, sims))
    if k_eff < k:
        pad = k - k_eff
        index = np.pad(index, ((0, 0), (0, pad)), constant_values=-1)
        sims = np.pad(sims, ((0, 0), (0, pad)), constant_values=-np.inf)
    return index, sims, info


def _ann_dense(vectors: np.ndarray, k: int, missing: np.ndarray | None
               ) -> tuple[np.ndarray, np.ndarray, dict]:
    """IVF search of the rows that have a vector (:mod:`candidates.ann`), mapped back."""
    from .ann import ivf_search

    rows = np.arange(len(vectors)) if missing is None else np.flatnonzero(~missing)
    found = np.full((len(vectors), k + 1), -1, dtype=np.int64)
    sims = np.full((len(vectors), k + 1), -np.inf, dtype=np.float32)
    if len(rows) < 2:
        return found[:, :k], sims[:, :k], {}
    hits, values, params = ivf_search(vectors[rows], min(k + 1, len(rows)))
    found[rows, :hits.shape[1]] = np.where(hits >= 0, rows[np.maximum(hits, 0)], -1)
    sims[rows, :hits.shape[1]] = values
    return *_drop_self(*_order(found, sims), k), params


def _block_rows(n: int) -> int:
    return int(max(64, min(n, BLOCK_BYTES // (4 * max(n, 1)))))


def query_shards(vectors, shards: int) -> list[tuple[int, int]]:
    """About ``shards`` row ranges covering the queries, for :func:`find_neighbours`'
    ``queries``: whole dense blocks, so that each shard multiplies the very blocks a whole
    search does."""
    n = vectors.shape[0]
    step = max(1, -(-n // max(shards, 1)))
    if not sp.issparse(vectors):
        block = _block_rows(n)
        step = -(-step // block) * block
    return [(start, min(start + step, n)) for start in range(0, n, step)]


def _top_k_dense(vectors: np.ndarray, k: int, device: str | None,
                 queries: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    n = len(vectors)
    first, last = queries or (0, n)
    every = torch.from_numpy(vectors).to(device)
    found = np.empty((last - first, k + 1), dtype=np.int64)
    sims = np.empty((last - first, k + 1), dtype=np.float32)
    block = _block_rows(n)
    buffer = torch.empty((block, n), dtype=torch.float32, device=device)
    with torch.inference_mode():
        for start in range(first, last, block):
            stop = min(start + block, last)
            rows = slice(start - first, stop - first)
            product = torch.mm(every[start:stop], every.T, out=buffer[:stop - start])
            if device == "cpu":
                found[rows], sims[rows] = _dense_row_top_k(product.numpy(), k + 1)
            else:
                values, index = torch.topk(product, k + 1, dim=1)
                found[rows] = index.cpu().numpy()
                sims[rows] = values.cpu().numpy()
    return _drop_self(*_order(found, sims), k, first)


@numba.njit(parallel=True, cache=True)
def _dense_row_top_k(block, k):  # pragma: no cover (compiled)
    """Each row's ``k`` largest entries (ties: lower column) through a size-k min-heap. Once
    the heap holds good entries nearly every value fails the one comparison with its root, so
    this reads the block about once: 1.7x faster than torch's ``topk`` on 2 cores."""
    rows, n = block.shape
    found = np.full((rows, k), -1, dtype=np.int64)
    sims = np.full((rows, k), -np.inf, dtype=np.float32)
    for r in numba.prange(rows):
        values, columns, row = sims[r], found[r], block[r]
        for c in range(min(k, n)):
            _sift_up(values, columns, c, row[c], c)
        for c in range(k, n):
            if row[c] > values[0]:  # equal values keep the lower column already held
                _sift_down(values, columns, row[c], c)
    return found, sims


def bounded_walk(n: int, k: int) -> dict:
    """The approximate sparse search's bounds for n rows: terms held by at most ``df_cap`` rows
    are walked whole, longer posting lists only over their ``prefix`` heaviest rows."""
    cap = min(SPARSE_CAP_MAX, max(SPARSE_CAP_MIN, n // SPARSE_CAP_SHARE))
    return {"index": "bounded_inverted_index", "df_cap": cap, "prefix": max(4 * k, cap // 32)}


def _top_k_sparse(matrix: sp.csr_matrix, k: int, cap: int | None = None,
                  prefix: int | None = None, queries: tuple[int, int] | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Exact (``cap`` None) or bounded (see :func:`_inverted_index_top_k`) sparse search, of
    the ``queries`` rows (start, stop; default all)."""
    first, last = queries or (0, matrix.shape[0])
    postings = matrix.T.tocsr()  # per term, the rows that hold it: an inverted index
    rows, weights = postings.indices, postings.data
    df = np.diff(postings.indptr)
    if cap is None:
        cap = prefix = matrix.shape[0]
    else:
        # Frequent terms' lists heaviest row first (ties: lower row), so that a prefix holds the
        # rows where the term weighs most; the others stay in row order.
        term = np.repeat(np.arange(len(df)), df)
        order = np.lexsort((rows, np.where(df[term] > cap, -weights, 0), term))
        rows, weights = rows[order], weights[order]
    # Each row's entries of frequent terms, which the bounded walk adds to the rows it touched.
    frequent = df[matrix.indices] > cap
    row_of = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    frequent_indptr = np.zeros(matrix.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(row_of[frequent], minlength=matrix.shape[0]), out=frequent_indptr[1:])
    found, sims = _inverted_index_top_k(
        matrix.indptr.astype(np.int64), matrix.indices.astype(np.int64), matrix.data,
        postings.indptr.astype(np.int64), rows.astype(np.int64), weights,
        frequent_indptr, matrix.indices[frequent].astype(np.int64), matrix.data[frequent],
        cap, prefix, k + 1, first, last, max(1, min(last - first, 256)))
    return _drop_self(*_order(found, sims), k, first)


@numba.njit(parallel=True, cache=True)
def _inverted_index_top_k(indptr, indices, data, postings_indptr, postings_rows, postings_data,
                          frequent_indptr, frequent_indices, frequent_data, cap, prefix, k,
                          first, last, chunks):  # pragma: no cover (compiled)
    """For each row of ``first:last`` (one row per output row), its ``k`` largest positive
    inner products with every row (itself included; ties: lower row), without forming the
    product: the row's terms' posting lists are summed into a
    dense accumulator, then a size-k min-heap reads the rows they touched. This is scipy's
    sparse product fused with the selection and run on every core; scipy's product is single-
    threaded and holds a block's few hundred million overlaps in memory.

    Posting lists longer than ``cap`` (frequent terms; sorted heaviest row first) are not
    summed. The rows the other lists touched get the frequent terms' part of their product
    from their own frequent-term entries (``frequent_*``, CSR) and fill the heap; then each
    frequent list is read from its heaviest row on, each new row's product computed the same
    way, until no row further down could beat the heap's worst entry (MaxScore: its weight in
    this list times the query's, plus the best the query's other frequent lists could add) or
    ``prefix`` rows were read. Every similarity is exact; a neighbour is missed only where that
    ``prefix`` bound stopped a list early. With ``cap`` at least every list's length this is
    the exact walk, sum for sum."""
    rows = len(indptr) - 1
    found = np.full((last - first, k), -1, dtype=np.int64)
    sims = np.full((last - first, k), -np.inf, dtype=np.float32)
    per_chunk = (last - first + chunks - 1) // chunks
    for chunk in numba.prange(chunks):
        total = np.zeros(rows, dtype=np.float32)
        seen = np.full(rows, -1, dtype=np.int64)  # the query row that last touched each row
        touched = np.empty(rows, dtype=np.int64)
        query = np.zeros(len(postings_indptr) - 1, dtype=np.float32)  # frequent-term weights
        frequent_terms = np.empty(len(postings_indptr) - 1, dtype=np.int64)
        for r in range(first + chunk * per_chunk, min(last, first + (chunk + 1) * per_chunk)):
            count = 0
            terms = 0
            for x in range(indptr[r], indptr[r + 1]):
                term, weight = indices[x], data[x]
                if postings_indptr[term + 1] - postings_indptr[term] > cap:
                    query[term] = weight
                    frequent_terms[terms] = term
                    terms += 1
                    continue
                for y in range(postings_indptr[term], postings_indptr[term + 1]):
                    other = postings_rows[y]
                    if seen[other] != r:
                        seen[other] = r
                        total[other] = 0.0
                        touched[count] = other
                        count += 1
                    total[other] += weight * postings_data[y]
            values, columns = sims[r - first], found[r - first]  # r's heap, worst at the root
            size = 0
            for t in range(count):
                other = touched[t]
                value = total[other]
                if terms:
                    value += _frequent_part(other, query, frequent_indptr, frequent_indices,
                                            frequent_data)
                size = _offer(values, columns, size, value, other)
            if terms:
                best_rest = np.float32(0.0)  # the most all frequent lists could add
                for f in range(terms):
                    term = frequent_terms[f]
                    best_rest += query[term] * postings_data[postings_indptr[term]]
                for f in range(terms):
                    term = frequent_terms[f]
                    weight, start = query[term], postings_indptr[term]
                    others = best_rest - weight * postings_data[start]
                    for y in range(start, min(postings_indptr[term + 1], start + prefix)):
                        if size == k and weight * postings_data[y] + others < values[0] - 1e-6:
                            break
                        other = postings_rows[y]
                        if seen[other] != r:
                            seen[other] = r
                            size = _offer(values, columns, size, _frequent_part(
                                other, query, frequent_indptr, frequent_indices,
                                frequent_data), other)
                for f in range(terms):
                    query[frequent_terms[f]] = 0.0
    return found, sims


@numba.njit(cache=True, inline="always")
def _frequent_part(row, query, frequent_indptr, frequent_indices,
                   frequent_data):  # pragma: no cover (compiled)
    """The query's inner product with ``row`` over the frequent terms alone."""
    total = np.float32(0.0)
    for z in range(frequent_indptr[row], frequent_indptr[row + 1]):
        total += query[frequent_indices[z]] * frequent_data[z]
    return total


@numba.njit(cache=True, inline="always")
def _offer(values, columns, size, value, column):  # pragma: no cover (compiled)
    """Put a positive ``value`` into a size-k heap holding ``size`` entries; the new size."""
    if value <= 0:
        return size
    if size < len(values):
        _sift_up(values, columns, size, value, column)
        return size + 1
    if _worse(values[0], columns[0], value, column):
        _sift_down(values, columns, value, column)
    return size


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


def _drop_self(found: np.ndarray, sims: np.ndarray, k: int,
               first: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Remove each row's own index (row ``first`` + r for row r; wherever ties put it) and keep
    k neighbours."""
    rows = np.arange(first, first + found.shape[0])[:, None]
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
