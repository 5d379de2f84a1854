"""The shared pair index: ordered pairs (i, j) of postings 0..n-1 as int64 keys ``i * n + j``,
their look-ups (a pair's position in a pair table, the reverse pair's position, the numba
kernels' row look-up), symmetrising pair scores and ranking pairs within their query.

Every stage (candidates, features, ranker, post-processing, report) uses these; this module is in
the lowest layer and imports nothing of the project's.
"""
from __future__ import annotations

import numba
import numpy as np


def pair_keys(i: np.ndarray, j: np.ndarray, n: int) -> np.ndarray:
    """The int64 key ``i * n + j`` of each pair; keys sort like (i, j)."""
    return np.asarray(i, np.int64) * n + np.asarray(j, np.int64)


def split_keys(keys: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The pairs ``(i, j)`` of :func:`pair_keys` keys."""
    return keys // n, keys % n


def unique_keys(keys: np.ndarray) -> np.ndarray:
    """The distinct keys, sorted (as ``np.unique``; sort-then-drop-repeats was 15x faster than
    numpy's hash-based unique on 16M keys)."""
    keys = np.sort(np.asarray(keys, np.int64))
    return keys[np.concatenate([[True], keys[1:] != keys[:-1]])] if len(keys) else keys


def pair_order(i: np.ndarray, j: np.ndarray, n: int) -> np.ndarray:
    """The stable permutation that sorts the pairs by (i, j)."""
    return np.argsort(pair_keys(i, j, n), kind="stable")


def key_positions(keys: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Position in ``keys`` of each of ``wanted``, -1 where absent; of repeated keys, the first.
    ``keys`` need not be sorted (an unsorted table is sorted first, stably)."""
    keys = np.asarray(keys, np.int64)
    wanted = np.asarray(wanted, np.int64)
    out = np.full(len(wanted), -1, dtype=np.int64)
    if not len(keys):
        return out
    order = np.argsort(keys, kind="stable") if (keys[1:] < keys[:-1]).any() else None
    sorted_keys = keys if order is None else keys[order]
    position = np.minimum(np.searchsorted(sorted_keys, wanted), len(keys) - 1)
    found = sorted_keys[position] == wanted
    out[found] = position[found] if order is None else order[position[found]]
    return out


def find_pairs(i: np.ndarray, j: np.ndarray, query_i: np.ndarray, query_j: np.ndarray,
               n: int) -> np.ndarray:
    """Position of each pair ``(query_i, query_j)`` in the pair table ``(i, j)``; -1 where
    absent (of repeated pairs, the first)."""
    return key_positions(pair_keys(i, j, n), pair_keys(query_i, query_j, n))


def reverse_positions(i: np.ndarray, j: np.ndarray, n: int) -> np.ndarray:
    """Position of pair (j, i) for every pair (i, j); -1 where the reverse pair is absent. Fastest
    on a table sorted by (i, j), as ``candidates.build_candidates`` makes it; others are sorted
    first."""
    i = np.asarray(i, np.int64)
    j = np.asarray(j, np.int64)
    keys = pair_keys(i, j, n)
    if len(keys) > 1 and (keys[1:] < keys[:-1]).any():
        order = np.argsort(keys, kind="stable")
        inner = reverse_positions(i[order], j[order], n)
        out = np.full(len(keys), -1, dtype=np.int64)
        found = inner >= 0
        out[order[found]] = order[inner[found]]
        return out
    return _reverse_positions(row_pointers(i, n), j, i)


def row_pointers(i: np.ndarray, n: int) -> np.ndarray:
    """CSR-style row starts of pairs sorted by i: row r's pairs are ``indptr[r]:indptr[r + 1]``."""
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(np.asarray(i, np.int64), minlength=n), out=indptr[1:])
    return indptr


def row_entries(indptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every entry of the CSR-style ``rows`` (see :func:`row_pointers`), row by row:
    (which of ``rows`` it belongs to, its position)."""
    count = indptr[rows + 1] - indptr[rows]
    owner = np.repeat(np.arange(len(rows)), count)
    first = np.cumsum(count) - count
    return owner, indptr[rows][owner] + np.arange(len(owner)) - first[owner]


@numba.njit(parallel=True, cache=True)
def _reverse_positions(indptr, columns, rows):  # pragma: no cover (compiled)
    out = np.empty(len(rows), dtype=np.int64)
    for p in numba.prange(len(rows)):
        out[p] = row_position(indptr, columns, columns[p], rows[p])
    return out


@numba.njit(cache=True)
def row_position(indptr, columns, row, column):  # pragma: no cover (compiled)
    """Position of ``(row, column)`` in pairs sorted by (row, column) whose row r occupies
    ``indptr[r]:indptr[r + 1]`` of ``columns``; -1 if absent. For numba kernels."""
    low, high = indptr[row], indptr[row + 1]
    while low < high:
        middle = (low + high) // 2
        if columns[middle] < column:
            low = middle + 1
        else:
            high = middle
    return low if low < indptr[row + 1] and columns[low] == column else -1


def symmetrise(i: np.ndarray, j: np.ndarray, p: np.ndarray, n: int, how: str = "mean") -> np.ndarray:
    """Combine p(i, j) with p(j, i): ``mean``, ``max`` or ``none``. Pairs without a reverse keep
    their own score."""
    if how == "none":
        return p
    reverse = reverse_positions(i, j, n)
    other = np.where(reverse >= 0, p[np.maximum(reverse, 0)], p)
    if how == "mean":
        return ((p + other) / 2).astype(np.float32)
    if how == "max":
        return np.maximum(p, other)
    raise ValueError(f"unknown symmetrisation {how!r} (mean, max, none)")


def rank_within_query(i: np.ndarray, p: np.ndarray) -> np.ndarray:
    """0-based rank of each pair among its query's pairs by descending p (ties: lower index);
    int32 where the table has fewer than 2³¹ pairs, int64 otherwise."""
    # One stable radix sort of (query, descending score) packed in an int64 beats a two-key
    # lexsort several times over; the float bits are mapped to an order-preserving uint32.
    bits = np.ascontiguousarray(p, dtype=np.float32).view(np.uint32)
    ascending = np.where(bits >> 31, ~bits, bits | np.uint32(0x80000000))
    key = (np.asarray(i, np.int64) << 32) | (~ascending).astype(np.int64)
    del bits, ascending
    order = np.argsort(key, kind="stable")
    del key  # each temporary goes as soon as it is used: at 10⁸ pairs each is 0.4-0.8 GB
    sorted_i = np.asarray(i)[order]
    first = np.ones(len(i), dtype=bool)
    first[1:] = sorted_i[1:] != sorted_i[:-1]
    del sorted_i
    dtype = np.int32 if len(i) < 2**31 else np.int64
    starts = np.flatnonzero(first).astype(dtype)
    del first
    ranks = np.empty(len(i), dtype=dtype)
    ranks[order] = np.arange(len(i), dtype=dtype) - np.repeat(
        starts, np.diff(np.append(starts, dtype(len(i)))))
    return ranks
