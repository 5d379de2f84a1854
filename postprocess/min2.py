"""Min2: a posting left with no match gets its best candidate when that candidate's score clears a
lower threshold. Every Shopee posting has at least one other posting of its product in the
training set's construction, so an empty prediction is usually a missed match, not a singleton."""
from __future__ import annotations

from typing import ClassVar

import numpy as np

from .state import MatchState, Truth
from .step import Step


class Min2(Step):
    """Give each posting without a kept pair its rank-0 candidate when its score exceeds
    ``threshold_``. ``fit`` tunes it on a grid below the current cut (the top of the grid,
    1.0, switches the step off) unless ``threshold`` is given."""

    name: ClassVar[str] = "min2"
    fitted: ClassVar[dict] = {"threshold": None}

    def __init__(self, threshold: float | None = None, grid_step: float = 0.01):
        self.threshold = threshold
        self.grid_step = grid_step

    def fit(self, state: MatchState, truth: Truth) -> Min2:
        if self.threshold is not None:
            self.threshold_ = self.threshold
            return self
        candidates = np.round(np.append(np.arange(0.0, 1.0, self.grid_step), 1.0), 4)
        curve = [(float(t), truth.evaluate(state, self._keep(state, t))["f1"]) for t in candidates]
        # Ties go to the highest threshold: the smallest change that reaches the best F1.
        best = max(curve, key=lambda row: (round(row[1], 9), row[0]))
        self.threshold_ = best[0]
        return self

    def apply(self, state: MatchState) -> MatchState:
        return state.with_keep(self._keep(state, self.threshold_))

    @staticmethod
    def _keep(state: MatchState, threshold: float) -> np.ndarray:
        has_match = np.bincount(state.i[state.keep], minlength=state.n) > 0
        rescue = (state.rank == 0) & ~has_match[state.i] & (state.score > threshold)
        return state.keep | rescue
