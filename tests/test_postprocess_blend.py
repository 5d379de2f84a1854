"""Neighbour blending of embeddings before the candidate search."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from candidates import blend_neighbours
from embedders import Embedding


def clustered(n_groups=20, per_group=4, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_groups, dim))
    vectors = np.repeat(centres, per_group, axis=0) + 0.8 * rng.normal(size=(n_groups * per_group, dim))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = np.repeat(np.arange(n_groups), per_group)
    return vectors.astype(np.float32), labels


def within_minus_between(vectors, labels):
    sims = vectors @ vectors.T
    same = labels[:, None] == labels[None, :]
    off = ~np.eye(len(labels), dtype=bool)
    return sims[same & off].mean() - sims[~same].mean()


def test_blending_pulls_products_together_and_keeps_unit_rows():
    vectors, labels = clustered()
    emb = Embedding("x", "dense", vectors, np.zeros(len(labels), bool))
    blended = blend_neighbours(emb, depth=3, iterations=2)
    assert np.allclose(np.linalg.norm(blended.vectors, axis=1), 1, atol=1e-5)
    assert within_minus_between(blended.vectors, labels) > within_minus_between(vectors, labels)
    assert blended.manifest["blend"] == {"depth": 3, "iterations": 2, "power": 1.0}
    again = blend_neighbours(emb, depth=3, iterations=2)
    assert np.array_equal(again.vectors, blended.vectors)


def test_sparse_blending_matches_dense_blending():
    vectors, _ = clustered(seed=1)
    vectors[np.abs(vectors) < 0.2] = 0
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    dense = blend_neighbours(Embedding("d", "dense", vectors, np.zeros(len(vectors), bool)), 2)
    sparse = blend_neighbours(Embedding("s", "sparse", sp.csr_matrix(vectors),
                                        np.zeros(len(vectors), bool)), 2)
    assert sp.issparse(sparse.vectors)
    assert np.allclose(sparse.vectors.toarray(), dense.vectors, atol=1e-5)


def test_missing_rows_stay_empty_and_off_is_identity():
    vectors, _ = clustered(seed=2)
    missing = np.zeros(len(vectors), bool)
    missing[[0, 5]] = True
    vectors[missing] = 0
    emb = Embedding("x", "dense", vectors, missing)
    blended = blend_neighbours(emb, depth=3)
    assert not blended.vectors[missing].any()
    assert blend_neighbours(emb, depth=0) is emb
    hashes = Embedding("h", "hash", np.arange(4, dtype=np.uint64), np.zeros(4, bool))
    assert blend_neighbours(hashes, depth=3) is hashes
