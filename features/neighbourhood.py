"""Group 'neighbourhood': how a pair's similarity compares with each end's other neighbours.

A cosine of 0.6 means a match in a sparse part of the catalog and nothing in a dense one
(phone cases, cosmetics); each end's top-k similarity profile lets the ranker tell them apart.
"""
from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp

from candidates import pair_similarity

from .context import PairContext

KS = (1, 2, 5, 10, 30)


def neighbourhood_features(ctx: PairContext) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name in ctx.vector_embedders:
        lists = ctx.neighbours[name]
        sims = np.where(lists.index >= 0, lists.similarity, np.nan).astype(np.float32)
        pair_sim = ctx.column(f"sim_{name}")
        k_max = sims.shape[1]
        for k in KS:
            if k > k_max:
                continue
            top = sims[:, :k]
            # Postings with no neighbour at all (a one-posting catalog, empty titles) give all-NaN
            # rows: NaN is the intended feature value, so numpy's warnings about it are noise.
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nanmean(top, axis=1) if k > 1 else top[:, 0]
                std = np.nanstd(top, axis=1) if k > 1 else None
            kth = top[:, k - 1]
            for end, rows in (("i", ctx.i), ("j", ctx.j)):
                out[f"nb_{name}_mean{k}_{end}"] = mean[rows]
                if std is not None:
                    out[f"nb_{name}_std{k}_{end}"] = std[rows]
                out[f"nb_{name}_gap{k}_{end}"] = pair_sim - kth[rows]
            if k > 1:
                out[f"nb_{name}_jaccard{k}"] = ctx.symmetric(
                    lambda a, b, top=lists.index[:, :k]: _list_jaccard(top, a, b))
    return out


def _list_jaccard(index: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Jaccard overlap of the top-k lists of i and j, via a sparse 0/1 membership matrix."""
    n, k = index.shape
    rows = np.repeat(np.arange(n), k)
    cols = index.ravel()
    valid = cols >= 0
    member = sp.csr_matrix((np.ones(int(valid.sum()), np.float32), (rows[valid], cols[valid])),
                           shape=(n, n))
    common = pair_similarity(member, i, j)
    sizes = np.diff(member.indptr).astype(np.float32)
    union = sizes[i] + sizes[j] - common
    with np.errstate(all="ignore"):
        return np.where(union > 0, common / union, np.nan).astype(np.float32)
