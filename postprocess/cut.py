"""The global cut: j matches i when their (symmetrised) score clears one threshold."""
from __future__ import annotations

from typing import ClassVar

import numpy as np

from .state import MatchState, Truth
from .step import Step


class ThresholdCut(Step):
    """Keep every pair whose score exceeds ``threshold_``; ``fit`` picks it on a grid for F1
    (unless ``threshold`` is given) and records the F1 of every grid threshold in ``curve_``."""

    name: ClassVar[str] = "threshold"
    fitted: ClassVar[dict] = {"threshold": None}

    def __init__(self, threshold: float | None = None, grid: tuple[float, float, float] = (0.02, 0.98, 0.01)):
        self.threshold = threshold
        self.grid = grid

    def fit(self, state: MatchState, truth: Truth) -> ThresholdCut:
        thresholds = np.round(np.arange(*self.grid), 4)
        curve = [(float(t), truth.evaluate(state, state.score > t)["f1"]) for t in thresholds]
        self.threshold_ = (max(curve, key=lambda row: row[1])[0] if self.threshold is None
                           else self.threshold)
        self.curve_ = curve
        return self

    def apply(self, state: MatchState) -> MatchState:
        return state.with_keep(state.score > self.threshold_)
