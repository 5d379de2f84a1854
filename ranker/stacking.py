"""Two-stage ranking: a second ranker sees, beside the pair features, the first ranker's scores
around each pair.

A pair's own features cannot tell that i's best candidate scores 0.95 while j sits at 0.4 in its
list, or that i and j share three confident neighbours; the first stage's scores of the other
pairs can. The second stage adds the ``score_graph`` group (:mod:`features.score_graph`):
p(i, j) and p(j, i), each end's best and summed score and count of confident pairs, the pair's
rank in each end's list, its share of each end's best, and the two-hop score
Σ_k p̄(i, k)·p̄(k, j) (p̄: the mean of both directions).
On Shopee train (P1, titles + phash) it lifts the threshold-only out-of-fold F1 from 0.768 to
0.792.

Cross-validation is nested so that nothing that scores fold f has seen fold f's labels: for
outer fold f, pairs whose query is in f keep their first-stage P1 score (a model trained outside
f), and pairs whose query is in another fold g are re-scored by a first-stage model trained
outside f and g (one per unordered fold pair, shared by outer folds f and g); the second-stage
ranker for f is trained on the pairs outside f with score-graph features from those scores.
"""
from __future__ import annotations

import logging
import time
from typing import Callable, Iterable

import numpy as np

from common.console import track
from features import SCORE_GRAPH_FEATURES, ScoreGraph, score_graph_features

from .cv import EARLY_STOPPING_FOLDS, FoldTrainer, OutOfFold
from .model import PairRanker

log = logging.getLogger(__name__)

# The second stage starts from features that nearly decide the pair, so it settles within a
# hundred or two trees. At 0.2 early stopping cut it at 20-50 trees, before it had learnt what
# the score graph says: 0.1 gains 0.0025 out-of-fold F1 on Shopee (0.0054 with arcface_text)
# for about a minute more of train-ranker (README, "Second stage"). XGBoost's was not re-measured.
SECOND_STAGE_PARAMS = {"lightgbm": {"learning_rate": 0.1}, "xgboost": {"eta": 0.2}}


def stacked_out_of_fold_scores(X: np.ndarray, y: np.ndarray, i: np.ndarray, j: np.ndarray,
                               labels: np.ndarray, feature_names: list[str],
                               make_ranker: Callable[[], PairRanker], first: OutOfFold,
                               n_folds: int = 5, seed: int = 42, negative_rate: float = 1.0,
                               valid_share: int = EARLY_STOPPING_FOLDS,
                               weight: np.ndarray | None = None,
                               make_second: Callable[[], PairRanker] | None = None) -> OutOfFold:
    """Second-stage out-of-fold scores by the nested protocol of this module's docstring.

    ``first`` holds the first stage's P1 out-of-fold scores for the same pairs, folds and
    settings; ``X`` the first stage's features. Costs n·(n−1)/2 first-stage fits on fewer pairs
    plus n second-stage fits, by ``make_second`` (default: ``make_ranker``).
    """
    if n_folds < 3:
        raise ValueError("the nested cross-validation trains outside two folds at a time: it "
                         "needs at least 3 folds")
    n = len(labels)
    trainer = FoldTrainer(y, i, j, labels, n_folds, seed, negative_rate, valid_share, weight)
    if not np.array_equal(trainer.folds, first.folds):
        raise ValueError("the first stage was cross-validated on other folds")
    names = list(feature_names) + list(SCORE_GRAPH_FEATURES)
    width = X.shape[1]
    stacked = np.empty((len(y), width + len(SCORE_GRAPH_FEATURES)), dtype=np.float32)
    stacked[:, :width] = X
    pair_scores: dict[tuple[int, int], np.ndarray] = {}
    outer = [(f, g) for f in range(n_folds) for g in range(f + 1, n_folds)]
    start = time.perf_counter()
    for f, g in track(outer, "first stage outside fold pairs", total=len(outer)):
        ranker = trainer.fit_outside(make_ranker, X, feature_names, f, g)
        rows = np.flatnonzero(trainer.query_in(f) | trainer.query_in(g))
        pair_scores[f, g] = np.full(len(y), np.nan, dtype=np.float32)
        pair_scores[f, g][rows] = ranker.predict(X[rows])
    log.info(f"  {len(outer)} first-stage models outside fold pairs: "
             f"{time.perf_counter() - start:.1f} s")
    scores = np.full(len(y), np.nan, dtype=np.float32)
    best, seconds = [], []
    for fold in track(range(n_folds), "second-stage cross-validation", total=n_folds):
        begin = time.perf_counter()
        p = first.scores.copy()
        for other in range(n_folds):
            if other != fold:
                rows = trainer.query_in(other)
                p[rows] = pair_scores[min(fold, other), max(fold, other)][rows]
        stacked[:, width:] = score_graph_features(i, j, p, n)
        ranker = trainer.fit_outside(make_second or make_ranker, stacked, names, fold)
        held = trainer.query_in(fold)
        scores[held] = ranker.predict(stacked[held])
        best.append(ranker.best_iteration_)
        seconds.append(round(time.perf_counter() - begin, 3))
        log.info(f"  second stage, fold {fold}: {ranker.best_iteration_} trees, "
                 f"{seconds[-1]:.1f} s")
    return OutOfFold(scores, trainer.folds, best, seconds)


def stacked_matrix(X: np.ndarray, first_scores: np.ndarray, i: np.ndarray, j: np.ndarray,
                   n: int) -> np.ndarray:
    """The second stage's input: ``X`` with the score-graph features of ``first_scores``."""
    return _side_by_side(X, score_graph_features(i, j, first_scores, n))


def _side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    # One row-major float32 buffer: np.hstack of a column-major block (polars' to_numpy) took
    # 2 s per million pairs, and the boosters copy anything not row-major again.
    out = np.empty((len(left), left.shape[1] + right.shape[1]), dtype=np.float32)
    out[:, :left.shape[1]] = left
    out[:, left.shape[1]:] = right
    return out


def predict_second_stage(second: PairRanker, blocks: Iterable[np.ndarray],
                         first_scores: np.ndarray, i: np.ndarray, j: np.ndarray,
                         n: int) -> np.ndarray:
    """Second-stage p(match) for pairs whose first-stage features come in row ``blocks`` (so
    millions of pairs never need the whole matrix at once, nor all their score-graph
    features)."""
    graph = ScoreGraph(i, j, first_scores, n)
    out, start = [np.empty(0, np.float32)], 0
    for block in blocks:
        out.append(second_stage_rows(second, block, graph, start))
        start += len(block)
    if start != len(graph):
        raise ValueError(f"the blocks hold {start} pairs, the scores {len(graph)}")
    return np.concatenate(out)


def second_stage_rows(second: PairRanker, block: np.ndarray, graph: ScoreGraph,
                      start: int) -> np.ndarray:
    """Second-stage p(match) of the pairs from row ``start`` on whose first-stage features are
    ``block``: one block's worth of :func:`predict_second_stage`, which a Dask task runs."""
    stop = start + len(block)
    if stop > len(graph):
        raise ValueError(f"the blocks hold more pairs than the {len(graph)} scores")
    return second.predict(_side_by_side(block, graph.features(start, stop)))
