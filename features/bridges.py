"""Group 'bridges': how alike one posting's title is to the titles of the other's photo twins.

Sellers of one product often share a photo but not a wording: the pair's own text cosine is
low, yet one end's title is close to the title of a posting whose photo is near-identical to
the other end's. For a pair (i, j) and a text embedder, ``bridge_<hash>_<text>`` is the best
cosine between one end and a photo twin of the other (hashes at most
:data:`candidates.blocks.HASH_RADIUS` bits apart, as the candidates' near-identical pairs): 0
where neither end has a twin other than the pair's other end, NaN only where either end's photo
says nothing: no hash, or a stock photo (a hash shared by more than
:data:`candidates.blocks.MAX_BLOCK` postings, whose twins are not looked up, so that "no
twin" there would be false). A missing photo is then not read as "no twin": a model trained
with photos matches a catalog without them on its titles (view dropout hides these columns as
NaN). ``<hash>_twins_i`` / ``_j`` count each end's twins (NaN where its photo says nothing).
"""
from __future__ import annotations

import numpy as np

from candidates import pair_similarity
from candidates.blocks import MAX_BLOCK, hash_block_pairs
from common.pairs import row_entries, row_pointers

from .context import PairContext
from .phash import hash_block_sizes


def bridge_features(ctx: PairContext) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name in ctx.hash_embedders:
        emb = ctx.embeddings[name]
        pointers, twins = ctx.shared(("photo_twins", name),
                                     lambda: _twins(emb.vectors, emb.missing, ctx.n))
        # No hash, or a stock photo: a block hash_block_pairs leaves out, whose twins are
        # not looked up, so "no twin" there would be false.
        silent = emb.missing | (hash_block_sizes(ctx, name) > MAX_BLOCK)
        count = np.diff(pointers).astype(np.float32)
        count[silent] = np.nan
        out[f"{name}_twins_i"] = count[ctx.i]
        out[f"{name}_twins_j"] = count[ctx.j]
        unknown = silent[ctx.i] | silent[ctx.j]
        for text in ctx.vector_embedders:
            vectors = ctx.embeddings[text]
            forward = best_bridge(pointers, twins, vectors.vectors, vectors.missing, ctx.i, ctx.j)
            backward = best_bridge(pointers, twins, vectors.vectors, vectors.missing, ctx.j,
                                   ctx.i)
            best = np.nan_to_num(np.fmax(forward, backward), nan=0.0)
            best[unknown] = np.nan
            out[f"bridge_{name}_{text}"] = best
    return out


def _twins(values: np.ndarray, missing: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Every posting's photo twins as CSR (row pointers, twin rows sorted by row)."""
    a, b = hash_block_pairs(values, missing)
    order = np.lexsort((b, a))
    return row_pointers(a[order], n), b[order]


def best_bridge(pointers: np.ndarray, twins: np.ndarray, vectors, missing: np.ndarray,
                i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """For each pair (i, j): the best cosine of j with a twin of i other than j (float32; NaN
    where i has none, or where neither j nor any such twin has a vector)."""
    out = np.full(len(i), np.nan, dtype=np.float32)
    pair, position = row_entries(pointers, i)
    if not len(pair):
        return out
    twin, end = twins[position], j[pair]
    # Pairs come sorted by i, so ``end`` runs in blocks of one j: the sparse kernel scatters
    # each j's row once per block.
    sims = pair_similarity(vectors, end, twin)
    sims[(twin == end) | missing[twin] | missing[end]] = -np.inf
    # each pair's entries are one run of ``pair``: its best is that run's maximum
    starts = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]])
    best = np.maximum.reduceat(sims, starts)
    best[np.isneginf(best)] = np.nan
    out[pair[starts]] = best
    return out
