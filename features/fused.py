"""Group 'fused': probabilistic OR of similarities, a + b − a·b.

Two weak signals from independent views (a title cosine of 0.5 and an image cosine of 0.5) make a
strong one (0.75); the ranker cannot form that product from thresholds on each alone as cheaply.
Fused per pair of embedders, and across modalities (best title similarity with the best image
similarity, the perceptual hash counting as an image similarity 1 − hamming/32).
"""
from __future__ import annotations

import warnings
from itertools import combinations

import numpy as np

from .context import PairContext


def fuse(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.clip(a, 0, 1), np.clip(b, 0, 1)
    return (a + b - a * b).astype(np.float32)


def fused_features(ctx: PairContext) -> dict[str, np.ndarray]:
    sims = {name: ctx.column(f"sim_{name}") for name in ctx.vector_embedders}
    image = {name: sim for name, sim in sims.items() if ctx.embeddings[name].modality == "image"}
    for name in ctx.hash_embedders:
        emb = ctx.embeddings[name]
        distance = np.bitwise_count(np.bitwise_xor(emb.vectors[ctx.i], emb.vectors[ctx.j]))
        similarity = np.clip(1 - distance / 32, 0, 1).astype(np.float32)
        similarity[emb.missing[ctx.i] | emb.missing[ctx.j]] = np.nan
        image[name] = similarity
    text = {name: sim for name, sim in sims.items() if name not in image}
    out: dict[str, np.ndarray] = {}
    views = {**sims, **image}
    for a, b in combinations(views, 2):
        out[f"fused_{a}_{b}"] = fuse(views[a], views[b])
    if text and image:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pairs stay NaN
            best_text = np.nanmax(np.vstack(list(text.values())), axis=0)
            best_image = np.nanmax(np.vstack(list(image.values())), axis=0)
        out["fused_text_image"] = fuse(best_text, best_image)
    return out
