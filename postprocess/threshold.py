"""Threshold post-processing: j matches i when the (symmetrised) score clears a tuned threshold."""
from __future__ import annotations

import numpy as np

from .pairs import MAX_MATCHES, rank_within_query, symmetrise


def f1_for_selection(i: np.ndarray, j_same: np.ndarray, keep: np.ndarray, group_sizes: np.ndarray,
                     n: int) -> tuple[float, float, float]:
    """Mean F1, precision, recall when posting q predicts itself plus the kept pairs (q, ·).

    ``j_same[k]`` says whether pair k is a true match; ``group_sizes[q]`` is |T| for posting q.
    """
    hits = 1 + np.bincount(i[keep], weights=j_same[keep], minlength=n)
    size = 1 + np.bincount(i[keep], minlength=n)
    f1 = 2 * hits / (size + group_sizes)
    return float(f1.mean()), float((hits / size).mean()), float((hits / group_sizes).mean())


class ThresholdMatcher:
    """Scikit-learn-style: ``fit`` tunes ``threshold_`` for F1 on scored, labelled pairs."""

    def __init__(self, symmetrise: str = "mean", grid: tuple[float, float, float] = (0.02, 0.98, 0.01),
                 max_matches: int = MAX_MATCHES):
        self.symmetrise = symmetrise
        self.grid = grid
        self.max_matches = max_matches

    def fit(self, i: np.ndarray, j: np.ndarray, p: np.ndarray, labels: np.ndarray) -> ThresholdMatcher:
        n = len(labels)
        score = symmetrise(i, j, p, n, self.symmetrise)
        allowed = rank_within_query(i, score) < self.max_matches - 1
        same = (labels[i] == labels[j]).astype(np.float64)
        sizes = np.bincount(labels)[labels].astype(np.float64)
        thresholds = np.round(np.arange(*self.grid), 4)
        curve = [(float(t), *f1_for_selection(i, same, allowed & (score > t), sizes, n))
                 for t in thresholds]
        best = max(curve, key=lambda row: row[1])
        self.threshold_ = best[0]
        self.score_ = {"f1": best[1], "precision": best[2], "recall": best[3]}
        self.curve_ = curve
        return self

    def predict(self, i: np.ndarray, j: np.ndarray, p: np.ndarray, n: int) -> np.ndarray:
        """Boolean mask of the pairs kept as matches (self is implicit)."""
        score = symmetrise(i, j, p, n, self.symmetrise)
        return (score > self.threshold_) & (rank_within_query(i, score) < self.max_matches - 1)

    def get_params(self) -> dict:
        return {"symmetrise": self.symmetrise, "threshold": self.threshold_,
                "max_matches": self.max_matches}
