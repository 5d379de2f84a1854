"""Helpers over scored pair lists: symmetrising, per-query ranks, the 50-match cap."""
from __future__ import annotations

import numpy as np

from candidates import reverse_positions

MAX_MATCHES = 50  # Kaggle's rule, self included


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
    """0-based rank of each pair among its query's pairs by descending p (ties: lower index)."""
    # One stable radix sort of (query, descending score) packed in an int64 beats a two-key
    # lexsort several times over; the float bits are mapped to an order-preserving uint32.
    bits = np.ascontiguousarray(p, dtype=np.float32).view(np.uint32)
    ascending = np.where(bits >> 31, ~bits, bits | np.uint32(0x80000000))
    key = (np.asarray(i, np.int64) << 32) | (~ascending).astype(np.int64)
    order = np.argsort(key, kind="stable")
    sorted_i = np.asarray(i)[order]
    first = np.ones(len(i), dtype=bool)
    first[1:] = sorted_i[1:] != sorted_i[:-1]
    starts = np.maximum.accumulate(np.where(first, np.arange(len(i)), 0)) if len(i) else first
    ranks = np.empty(len(i), dtype=np.int64)
    ranks[order] = np.arange(len(i)) - starts
    return ranks
