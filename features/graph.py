"""Group 'graph': degree and common neighbours in the candidate graph."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from candidates import pair_similarity

from .context import PairContext


def graph_features(ctx: PairContext) -> dict[str, np.ndarray]:
    degree, adjacency = ctx.shared("candidate_graph", lambda: _candidate_graph(ctx))
    i, j = ctx.i, ctx.j
    common = ctx.symmetric(lambda a, b: pair_similarity(adjacency, a, b))
    union = degree[i] + degree[j] - common
    return {"graph_degree_i": degree[i], "graph_degree_j": degree[j],
            "graph_common": common,
            "graph_common_share": np.where(union > 0, common / np.maximum(union, 1), 0.0)
            .astype(np.float32)}


def _candidate_graph(ctx: PairContext) -> tuple[np.ndarray, sp.csr_matrix]:
    """Every posting's degree and the 0/1 adjacency matrix of the whole pair table."""
    n, i, j = ctx.n, ctx.table_i, ctx.table_j
    degree = np.bincount(i, minlength=n).astype(np.float32)
    return degree, sp.csr_matrix((np.ones(len(i), np.float32), (i, j)), shape=(n, n))
