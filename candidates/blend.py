"""Neighbour blending (query expansion / DBA; iterated, INB): before the candidate search, replace
each posting's vector by the similarity-weighted sum of its own and its nearest neighbours'
vectors. Postings of one product pull towards their common centre, so true matches that share
few words directly meet through shared neighbours."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import scipy.sparse as sp

from embedders import l2_normalise_rows

from .search import top_k


def blend_neighbours(embedding, depth: int = 3, iterations: int = 1, power: float = 1.0,
                     search: str = "exact"):
    """A new :class:`embedders.Embedding` whose row r is the L2-normalised sum of row r (weight 1)
    and its ``depth`` nearest neighbours (weight ``max(similarity, 0) ** power``; found by
    ``search``, as the candidates), repeated ``iterations`` times on the blended vectors. Hash and
    block embeddings and ``depth`` 0 are returned unchanged; rows without a vector stay empty and
    are nobody's neighbour."""
    if embedding.kind in ("hash", "blocks") or depth <= 0 or iterations <= 0:
        return embedding
    vectors = embedding.vectors
    n = vectors.shape[0]
    for _ in range(iterations):
        index, sims = top_k(vectors, depth, embedding.missing, method=search)
        valid = index >= 0
        rows = np.concatenate([np.arange(n), np.repeat(np.arange(n), depth)[valid.ravel()]])
        cols = np.concatenate([np.arange(n), index[valid]])
        weights = np.concatenate([np.ones(n, np.float32),
                                  np.maximum(sims[valid], 0).astype(np.float32) ** power])
        mixing = sp.csr_matrix((weights, (rows, cols)), shape=(n, n), dtype=np.float32)
        vectors = l2_normalise_rows(mixing @ vectors)
    manifest = {**embedding.manifest,
                "blend": {"depth": depth, "iterations": iterations, "power": power}}
    return replace(embedding, vectors=vectors, manifest=manifest)

