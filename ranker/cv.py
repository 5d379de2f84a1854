"""Protocol P1 out-of-fold scoring (DESIGN.md): the ranker that scores the pairs whose query
posting is in fold f is trained only on pairs with neither end in fold f."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from common.console import track
from common.folds import EARLY_STOPPING_FOLDS, group_folds

from .model import PairRanker
from .sampling import sample_negatives

log = logging.getLogger(__name__)


@dataclass
class OutOfFold:
    scores: np.ndarray               # p(match) per pair, from the model that never saw its fold
    folds: np.ndarray                # fold per posting
    best_iterations: list[int]
    seconds: list[float] = field(default_factory=list)


class FoldTrainer:
    """Trains rankers on the pairs outside chosen folds, with the folds, sampling, weights and
    inner early-stopping split that every fit of one cross-validation shares.

    Training pairs keep every positive and a ``negative_rate`` share of negatives (see
    :func:`sample_negatives`). Early stopping uses an inner split: training pairs whose query
    posting is in one of ``valid_share`` label-grouped inner folds. ``weight`` multiplies the
    sampling weights (e.g. by group size).
    """

    def __init__(self, y: np.ndarray, i: np.ndarray, j: np.ndarray, labels: np.ndarray,
                 n_folds: int = 5, seed: int = 42, negative_rate: float = 1.0,
                 valid_share: int = EARLY_STOPPING_FOLDS, weight: np.ndarray | None = None):
        self.y, self.i, self.j = y, i, j
        self.folds = group_folds(labels, n_folds, seed)
        self.inner = group_folds(labels, valid_share, seed + 1) == 0
        self.sampled, sample_weight = sample_negatives(y, negative_rate, seed)
        self.weight = np.zeros(len(y), dtype=np.float32)
        self.weight[self.sampled] = sample_weight
        if weight is not None:
            self.weight *= weight

    def query_in(self, fold: int) -> np.ndarray:
        return self.folds[self.i] == fold

    def fit_outside(self, make_ranker: Callable[[], PairRanker], X: np.ndarray,
                    feature_names: list[str], *excluded: int) -> PairRanker:
        """A ranker trained on the sampled pairs with neither end in any ``excluded`` fold."""
        keep = self.sampled.copy()
        for fold in excluded:
            keep &= (self.folds[self.i] != fold) & (self.folds[self.j] != fold)
        train = np.flatnonzero(keep)
        return make_ranker().fit(X[train], self.y[train], feature_names,
                                      valid_mask=self.inner[self.i[train]],
                                      weight=self.weight[train])


def out_of_fold_scores(X: np.ndarray, y: np.ndarray, i: np.ndarray, j: np.ndarray,
                       labels: np.ndarray, feature_names: list[str],
                       make_ranker: Callable[[], PairRanker], n_folds: int = 5, seed: int = 42,
                       negative_rate: float = 1.0, valid_share: int = EARLY_STOPPING_FOLDS,
                       weight: np.ndarray | None = None) -> OutOfFold:
    """Train one ranker per fold and score that fold's pairs (settings: :class:`FoldTrainer`);
    scoring always covers every pair of the fold."""
    trainer = FoldTrainer(y, i, j, labels, n_folds, seed, negative_rate, valid_share, weight)
    scores = np.full(len(y), np.nan, dtype=np.float32)
    best, seconds = [], []
    for fold in track(range(n_folds), "cross-validation", total=n_folds):
        start = time.perf_counter()
        ranker = trainer.fit_outside(make_ranker, X, feature_names, fold)
        held = trainer.query_in(fold)
        scores[held] = ranker.predict(X[held])
        best.append(ranker.best_iteration_)
        seconds.append(round(time.perf_counter() - start, 3))
        log.info(f"  fold {fold}: {ranker.best_iteration_} trees, {seconds[-1]:.1f} s")
    return OutOfFold(scores, trainer.folds, best, seconds)


def fit_final(X: np.ndarray, y: np.ndarray, feature_names: list[str], make_ranker:
              Callable[[], PairRanker], rounds: int, seed: int = 42, negative_rate: float = 1.0,
              weight: np.ndarray | None = None) -> PairRanker:
    """The model for new catalogs: all pairs (same sampling), a fixed number of trees."""
    sampled, sample_weight = sample_negatives(y, negative_rate, seed)
    if weight is not None:
        sample_weight = sample_weight * weight[sampled]
    ranker = make_ranker()
    ranker.rounds = rounds
    return ranker.fit(X[sampled], y[sampled], feature_names, weight=sample_weight)
