"""Graph clean-up of the match graph: remove weak one-way edges, and merge postings into groups by
connected components or average-linkage agglomeration, both under a group-size cap."""
from __future__ import annotations

from typing import ClassVar

import numpy as np
import polars as pl
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from common.pairs import reverse_positions

from .pairs import MAX_MATCHES
from .state import MatchState, Truth
from .step import Step

# Pairs scoring below this never move an average-linkage decision that clears a useful
# threshold; leaving them out keeps each agglomeration round to the informative edges.
LINKAGE_FLOOR = 0.05
MAX_LINKAGE_ROUNDS = 64


def _reverse_kept(state: MatchState) -> np.ndarray:
    """For each pair (i, j): whether (j, i) is present and kept."""
    reverse = reverse_positions(state.i, state.j, state.n)
    return (reverse >= 0) & state.keep[np.maximum(reverse, 0)]


class PruneOneWay(Step):
    """Drop a kept pair (i, j) whose reverse (j, i) is not kept when its score is below
    ``threshold_`` (0 switches the step off): a one-way match that is also weak is usually a
    false one. ``fit`` tunes it on a grid unless ``threshold`` is given."""

    name: ClassVar[str] = "prune"
    fitted: ClassVar[dict] = {"threshold": None}

    def __init__(self, threshold: float | None = None, grid_step: float = 0.02):
        self.threshold = threshold
        self.grid_step = grid_step

    def fit(self, state: MatchState, truth: Truth) -> PruneOneWay:
        if self.threshold is not None:
            self.threshold_ = self.threshold
            return self
        one_way = state.keep & ~_reverse_kept(state)
        best = None
        for t in np.round(np.arange(0.0, 1.0 + 1e-9, self.grid_step), 4):
            f1 = truth.evaluate(state, state.keep & ~(one_way & (state.score < t)))["f1"]
            if best is None or f1 > best[0] + 1e-9:
                best = (f1, float(t))
        self.threshold_ = best[1]
        return self

    def apply(self, state: MatchState) -> MatchState:
        one_way = state.keep & ~_reverse_kept(state)
        return state.with_keep(state.keep & ~(one_way & (state.score < self.threshold_)))


class GraphMerge(Step):
    """Add every pair inside a merged group of at most ``max_size`` postings.

    ``method`` "components": groups are the connected components of the kept pairs scoring above
    ``threshold``. ``method`` "average": average-linkage agglomeration over all scored pairs
    (absent pairs count 0) that merges two groups while their mean pair score exceeds
    ``threshold`` and their union stays within ``max_size``; merges are made in rounds of mutual
    best partners, which for average linkage is the order the one-at-a-time algorithm would take.
    A fitted ``method_`` None switches the step off. ``fit`` picks method, threshold and size
    cap for F1 (those not given; the grid holds threshold and size cap lists per method), or
    switches the step off unless a method is given.
    """

    name: ClassVar[str] = "merge"
    fitted: ClassVar[dict] = {"method": None, "threshold": None, "max_size": MAX_MATCHES}

    def __init__(self, method: str | None = None, threshold: float | None = None,
                 max_size: int | None = None,
                 grid: dict | None = None):
        self.method = method
        self.threshold = threshold
        self.max_size = max_size
        self.grid = grid or {"components": {"threshold": [0.8, 0.9], "max_size": [MAX_MATCHES]},
                             "average": {"threshold": [0.35, 0.4, 0.45, 0.5, 0.55],
                                         "max_size": [MAX_MATCHES]}}

    def fit(self, state: MatchState, truth: Truth) -> GraphMerge:
        given = (self.method, self.threshold, self.max_size)
        if None not in given:
            self.method_, self.threshold_, self.max_size_ = given
            return self
        # Switched off (no method) unless a method is given.
        best = ((truth.evaluate(state)["f1"], None, self.threshold,
                 MAX_MATCHES if self.max_size is None else self.max_size)
                if self.method is None else (-np.inf, None, None, None))
        for method in self._choices("method", self.grid):
            grid = self.grid.get(method, {})
            for threshold in self._choices("threshold", grid.get("threshold")):
                for max_size in self._choices("max_size", grid.get("max_size")):
                    merged = self._merge(state, method, threshold, max_size)
                    f1 = truth.evaluate(merged)["f1"]
                    if f1 > best[0] + 1e-9:
                        best = (f1, method, threshold, max_size)
        _, self.method_, self.threshold_, self.max_size_ = best
        return self

    def apply(self, state: MatchState) -> MatchState:
        if self.method_ is None:
            return state
        return self._merge(state, self.method_, self.threshold_, self.max_size_)

    def _merge(self, state: MatchState, method: str, threshold: float, max_size: int) -> MatchState:
        if method == "components":
            group = _components(state, threshold)
        elif method == "average":
            group = _average_linkage(state, threshold, max_size)
        else:
            raise ValueError(f"unknown merge method {method!r} (components, average)")
        i, j = _pairs_within(group, max_size)
        return state.with_added(i, j, np.zeros(len(i), dtype=np.float32))


