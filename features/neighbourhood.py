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
        profile = ctx.shared(("neighbour_profile", name), lambda: _profile(lists.similarity,
                                                                           lists.index))
        pair_sim = ctx.column(f"sim_{name}")
        for k, (mean, std, kth) in profile.items():
            for end, rows in (("i", ctx.i), ("j", ctx.j)):
                out[f"nb_{name}_mean{k}_{end}"] = mean[rows]
                if std is not None:
                    out[f"nb_{name}_std{k}_{end}"] = std[rows]
                out[f"nb_{name}_gap{k}_{end}"] = pair_sim - kth[rows]
            if k > 1:
                member = ctx.shared(("neighbour_lists", name, k),
                                    lambda: _membership(lists.index[:, :k], ctx.n))
                out[f"nb_{name}_jaccard{k}"] = ctx.symmetric(
                    lambda a, b, member=member: _list_jaccard(*member, a, b))
    return out


def _profile(similarity: np.ndarray, index: np.ndarray) -> dict:
    """Per k of :data:`KS`, each posting's mean, standard deviation (None for k = 1) and k-th
    similarity over its top-k list."""
    sims = np.where(index >= 0, similarity, np.nan).astype(np.float32)
    out = {}
    for k in KS:
        if k > sims.shape[1]:
            continue
        top = sims[:, :k]
        # Postings with no neighbour at all (a one-posting catalog, empty titles) give all-NaN
        # rows: NaN is the intended feature value, so numpy's warnings about it are noise.
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(top, axis=1) if k > 1 else top[:, 0]
            std = np.nanstd(top, axis=1) if k > 1 else None
        out[k] = mean, std, top[:, k - 1]
    return out


def _membership(index: np.ndarray, n: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """The top-k lists as a sparse 0/1 posting × posting matrix, and each list's length."""
    k = index.shape[1]
    rows = np.repeat(np.arange(n), k)
    cols = index.ravel()
    valid = cols >= 0
    member = sp.csr_matrix((np.ones(int(valid.sum()), np.float32), (rows[valid], cols[valid])),
                           shape=(n, n))
    return member, np.diff(member.indptr).astype(np.float32)


def _list_jaccard(member: sp.csr_matrix, sizes: np.ndarray, i: np.ndarray,
                  j: np.ndarray) -> np.ndarray:
    """Jaccard overlap of the top-k lists of i and j."""
    common = pair_similarity(member, i, j)
    union = sizes[i] + sizes[j] - common
    with np.errstate(all="ignore"):
        return np.where(union > 0, common / union, np.nan).astype(np.float32)
