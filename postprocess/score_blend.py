"""Neighbour blending of the pair scores: posting i's score for j is mixed with what i's best
candidates think of j. A true match that the ranker scored weakly for i but strongly for i's
closest postings is lifted; a false one that only i likes is lowered. It works on the scores the
ranker already produced, so it needs no new candidate search (the embedding-level blending is
``candidates.blend_neighbours``)."""
from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from .cut import ThresholdCut
from .pairs import rank_within_query, symmetrise
from .state import MatchState, Truth

# Scores below this carry no opinion worth propagating and would only fill the sparse product.
SCORE_FLOOR = 0.05


def neighbour_scores(state: MatchState, depth: int) -> np.ndarray:
    """For each pair (i, j): the mean, weighted by p(i, k), of p(k, j) over those k ∈ {i} ∪ i's
    ``depth`` best-scored candidates that have j among their candidates (p(k, k) = 1), then
    symmetrised. A k whose list does not reach j has no opinion of j: counting it as a 0 would
    sink every pair of a product posted more often than the candidate lists are long. Pairs
    sorted by (i, j) and closed under symmetry, as candidates are."""
    n = state.n
    eye = sp.identity(n, dtype=np.float32, format="csr")
    top = (state.rank < depth) & (state.score > SCORE_FLOOR)
    weights = sp.csr_matrix((state.score[top], (state.i[top], state.j[top])), shape=(n, n)) + eye
    strong = state.score > SCORE_FLOOR
    scores = sp.csr_matrix((state.score[strong], (state.i[strong], state.j[strong])),
                           shape=(n, n)) + eye
    listed = sp.csr_matrix((np.ones(len(state.i), np.float32), (state.i, state.j)),
                           shape=(n, n)) + eye
    wanted = state.i * n + state.j
    total = _values_at(weights @ scores, wanted, n)
    coverage = _values_at(weights @ listed, wanted, n)
    opinion = np.where(coverage > 0, total / np.maximum(coverage, 1e-12), state.score)
    return symmetrise(state.i, state.j, opinion.astype(np.float32), n, "mean")


def _values_at(matrix: sp.spmatrix, wanted: np.ndarray, n: int) -> np.ndarray:
    """Entries of a sparse n × n matrix at the flat keys ``wanted`` (0 where absent)."""
    matrix = matrix.tocsr()
    matrix.sort_indices()
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(matrix.indptr))
    keys = rows * n + matrix.indices
    if not len(keys):
        return np.zeros(len(wanted), dtype=np.float32)
    position = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    return np.where(keys[position] == wanted, matrix.data[position], 0).astype(np.float32)


class ScoreBlend:
    """Replace each score by ``(1 - weight) · p + weight · neighbour_scores(p, depth)``, repeated
    ``iterations`` times on the blended scores (iterated neighbour blending), and cut the blended
    scores at their own re-tuned ``threshold``. ``fit`` picks depth, weight and iterations
    (weight 0 switches the step off) for F1."""

    name: ClassVar[str] = "score_blend"

    def __init__(self, depth: int = 2, weight: float | None = None, iterations: int = 1,
                 threshold: float | None = None, grid: dict | None = None):
        self.depth = depth
        self.weight = weight
        self.iterations = iterations
        self.threshold = threshold
        self.grid = grid or {"depth": [1, 2, 3], "weight": [0.75, 1.0], "iterations": [1, 2]}

    def fit(self, state: MatchState, truth: Truth) -> ScoreBlend:
        # Search on a coarse threshold grid, then tune the winner's threshold finely.
        coarse = (0.02, 0.98, 0.02)
        best = (max(f for _, f in ThresholdCut(grid=coarse).fit(state, truth).curve_), 0, 0.0, 1)
        for depth in self.grid["depth"]:
            opinion = neighbour_scores(state, depth)
            for weight in self.grid["weight"]:
                blended = self._blend(state, opinion, weight)
                for iteration in range(1, max(self.grid["iterations"]) + 1):
                    if iteration > 1:
                        blended = self._blend(blended, neighbour_scores(blended, depth), weight)
                    if iteration not in self.grid["iterations"]:
                        continue
                    cut = ThresholdCut(grid=coarse).fit(blended, truth)
                    f1 = max(f for _, f in cut.curve_)
                    if f1 > best[0] + 1e-9:
                        best = (f1, depth, weight, iteration)
        _, self.depth, self.weight, self.iterations = best
        self.threshold = ThresholdCut().fit(self._rescore(state), truth).threshold
        return self

    def apply(self, state: MatchState) -> MatchState:
        blended = self._rescore(state)
        return blended.with_keep(blended.score > self.threshold)

    def _rescore(self, state: MatchState) -> MatchState:
        if not self.weight or not len(state.i):
            return state
        for _ in range(self.iterations):
            state = self._blend(state, neighbour_scores(state, self.depth), self.weight)
        return state

    @staticmethod
    def _blend(state: MatchState, opinion: np.ndarray, weight: float) -> MatchState:
        score = ((1 - weight) * state.score + weight * opinion).astype(np.float32)
        return replace(state, score=score, rank=rank_within_query(state.i, score))

    def get_params(self) -> dict:
        return {"depth": self.depth, "weight": self.weight, "iterations": self.iterations,
                "threshold": self.threshold}
