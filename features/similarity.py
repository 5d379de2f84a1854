"""Group 'similarity': cosine and rank per embedder, both directions, and across embedders; the
blended vectors' cosine too where the candidates were searched with them."""
from __future__ import annotations

import warnings

import numpy as np

from .context import PairContext


def similarity_features(ctx: PairContext) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    sims = []
    for name in ctx.vector_embedders:
        sim = ctx.column(f"sim_{name}")
        rank = ctx.column(f"rank_{name}")
        rank_rev = ctx.reversed_column(f"rank_{name}")
        out[f"sim_{name}"] = sim
        out[f"rank_{name}"] = rank
        out[f"rank_rev_{name}"] = rank_rev
        out[f"mutual_{name}"] = (~np.isnan(rank) & ~np.isnan(rank_rev)).astype(np.float32)
        if f"blend_sim_{name}" in ctx.candidates.columns:  # searched with blended vectors
            out[f"blend_sim_{name}"] = ctx.column(f"blend_sim_{name}")
        sims.append(sim)
    if len(sims) > 1:
        stacked = np.vstack(sims)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pairs stay NaN
            out["sim_max"] = np.nanmax(stacked, axis=0)
            out["sim_mean"] = np.nanmean(stacked, axis=0)
    return out
