"""First-pass pair filter: a small ranker on the cheap feature groups drops the candidate pairs
that stand no chance before the costly groups (fuzzy, units, neighbourhood, graph) are built.

Most candidate pairs are plain non-matches: on the Shopee P1 run the default threshold 0.01 keeps
31 % of them and 95 % of the matching ones (at 0.05: 13 % and 88 %, for the same out-of-fold F1
on Shopee and less on the title-only catalogs), so features, scoring and post-processing then
handle a third of the pairs.
The decision is symmetric (a pair is kept when either direction scores at least
``threshold``), so the kept table stays closed under symmetry.

Each posting also names at most ``max_pairs`` pairs: a pair stays only when it is among the
best ``max_pairs`` of at least one of its ends by first-pass score, so the kept table holds at
most 2 · max_pairs · n pairs, and every posting keeps its own best ``max_pairs`` (one product
posted 300 times still matches 49 others everywhere; a mutual rule would leave most of them
alone). A match set holds at most 49 others, so a posting needs no more; a dense catalog (a
million postings with many near-identical listings) keeps 75 pairs per posting or more above the
threshold, and features, scoring and post-processing grow with them (README, "train-ranker"
and "Scale").
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from common.errors import InputError
from common.pairs import rank_within_query, reverse_positions

from .cv import fit_final, out_of_fold_scores
from .model import PairRanker

# Groups whose features are columns of the candidates table or per-pair lookups: together
# about 0.3 s per million pairs, against 5 s for the rest. 'source' ranks the table once per
# embedder where the postings name sources, and tells the two sides of a linkage apart.
FILTER_GROUPS = ("similarity", "phash", "source")
# The most pairs a posting keeps (README, "train-ranker"; the Shopee match sets hold ≤ 49 others).
MAX_PAIRS = 50
# A small, quickly stopping model: it only has to tell plain non-matches from the rest.
SMALL_PARAMS = {"lightgbm": {"num_leaves": 31, "learning_rate": 0.2, "min_data_in_leaf": 100},
                "xgboost": {"max_leaves": 31, "eta": 0.2, "min_child_weight": 20}}


class PairFilter:
    """Keep the pairs whose first-pass p(match), in either direction, is ≥ ``threshold`` and
    that are among the best ``max_pairs`` of at least one of their ends (None: no bound).

    ``X`` holds the features of the feature ``groups``. :meth:`fit` scores the training pairs
    out of fold (protocol P1, the folds the main ranker uses), so ``oof_keep_`` is the kept set
    those pairs would get from a filter that never saw their labels; the model used by
    :meth:`keep` on new catalogs is then fitted on all pairs. With a Dask ``client`` its
    rankers train on the cluster (see :class:`~ranker.model.PairRanker`, which also says what
    ``view_dropout`` and ``view_columns`` do).
    """

    def __init__(self, threshold: float = 0.01, max_pairs: int | None = MAX_PAIRS,
                 groups: tuple[str, ...] = FILTER_GROUPS, backend: str = "lightgbm",
                 rounds: int = 200, early_stopping: int = 20, num_threads: int = 0,
                 seed: int = 42, client=None, view_dropout: float = 0.0,
                 view_columns: tuple[str, ...] = ()):
        self.threshold = threshold
        self.max_pairs = max_pairs
        self.groups = list(groups)
        self.backend = backend
        self.rounds = rounds
        self.early_stopping = early_stopping
        self.num_threads = num_threads
        self.seed = seed
        self.client = client
        self.view_dropout = view_dropout
        self.view_columns = tuple(view_columns)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "client": None}  # a connection to a cluster, not model state

    def _make_ranker(self) -> PairRanker:
        return PairRanker(self.backend, params=SMALL_PARAMS.get(self.backend), rounds=self.rounds,
                          early_stopping=self.early_stopping, num_threads=self.num_threads,
                          seed=self.seed, client=self.client, view_dropout=self.view_dropout,
                          view_columns=self.view_columns)

    def fit(self, X: np.ndarray, y: np.ndarray, i: np.ndarray, j: np.ndarray,
            labels: np.ndarray, feature_names: list[str], n_folds: int = 5,
            negative_rate: float = 0.25) -> PairFilter:
        if not 0 < self.threshold < 1:
            raise ValueError("filter threshold must be in (0, 1)")
        if self.max_pairs is not None and self.max_pairs < 1:
            raise ValueError("filter max_pairs must be at least 1 (or None: no bound)")
        start = time.perf_counter()
        n = len(labels)
        oof = out_of_fold_scores(X, y, i, j, labels, feature_names, self._make_ranker, n_folds,
                                 self.seed, negative_rate=negative_rate)
        self.oof_keep_ = self.decide(oof.scores, i, j, n)
        rounds = int(np.median(oof.best_iterations))
        self.ranker_ = fit_final(X, y, feature_names, self._make_ranker, rounds, self.seed,
                                 negative_rate)
        positives = int(y.sum())
        self.report_ = {"threshold": self.threshold, "pairs": int(len(y)),
                        "kept_pairs": int(self.oof_keep_.sum()), "positive_pairs": positives,
                        "positive_pairs_dropped": positives - int(y[self.oof_keep_].sum()),
                        "trees": rounds, "seconds": round(time.perf_counter() - start, 3)}
        return self

    @property
    def feature_names_(self) -> list[str]:
        return self.ranker_.feature_names_

    def keep(self, X: np.ndarray, i: np.ndarray, j: np.ndarray, n: int) -> np.ndarray:
        """Boolean mask of the pairs to keep; ``X`` holds :attr:`feature_names_` in order."""
        return self.decide(self.score(X), i, j, n)

    def score(self, X: np.ndarray) -> np.ndarray:
        """First-pass p(match) of each row of ``X`` (:attr:`feature_names_` in order): a table
        too big for one matrix is scored in chunks, then :meth:`decide` sees every score."""
        return self.ranker_.predict(X)

    def decide(self, p: np.ndarray, i: np.ndarray, j: np.ndarray, n: int) -> np.ndarray:
        """Which pairs of a whole table (closed under symmetry) to keep, from their scores."""
        reverse = reverse_positions(i, j, n)
        has_reverse = reverse >= 0
        reverse = np.maximum(reverse, 0)
        p = np.where(has_reverse, np.maximum(p, p[reverse]), p)  # both directions: the max
        keep = p >= self.threshold
        if self.max_pairs is None:
            return keep
        rows = np.flatnonzero(keep)
        best = np.zeros(len(keep), dtype=bool)
        best[rows[rank_within_query(i[rows], p[rows]) < self.max_pairs]] = True
        return best | (has_reverse & best[reverse])

    def save(self, folder: str | Path, feature_groups: dict[str, str]) -> None:
        self.ranker_.save(folder, feature_groups, {"filter_threshold": self.threshold,
                                                   "filter_max_pairs": self.max_pairs})

    @classmethod
    def load(cls, folder: str | Path) -> PairFilter:
        ranker, schema = PairRanker.load(folder)
        threshold = schema.get("filter_threshold")
        if not (isinstance(threshold, float) and 0 < threshold < 1):
            raise InputError("'filter_threshold' is not a number in (0, 1)",
                             file=str(Path(folder) / "schema.json"))
        # Models from before the bound keep every pair above the threshold.
        max_pairs = schema.get("filter_max_pairs")
        if not (max_pairs is None or (isinstance(max_pairs, int)
                                       and not isinstance(max_pairs, bool) and max_pairs >= 1)):
            raise InputError("'filter_max_pairs' is not a whole number ≥ 1 (or null)",
                             file=str(Path(folder) / "schema.json"))
        pair_filter = cls(threshold, max_pairs, sorted({f["group"] for f in schema["features"]}),
                          backend=ranker.backend)
        pair_filter.ranker_ = ranker
        return pair_filter
