"""Neighbour blending of the pair scores: posting i's score for j is mixed with what i's best
candidates think of j. A true match that the ranker scored weakly for i but strongly for i's
closest postings is lifted; a false one that only i likes is lowered. It works on the scores the
ranker already produced, so it needs no new candidate search (the embedding-level blending is
``candidates.blend_neighbours``)."""
from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

import numba
import numpy as np

from common.pairs import pair_order, rank_within_query, row_pointers, row_position, symmetrise

from .cut import ThresholdCut
from .state import MatchState, Truth
from .step import Step

# Scores below this carry no opinion worth propagating and would only fill the sparse product.
SCORE_FLOOR = 0.05


def neighbour_scores(state: MatchState, depth: int) -> np.ndarray:
    """For each pair (i, j): the mean, weighted by p(i, k), of p(k, j) over those k ∈ {i} ∪ i's
    ``depth`` best-scored candidates that have j among their candidates (p(k, k) = 1), then
    symmetrised. A k whose list does not reach j has no opinion of j: counting it as a 0 would
    sink every pair of a product posted more often than the candidate lists are long. Scores at
    or below ``SCORE_FLOOR`` count as 0."""
    n = state.n
    order = pair_order(state.i, state.j, n)
    top = (state.rank < depth) & (state.score > SCORE_FLOOR)
    best = np.full((n, max(depth, 1)), -1, dtype=np.int64)
    weight = np.zeros((n, max(depth, 1)), dtype=np.float32)
    best[state.i[top], state.rank[top]] = state.j[top]
    weight[state.i[top], state.rank[top]] = state.score[top]
    opinion = _opinions(row_pointers(state.i, n), state.j[order], state.score[order],
                        state.i, state.j, state.score, best, weight, np.float32(SCORE_FLOOR))
    return symmetrise(state.i, state.j, opinion, n, "mean")


@numba.njit(parallel=True, cache=True)
def _opinions(indptr, columns, scores, qi, qj, own, best, weight, floor):  # pragma: no cover
    """The weighted mean of :func:`neighbour_scores` for every pair: k = i counts with weight 1;
    each of i's best k (weight p(i, k)) looks j up by binary search in its own sorted list, and
    k = j counts p(j, j) = 1."""
    out = np.empty(len(qi), dtype=np.float32)
    for p in numba.prange(len(qi)):
        i, j = qi[p], qj[p]
        total = own[p] if own[p] > floor else 0.0
        coverage = 1.0
        for t in range(best.shape[1]):
            k = best[i, t]
            if k < 0:
                continue
            w = weight[i, t]
            if k == j:
                total += w
                coverage += w
                continue
            found = row_position(indptr, columns, k, j)
            if found >= 0:
                coverage += w
                if scores[found] > floor:
                    total += w * scores[found]
        out[p] = total / coverage
    return out


class ScoreBlend(Step):
    """Replace each score by ``(1 - weight) · p + weight · neighbour_scores(p, depth)``, repeated
    ``iterations`` times on the blended scores (iterated neighbour blending), and cut the blended
    scores at their own re-tuned ``threshold``. ``fit`` picks those of depth, weight and
    iterations that are not given on ``grid`` for F1 (weight 0, tried unless a weight is given,
    switches the step off), then the threshold unless given."""

    name: ClassVar[str] = "score_blend"
    fitted: ClassVar[dict] = {"depth": 2, "weight": None, "iterations": 1, "threshold": None}

    def __init__(self, depth: int | None = None, weight: float | None = None,
                 iterations: int | None = None, threshold: float | None = None,
                 grid: dict | None = None):
        self.depth = depth
        self.weight = weight
        self.iterations = iterations
        self.threshold = threshold
        self.grid = grid or {"depth": [1, 2, 3], "weight": [0.75, 1.0], "iterations": [1, 2]}

    def fit(self, state: MatchState, truth: Truth) -> ScoreBlend:
        given = (self.depth, self.weight, self.iterations)
        self.depth_, self.weight_, self.iterations_ = \
            self._search(state, truth) if None in given else given
        self.threshold_ = (ThresholdCut().fit(self._rescore(state), truth).threshold_
                           if self.threshold is None else self.threshold)
        return self

    def _search(self, state: MatchState, truth: Truth) -> tuple:
        """The best (depth, weight, iterations), each scored on a coarse threshold grid (the
        winner's threshold is tuned finely after)."""
        coarse = (0.02, 0.98, 0.02)
        iterations = self._choices("iterations", self.grid["iterations"])
        if self.weight is None:  # the step switched off (weight 0) is a candidate too
            best = (max(f for _, f in ThresholdCut(grid=coarse).fit(state, truth).curve_),
                    0 if self.depth is None else self.depth, 0.0,
                    1 if self.iterations is None else self.iterations)
        else:
            best = (-np.inf, None, None, None)
        for depth in self._choices("depth", self.grid["depth"]):
            opinion = neighbour_scores(state, depth)
            for weight in self._choices("weight", self.grid["weight"]):
                blended = self._blend(state, opinion, weight)
                for iteration in range(1, max(iterations) + 1):
                    if iteration > 1:
                        blended = self._blend(blended, neighbour_scores(blended, depth), weight)
                    if iteration not in iterations:
                        continue
                    cut = ThresholdCut(grid=coarse).fit(blended, truth)
                    f1 = max(f for _, f in cut.curve_)
                    if f1 > best[0] + 1e-9:
                        best = (f1, depth, weight, iteration)
        return best[1:]

    def apply(self, state: MatchState) -> MatchState:
        blended = self._rescore(state)
        return blended.with_keep(blended.score > self.threshold_)

    def _rescore(self, state: MatchState) -> MatchState:
        if not self.weight_ or not len(state.i):
            return state
        for _ in range(self.iterations_):
            state = self._blend(state, neighbour_scores(state, self.depth_), self.weight_)
        return state

    @staticmethod
    def _blend(state: MatchState, opinion: np.ndarray, weight: float) -> MatchState:
        score = ((1 - weight) * state.score + weight * opinion).astype(np.float32)
        return replace(state, score=score, rank=rank_within_query(state.i, score))
