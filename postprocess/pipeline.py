"""The post-processing pipeline: symmetrise the pair scores, run the switched-on steps in order,
cap at 50 matches. Its parameters are plain data (saved in the model's ``schema.json`` under
``postprocess``), so ``submit`` repeats exactly what ``train-ranker`` tuned."""
from __future__ import annotations

import time

import numpy as np

from common.pairs import rank_within_query, symmetrise

from .chisel import Chisel
from .cut import ThresholdCut
from .graph import GraphMerge, PruneOneWay
from .min2 import Min2
from .mutual_best import MutualBest
from .pairs import MAX_MATCHES
from .score_blend import ScoreBlend
from .state import MatchState, Truth

STEPS = {step.name: step for step in (ThresholdCut, ScoreBlend, Chisel, Min2, PruneOneWay,
                                       GraphMerge, MutualBest)}
# The order they run in: the cut (re-tuned on neighbour-blended scores) and chisel decide each
# list, Min2 refills empty ones, the graph steps then work on the resulting match graph.
DEFAULT_STEPS = ("threshold", "score_blend", "chisel", "min2", "prune", "merge")


class PostProcessor:
    """Scikit-learn style: parameters in ``__init__``; ``fit`` tunes each step in turn on scored,
    labelled pairs (out-of-fold scores) and records F1, precision and recall after every step in
    ``report_``; ``predict`` returns the kept pairs. ``threshold`` is always the first step."""

    def __init__(self, steps: tuple[str, ...] | list[str] = DEFAULT_STEPS, symmetrise: str = "mean",
                 max_matches: int = MAX_MATCHES):
        self.steps = tuple(steps)
        self.symmetrise = symmetrise
        self.max_matches = max_matches

    def _validate(self) -> None:
        unknown = [s for s in self.steps if s not in STEPS]
        if unknown:
            raise ValueError(f"unknown post-processing steps {unknown} (known: {list(STEPS)})")
        if not self.steps or self.steps[0] != "threshold" or len(set(self.steps)) != len(self.steps):
            raise ValueError("post-processing steps must start with 'threshold' and not repeat")
        if self.symmetrise not in ("mean", "max", "none"):
            raise ValueError(f"unknown symmetrisation {self.symmetrise!r} (mean, max, none)")

    def fit(self, i: np.ndarray, j: np.ndarray, p: np.ndarray, labels: np.ndarray) -> PostProcessor:
        self._validate()
        truth = Truth(labels)
        state = self._start(i, j, p, len(labels))
        self.steps_, self.report_ = [], []
        for name in self.steps:
            start = time.perf_counter()
            if name == "chisel":  # bends the latest global cut
                step = Chisel(base=[s.threshold_ for s in self.steps_
                                    if s.name in ("threshold", "score_blend")][-1])
            else:
                step = STEPS[name]()
            state = step.fit(state, truth).apply(state)
            self.steps_.append(step)
            self.report_.append({"step": name, **_rounded(truth.evaluate(state, self._capped(state))),
                                 "seconds": round(time.perf_counter() - start, 3)})
        self.report_.append({"step": "cap", **_rounded(truth.evaluate(state, self._capped(state)))})
        self.threshold_curve_ = self.steps_[0].curve_
        return self

    def predict(self, i: np.ndarray, j: np.ndarray, p: np.ndarray, n: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The kept pairs ``(i, j, score)`` (self is implicit), at most ``max_matches - 1`` per
        posting, best first within each posting."""
        state = self._start(i, j, p, n)
        for step in self.steps_:
            state = step.apply(state)
        keep = self._capped(state)
        return state.i[keep], state.j[keep], state.score[keep]

    def _start(self, i, j, p, n) -> MatchState:
        i = np.asarray(i, dtype=np.int64)
        j = np.asarray(j, dtype=np.int64)
        return MatchState.from_pairs(i, j, symmetrise(i, j, np.asarray(p, np.float32), n,
                                                      self.symmetrise), n)

    def _capped(self, state: MatchState) -> np.ndarray:
        """The kept pairs that are among their posting's best ``max_matches - 1`` kept ones."""
        kept = np.flatnonzero(state.keep)
        within = rank_within_query(state.i[kept], state.score[kept]) < self.max_matches - 1
        keep = np.zeros(len(state.i), dtype=bool)
        keep[kept[within]] = True
        return keep

    def fitted_params(self) -> dict:
        """Plain data: what ``from_params`` needs to rebuild the fitted pipeline (saved in the
        model's ``schema.json`` under ``postprocess``)."""
        return {"symmetrise": self.symmetrise, "max_matches": self.max_matches,
                "steps": [{"step": s.name, **s.fitted_params()} for s in self.steps_]}

    @classmethod
    def from_params(cls, params: dict) -> PostProcessor:
        """Rebuild a fitted pipeline from :meth:`fitted_params` (or a threshold-only model's
        ``{"symmetrise", "threshold", "max_matches"}``)."""
        steps = params.get("steps")
        if steps is None:
            steps = [{"step": "threshold", "threshold": params["threshold"]}]
        processor = cls([s["step"] for s in steps], params.get("symmetrise", "mean"),
                        params.get("max_matches", MAX_MATCHES))
        processor._validate()
        processor.steps_ = [STEPS[s["step"]].from_fitted(**{k: v for k, v in s.items()
                                                             if k != "step"})
                            for s in steps]
        # Replay on two postings and one pair: a parameter of the wrong type (a threshold saved
        # as text) fails here, at load time, not halfway through a submission.
        processor.predict(np.array([0, 1]), np.array([1, 0]), np.array([0.5, 0.5]), 2)
        return processor


def _rounded(score: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 6) for k, v in score.items()}
