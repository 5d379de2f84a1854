"""Chisel: cut each posting's ranked candidate list with one threshold per rank, chosen so that the
distribution of predicted group sizes follows the training set's true one.

With a single threshold, postings of big products lose their weaker true matches while small ones
collect false ones; a per-rank threshold set from the share of postings that truly have at least
r + 1 matches moves every rank's cut to the score quantile that yields that share. ``strength``
blends the global threshold (0, no change) with the quantile thresholds (1, full chisel)."""
from __future__ import annotations

from typing import ClassVar

import numpy as np

from .pairs import MAX_MATCHES
from .state import MatchState, Truth
from .step import Step


class Chisel(Step):
    """``fit`` learns per-rank thresholds from the out-of-fold score quantiles and tunes
    ``strength`` (unless given; given ``rank_thresholds`` are kept as they are); ``apply`` keeps
    each posting's ranked pairs up to the first one that fails its rank's threshold. ``base``
    (required to fit) is the global threshold it bends away from."""

    name: ClassVar[str] = "chisel"
    fitted: ClassVar[dict] = {"base": None, "strength": None, "rank_thresholds": None}

    def __init__(self, base: float | None = None, strength: float | None = None,
                 rank_thresholds: list[float] | None = None,
                 strengths: tuple[float, ...] = tuple(np.round(np.arange(0, 1.01, 0.1), 2))):
        self.base = base
        self.strength = strength
        self.rank_thresholds = rank_thresholds
        self.strengths = strengths

    def fit(self, state: MatchState, truth: Truth) -> Chisel:
        if self.base is None:
            raise ValueError("Chisel needs the global threshold (base) before fitting")
        self.base_ = self.base
        if self.rank_thresholds is not None:
            self.strength_, self.rank_thresholds_ = self.strength, self.rank_thresholds
            return self
        quantiles = self._size_quantiles(state, truth)
        best = None
        for strength in self._choices("strength", self.strengths):
            thresholds = self._blend(quantiles, float(strength))
            f1 = truth.evaluate(state, self._keep(state, thresholds))["f1"]
            if best is None or f1 > best[0] + 1e-9:
                best = (f1, float(strength), thresholds)
        _, self.strength_, thresholds = best
        self.rank_thresholds_ = [round(float(t), 6) for t in thresholds]
        return self

    def apply(self, state: MatchState) -> MatchState:
        return state.with_keep(self._keep(state, np.asarray(self.rank_thresholds_, np.float32)))

    def _blend(self, quantiles: np.ndarray, strength: float) -> np.ndarray:
        blended = self.base_ + strength * (quantiles - self.base_)
        return np.clip(blended, 0.0, 1.0).astype(np.float32)

    @staticmethod
    def _size_quantiles(state: MatchState, truth: Truth) -> np.ndarray:
        """Per rank r, the score above which the share of postings whose r-th pair clears it
        equals the share of postings with at least r + 1 true matches."""
        depth = MAX_MATCHES - 1
        true_matches = truth.sizes - 1
        quantiles = np.ones(depth, dtype=np.float64)
        in_range = state.rank < depth
        for r in range(depth):
            wanted = int(round((true_matches >= r + 1).sum()))
            scores = np.sort(state.score[in_range & (state.rank == r)])[::-1]
            if wanted == 0:
                quantiles[r] = 1.0
            elif wanted >= len(scores):
                quantiles[r] = 0.0
            else:
                quantiles[r] = scores[wanted]
        return quantiles

    @staticmethod
    def _keep(state: MatchState, thresholds: np.ndarray) -> np.ndarray:
        depth = len(thresholds)
        ranked = state.rank < depth
        passes = np.zeros(len(state.i), dtype=bool)
        passes[ranked] = state.score[ranked] > thresholds[state.rank[ranked]]
        first_fail = np.full(state.n, depth, dtype=np.int64)
        failing = ~passes
        np.minimum.at(first_fail, state.i[failing], state.rank[failing])
        return state.rank < first_fail[state.i]
