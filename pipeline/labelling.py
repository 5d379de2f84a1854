"""Active learning over a work directory's candidates (``python cli.py label``): ask about the
candidate pairs whose answer would teach the ranker most, save each answer at once, retrain
between rounds.

A :class:`LabellingSession` holds the candidates' features (built once), the answers so far
(the labels file, an append-only :class:`~common.labels.LabelLog`, read back on resume) and the
ranker trained on them. Questions come in rounds of ``round_size``: the first round, before any
model, from the label-free seed of :class:`~ranker.active.ActiveSampler`; the next ones from
the current model's least certain pairs (``strategy="random"``: uniformly drawn candidate pairs,
the baseline). The model a session trains on N answers is the one ``train-ranker --labels``
trains on the same file (:func:`pipeline.pair_training.train_on_labels`).

:func:`run_oracle` answers from true groups instead of a person: benchmarks and tests.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from common.atomic import write_json
from common.console import Timer
from common.errors import InputError
from common.labels import UNSURE, LabelLog, PairLabels
from common.metric import score_pairs
from common.postings import load_postings
from common.text import display_titles
from ranker.active import random_batch

from .pair_training import (MATCH_PROBABILITY, LabelledCandidates, cross_validated,
                            match_processor)
from .settings import ParameterError, feature_groups
from .stages import Candidates

log = logging.getLogger(__name__)

STRATEGIES = ("active", "random")


@dataclass
class Estimate:
    """After a round: the answers so far, the pairs the model they trained keeps, and its
    estimated precision and recall: cross-validated over the answered pairs (pairwise, at the
    0.5 cut). Active learning asks about the hard pairs, so these run below the catalog's."""

    answered: int
    matches: int
    kept_pairs: int
    precision: float
    recall: float
    f1: float | None = None  # against the oracle's true groups, where there is one

    def as_dict(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in vars(self).items()}


class LabellingSession:
    """See the module docstring; ``open`` builds one over a work directory."""

    def __init__(self, labelled: LabelledCandidates, labels_path: str | Path,
                 round_size: int = 50, backend: str = "lightgbm", folds: int = 5,
                 seed: int = 42, strategy: str = "active", source: str = "user"):
        if strategy not in STRATEGIES:
            raise ParameterError("strategy", f"must be one of {', '.join(STRATEGIES)}")
        if round_size < 1:
            raise ParameterError("round_size", "must be at least 1")
        if folds < 2:
            raise ParameterError("folds", "must be at least 2")
        self.labelled = labelled
        self.log_file = LabelLog(labels_path)
        self.round_size, self.backend, self.folds, self.seed = round_size, backend, folds, seed
        self.strategy, self.source = strategy, source
        self.ids = labelled.candidates.postings["posting_id"]
        self.titles = display_titles(labelled.candidates.postings["title"])
        self.sampler = labelled.sampler(seed)
        self.rng = np.random.default_rng(seed)
        self.p: np.ndarray | None = None
        self.reload()

    @classmethod
    def open(cls, work: str | Path, labels_path: str | Path, groups: str | list | None = None,
             **settings) -> LabellingSession:
        timer = Timer()
        candidates = Candidates.load(work, timer)
        start = time.perf_counter()
        labelled = LabelledCandidates.build(candidates, feature_groups(groups))
        log.info(f"features of {len(labelled.i):,} candidate pairs "
                 f"({len(labelled.pair_keys):,} unordered) in {time.perf_counter() - start:.1f} s")
        return cls(labelled, labels_path, **settings)

    # ------------------------------------------------------------------ answers

    def reload(self) -> None:
        """Read the labels file (a resumed session starts from every answer it holds)."""
        path = self.log_file.path
        self.labels = (PairLabels.read(path, self.ids) if path.exists() and path.stat().st_size
                       else PairLabels.empty())
        position = self.labelled.pair_positions(self.labels)
        self.asked = np.zeros(len(self.labelled.pair_keys), dtype=bool)
        self.asked[position[position >= 0]] = True
        self.target = self.labelled.pair_targets(self.labels, from_groups=False)

    def answer(self, pair: int, match: int) -> None:
        """Record ``match`` (1, 0 or :data:`~common.labels.UNSURE`) for candidate pair ``pair``:
        on disk first, then in memory."""
        a, b = int(self.labelled.pair_i[pair]), int(self.labelled.pair_j[pair])
        self.log_file.append(self.ids[a], self.ids[b], match, self.source)
        self.asked[pair] = True
        if match != UNSURE:
            self.target[pair] = match

    def undo(self) -> bool:
        """Take back the last answer; False when there is none."""
        if not self.log_file.drop_last():
            return False
        self.reload()
        return True

    @property
    def answered(self) -> int:
        return int((self.target >= 0).sum())

    # ------------------------------------------------------------------ the model

    def retrain(self, truth: np.ndarray | None = None) -> Estimate:
        """Fit the ranker on the answers so far and score every candidate pair; ``truth``
        (label codes per posting) adds the F1 of its match sets against true groups."""
        ranker = self.labelled.fit_ranker(self.target, self.backend, self.seed)
        matches = int((self.target == 1).sum())
        if ranker is None:  # one class only: nothing to learn from yet, every posting alone
            self.p = None
            nothing = np.zeros(0, np.int64)
            return Estimate(self.answered, matches, 0, 0.0, 0.0,
                            None if truth is None else score_pairs(nothing, nothing, truth).f1)
        self.p = ranker.predict(self.labelled.X)
        self.pair_p = self.sampler.pair_scores(self.p)
        kept = self.pair_p > MATCH_PROBABILITY
        figures = cross_validated(self.labelled, self.target, self.backend, self.folds,
                                  self.seed)[0]
        estimate = Estimate(self.answered, matches, int(kept.sum()), figures["precision"],
                            figures["recall"])
        if truth is not None:
            kept_i, kept_j, _ = match_processor().predict(self.labelled.i, self.labelled.j,
                                                          self.p, len(truth))
            estimate.f1 = score_pairs(kept_i, kept_j, truth).f1
        return estimate

    def next_batch(self) -> np.ndarray:
        """The next round's questions (candidate pair positions), not asked before."""
        if self.strategy == "random":
            return random_batch(self.round_size, self.asked, self.rng)
        return self.sampler.next_batch(self.round_size, self.asked, self.p)

    def question(self, pair: int) -> dict:
        """What the terminal shows about candidate pair ``pair``."""
        a, b = int(self.labelled.pair_i[pair]), int(self.labelled.pair_j[pair])
        p = None if self.p is None else float(self.pair_p[pair])
        return {"a": self.ids[a], "b": self.ids[b], "title_a": self.titles[a],
                "title_b": self.titles[b], "p": p}