def _components(state: MatchState, threshold: float) -> np.ndarray:
    edge = state.keep & (state.score > threshold)
    graph = sp.coo_matrix((np.ones(int(edge.sum()), dtype=np.int8),
                           (state.i[edge], state.j[edge])), shape=(state.n, state.n))
    return connected_components(graph, directed=True, connection="weak")[1].astype(np.int64)


def _average_linkage(state: MatchState, threshold: float, max_size: int) -> np.ndarray:
    usable = (state.i < state.j) & (state.score > LINKAGE_FLOOR)
    a, b = state.i[usable], state.j[usable]
    weight = state.score[usable].astype(np.float64)
    group = np.arange(state.n, dtype=np.int64)
    size = np.ones(state.n, dtype=np.int64)
    for _ in range(MAX_LINKAGE_ROUNDS):
        ga, gb = group[a], group[b]
        between = ga != gb
        if not between.any():
            break
        lo, hi = np.minimum(ga[between], gb[between]), np.maximum(ga[between], gb[between])
        links = (pl.DataFrame({"lo": lo, "hi": hi, "w": weight[between]})
                 .group_by(["lo", "hi"]).agg(pl.col("w").sum()))
        lo, hi, total = links["lo"].to_numpy(), links["hi"].to_numpy(), links["w"].to_numpy()
        mean = total / (size[lo] * size[hi])
        fits = (mean > threshold) & (size[lo] + size[hi] <= max_size)
        if not fits.any():
            break
        lo, hi, mean = lo[fits], hi[fits], mean[fits]
        # Each group's best partner (ties: the lower group id), then merge mutual best pairs.
        src = np.concatenate([lo, hi])
        dst = np.concatenate([hi, lo])
        score = np.concatenate([mean, mean])
        order = np.lexsort((dst, -score, src))
        src, dst = src[order], dst[order]
        first = np.ones(len(src), dtype=bool)
        first[1:] = src[1:] != src[:-1]
        best = np.full(state.n, -1, dtype=np.int64)
        best[src[first]] = dst[first]
        groups = src[first]
        partner = best[groups]
        mutual = (best[partner] == groups) & (groups < partner)
        keepers, absorbed = groups[mutual], partner[mutual]
        relabel = np.arange(state.n, dtype=np.int64)
        relabel[absorbed] = keepers
        size[keepers] += size[absorbed]
        size[absorbed] = 0
        group = relabel[group]
    return group


def _pairs_within(group: np.ndarray, max_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Every ordered pair (i, j), i ≠ j, of postings in the same group of 2..max_size postings."""
    frame = pl.DataFrame({"node": np.arange(len(group), dtype=np.int64), "g": group})
    sizes = frame.group_by("g").len()
    fitting = sizes.filter((pl.col("len") >= 2) & (pl.col("len") <= max_size)).select("g")
    members = frame.join(fitting, on="g", how="semi")
    pairs = (members.join(members.rename({"node": "other"}), on="g")
             .filter(pl.col("node") != pl.col("other")))
    return pairs["node"].to_numpy(), pairs["other"].to_numpy()
