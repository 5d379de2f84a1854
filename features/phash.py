"""Group 'phash': Hamming distance of the perceptual hashes, equality, and exact-block sizes."""
from __future__ import annotations

import numpy as np

from embedders import hamming

from .context import PairContext


def phash_features(ctx: PairContext) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name in ctx.hash_embedders:
        emb = ctx.embeddings[name]
        values, missing = emb.vectors, emb.missing
        distance = hamming(values[ctx.i], values[ctx.j]).astype(np.float32)
        absent = missing[ctx.i] | missing[ctx.j]
        distance[absent] = np.nan
        block = hash_block_sizes(ctx, name)
        out[f"{name}_hamming"] = distance
        out[f"{name}_equal"] = np.where(absent, np.nan, distance == 0).astype(np.float32)
        out[f"{name}_block_i"] = block[ctx.i]
        out[f"{name}_block_j"] = block[ctx.j]
    return out


def hash_block_sizes(ctx: PairContext, name: str) -> np.ndarray:
    """How many postings share each posting's hash of embedding ``name`` (NaN without one),
    computed once per table and shared by its chunks and the groups that read it."""
    emb = ctx.embeddings[name]
    return ctx.shared(("hash_block", name), lambda: _block_sizes(emb.vectors, emb.missing))


def _block_sizes(values: np.ndarray, missing: np.ndarray) -> np.ndarray:
    # Only postings with a hash count: a missing one is stored as 0, not a photo.
    present = np.flatnonzero(~missing)
    _, codes, counts = np.unique(np.asarray(values)[present], return_inverse=True,
                                 return_counts=True)
    block = np.full(len(values), np.nan, dtype=np.float32)
    block[present] = counts[codes]
    return block