def oracle_truth(path: str | Path, posting_ids: pl.Series) -> np.ndarray:
    """Label codes per posting of the work directory, from a postings file with true groups."""
    oracle = load_postings(path)
    if "label_group" not in oracle.columns:
        raise InputError("the oracle's postings have no label_group column", file=str(path),
                         column="label_group")
    groups = dict(zip(oracle["posting_id"].to_list(), oracle["label_group"].to_list()))
    missing = [pid for pid in posting_ids.to_list() if pid not in groups]
    if missing:
        raise InputError(f"{len(missing):,} postings of the work directory are not in the "
                         f"oracle's file (first: {missing[0]!r})", file=str(path),
                         column="posting_id")
    _, codes = np.unique(np.array([groups[pid] for pid in posting_ids.to_list()], dtype=str),
                         return_inverse=True)
    return codes.astype(np.int64)


def run_oracle(session: LabellingSession, truth: np.ndarray, budget: int,
               curve_path: str | Path | None = None) -> list[dict]:
    """Answer rounds from ``truth`` until the labels file holds ``budget`` answers; after
    every round the estimate and the true per-posting F1 of the session's model (the learning
    curve, written to ``curve_path`` as it grows)."""
    curve = []
    if session.answered:
        curve.append(session.retrain(truth).as_dict())
    while session.answered < budget:
        batch = session.next_batch()[: budget - session.answered]
        if not len(batch):
            break
        for pair in batch:
            a, b = session.labelled.pair_i[pair], session.labelled.pair_j[pair]
            session.answer(int(pair), int(truth[a] == truth[b]))
        curve.append(session.retrain(truth).as_dict())
        log.info(f"  {curve[-1]['answered']} answers ({curve[-1]['matches']} matches): "
                 f"F1 {curve[-1]['f1']:.4f}, estimated precision {curve[-1]['precision']:.3f}, "
                 f"recall {curve[-1]['recall']:.3f}")
        if curve_path is not None:
            write_json(curve_path, {"strategy": session.strategy, "round_size":
                                    session.round_size, "seed": session.seed, "curve": curve})
    return curve
