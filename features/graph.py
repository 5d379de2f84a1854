"""Group 'graph': degree and common neighbours in the candidate graph."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from candidates import pair_similarity

from .context import PairContext


def graph_features(ctx: PairContext) -> dict[str, np.ndarray]:
    n = ctx.n
    degree = np.bincount(ctx.i, minlength=n).astype(np.float32)
    adjacency = sp.csr_matrix((np.ones(len(ctx.i), np.float32), (ctx.i, ctx.j)), shape=(n, n))
    common = ctx.symmetric(lambda a, b: pair_similarity(adjacency, a, b))
    union = degree[ctx.i] + degree[ctx.j] - common
    return {"graph_degree_i": degree[ctx.i], "graph_degree_j": degree[ctx.j],
            "graph_common": common,
            "graph_common_share": np.where(union > 0, common / np.maximum(union, 1), 0.0)
            .astype(np.float32)}
