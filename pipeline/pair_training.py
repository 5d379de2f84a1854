"""Training from pair labels (:mod:`common.labels`) instead of a ``label_group`` on every
posting: a catalog where someone answered a few hundred "same product?" questions.

The ranker trains on the candidate pairs that carry an answer (both directions of a pair), plus
where the postings have ``label_group`` the pairs those groups decide (an explicit answer wins).
Without groups there is no per-posting F1 to tune the post-processing on, and the answered pairs
are no random sample (active learning asks about the hard ones), so the match sets are the
pairs whose symmetrised probability clears 0.5 — the cut a calibrated model's F1 is best at when
it knows nothing else — and the group-size steps (Min2, chisel, merge…) stay off. The
out-of-fold figures are pairwise precision, recall and F1 over the answered pairs; per-posting F1
needs groups, and is reported (in-sample: the model saw the answered pairs) only where the
postings have them.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from common.atomic import write_json
from common.console import Timer
from common.errors import InputError
from common.labels import PairLabels
from common.metric import entity_resolution_scores, precision_recall_f1, score_pairs
from common.postings import has_labels, label_codes
from common.workdir import WorkDir
from features import FEATURE_GROUPS, FeatureTable
from postprocess import PostProcessor
from ranker import score_quantiles
from ranker.active import (ActiveSampler, labelled_out_of_fold, labelled_pairs_ranker,
                           pair_means, unordered_pairs)

from .bundle import ModelBundle
from .coverage import coverage
from .settings import feature_groups
from .stages import Candidates, table_fingerprint
from .training import Training, features_of

log = logging.getLogger(__name__)

MATCH_PROBABILITY = 0.5
# The feature groups of the ranker trained on pair labels, unless named: the default ones and
# the model codes. A few hundred answers teach the small ranker what a shared code means long
# before they teach it the words (README, "Pair labels and active learning"); full-label
# training leaves the group out, where it costs Shopee train 0.005.
LABELLED_PAIRS_GROUPS = [*FEATURE_GROUPS, "identifiers"]


@dataclass
class LabelledCandidates:
    """Every candidate pair's features, and the unordered pairs that labels address:
    ``row_pair[r]`` is directed row r's position in ``pair_keys`` (i·n + j, i < j)."""

    candidates: Candidates
    features: FeatureTable
    X: np.ndarray
    i: np.ndarray
    j: np.ndarray
    pair_keys: np.ndarray
    row_pair: np.ndarray

    @classmethod
    def build(cls, candidates: Candidates, groups: list[str] | None, client=None,
              chunk_size: int | None = None) -> LabelledCandidates:
        """The features of ``groups`` (None: :data:`LABELLED_PAIRS_GROUPS`) of every pair."""
        groups = LABELLED_PAIRS_GROUPS if groups is None else groups
        features = features_of(candidates.context(), groups, client, chunk_size)
        i = features.frame["i"].to_numpy().astype(np.int64)
        j = features.frame["j"].to_numpy().astype(np.int64)
        keys, row_pair = unordered_pairs(i, j, candidates.postings.height)
        return cls(candidates, features, features.matrix(), i, j, keys, row_pair)

    @property
    def n(self) -> int:
        return self.candidates.postings.height

    @property
    def pair_i(self) -> np.ndarray:
        return self.pair_keys // self.n

    @property
    def pair_j(self) -> np.ndarray:
        return self.pair_keys % self.n

    def pair_positions(self, labels: PairLabels) -> np.ndarray:
        """Each label's position among the candidate pairs (−1: not a candidate pair)."""
        keys = labels.keys(self.n)
        if not len(self.pair_keys):
            return np.full(len(keys), -1, dtype=np.int64)
        position = np.searchsorted(self.pair_keys, keys)
        position = np.minimum(position, len(self.pair_keys) - 1)
        return np.where(self.pair_keys[position] == keys, position, -1)

    def pair_targets(self, labels: PairLabels, from_groups: bool = True) -> np.ndarray:
        """Per unordered candidate pair: 1 / 0 where answered (or, ``from_groups``, decided by
        the postings' label groups), −1 where not."""
        target = np.full(len(self.pair_keys), -1, dtype=np.int8)
        if from_groups and has_labels(self.candidates.postings):
            codes = label_codes(self.candidates.postings)
            target[:] = codes[self.pair_i] == codes[self.pair_j]
        position = self.pair_positions(labels)
        found = (position >= 0) & labels.answered
        target[position[found]] = labels.match[found]
        return target

    def sampler(self, seed: int) -> ActiveSampler:
        """The active-learning sampler over these pairs (similarity: the mean cosine of the
        vector embedders; easy positives: mutual best neighbours of any of them)."""
        names = self.features.names
        embedders = [s["name"] for s in self.candidates.specs
                     if f"sim_{s['name']}" in names and f"rank_rev_{s['name']}" in names]
        if not embedders:
            raise ValueError("active learning needs a vector embedder's similarity features")
        sims = self.features.frame.select([f"sim_{e}" for e in embedders]).to_numpy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # no cosine at all: NaN, last
            similarity = np.nanmean(sims, axis=1)
        mutual = np.zeros(len(self.i), dtype=bool)
        for name in embedders:
            rank = self.features.frame[f"rank_{name}"].to_numpy()
            rank_rev = self.features.frame[f"rank_rev_{name}"].to_numpy()
            mutual |= (rank == 1) & (rank_rev == 1)
        return ActiveSampler(self.row_pair, self.pair_i, self.pair_j, similarity, mutual, seed)

    def answered_rows(self, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The directed rows of every answered pair (``target`` ≥ 0) and their 0/1 targets."""
        row_target = target[self.row_pair]
        rows = np.flatnonzero(row_target >= 0)
        return rows, row_target[rows].astype(np.float32)

    def fit_ranker(self, target: np.ndarray, backend: str, seed: int):
        """The small ranker on the rows of every answered pair; None before both classes."""
        rows, y = self.answered_rows(target)
        if len(np.unique(y)) < 2:
            return None
        return labelled_pairs_ranker(backend, seed).fit(self.X[rows], y, self.features.names)


def positive_components(n: int, pair_i: np.ndarray, pair_j: np.ndarray,
                        target: np.ndarray) -> np.ndarray:
    """Component per posting of the graph of positive pairs (a posting alone is its own)."""
    positive = target == 1
    graph = coo_matrix((np.ones(int(positive.sum())), (pair_i[positive], pair_j[positive])),
                       shape=(n, n))
    return connected_components(graph, directed=False)[1]


def pairwise_scores(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Precision, recall and F1 of 0/1 ``predicted`` against ``truth`` over the same pairs."""
    hits = float((predicted & truth).sum())
    figures = precision_recall_f1(hits / float(predicted.sum()) if predicted.any() else 0.0,
                                  hits / float(truth.sum()) if truth.any() else 0.0)
    return {k: round(v, 6) for k, v in figures.items()}


def match_processor(symmetrise: str = "mean") -> PostProcessor:
    """The match sets of a model trained on pair labels: the symmetrised score above 0.5."""
    return PostProcessor.from_params({"symmetrise": symmetrise, "threshold": MATCH_PROBABILITY})


def cross_validated(labelled: LabelledCandidates, target: np.ndarray, backend: str,
                    folds: int = 5, seed: int = 42) -> tuple[dict, np.ndarray, np.ndarray]:
    """Out-of-fold pairwise precision / recall / F1 over the answered pairs (``target`` ≥ 0)
    at the 0.5 cut, the answered rows and their out-of-fold scores."""
    answered = target >= 0
    rows, y = labelled.answered_rows(target)
    components = positive_components(labelled.n, labelled.pair_i, labelled.pair_j, target)
    oof = labelled_out_of_fold(labelled.X[rows], y, labelled.i[rows], labelled.j[rows],
                               components, labelled.features.names, backend, folds, seed)
    pair_p = pair_means(labelled.row_pair[rows], oof, len(target))[answered]
    return (pairwise_scores(pair_p > MATCH_PROBABILITY, target[answered] == 1), rows, oof)


def train_on_labels(candidates: Candidates, labels: PairLabels, params: dict,
                    work: WorkDir | None = None, timer: Timer | None = None, client=None,
                    chunk_size: int | None = None, labelled: LabelledCandidates | None = None,
                    source: str | None = None) -> Training:
    """Fit the ranker and the cut on the answered candidate pairs (module docstring);
    ``labelled`` reuses features built earlier; ``source`` names the labels file in errors."""
    timer = timer or Timer()
    groups = feature_groups(params["groups"])
    postings = candidates.postings
    n = postings.height
    if labelled is None:
        with timer.step("features"):
            labelled = LabelledCandidates.build(candidates, groups, client, chunk_size)
    target = labelled.pair_targets(labels)
    answered = target >= 0
    not_candidates = int(((labelled.pair_positions(labels) < 0) & labels.answered).sum())
    if not_candidates:
        log.warning(f"{not_candidates:,} labelled pairs are not candidate pairs and do not "
                    f"train the ranker (it only ever scores candidate pairs)")
    y_pair = target[answered].astype(bool)
    if len(np.unique(y_pair)) < 2:
        raise InputError(f"the labelled candidate pairs hold {int(y_pair.sum())} matches and "
                         f"{int((~y_pair).sum())} non-matches; training needs both",
                         file=source, column="match")
    backend, folds, seed = params["backend"], params["folds"], params["seed"]
    with timer.step("cross_validation"):
        pairwise, rows, oof = cross_validated(labelled, target, backend, folds, seed)
    with timer.step("final_model"):  # the model the `label` loop trains on the same answers
        final = labelled.fit_ranker(target, backend, seed)
        p = final.predict(labelled.X)
    processor = match_processor(params["symmetrise"])
    origin = {"candidates_fingerprint": table_fingerprint(candidates.table)}
    metrics = {
        "labelled_pairs": {"answered": int(answered.sum()), "matches": int(y_pair.sum()),
                           "not_candidate_pairs": not_candidates,
                           "from_label_groups": has_labels(postings)},
        "oof_pairwise": pairwise,
        "per_posting_f1": "needs label groups: see catalog_in_sample where the postings have them",
        "threshold": MATCH_PROBABILITY, "postprocess_steps": ["threshold"],
        "backend": backend, "folds": folds, "seed": seed, "features": len(labelled.features.names),
        "pairs": int(len(p)), **origin,
        "seconds": {**timer.seconds, "total": timer.total},
    }
    if has_labels(postings):
        codes = label_codes(postings)
        kept_i, kept_j, _ = processor.predict(labelled.i, labelled.j, p, n)
        metrics["catalog_in_sample"] = {**score_pairs(kept_i, kept_j, codes).as_dict(),
                                        **entity_resolution_scores(kept_i, kept_j, codes)}
    bundle = ModelBundle(
        ranker=final, feature_groups=labelled.features.groups,
        embedders=candidates.fitted_specs(), k=candidates.report["k"],
        blend=candidates.report.get("blend"), allocation=candidates.report.get("allocation"),
        bridges=candidates.report.get("bridges"), list_depth=candidates.report.get("list_depth"),
        groups=groups or sorted(set(labelled.features.groups.values())), processor=processor,
        params={**params, "filter_threshold": 0.0, "stack": False, "postprocess": ["threshold"]},
        oof_metrics=pairwise, search_by_embedder=candidates.report.get("search_by_embedder"),
        score_quantiles=score_quantiles(p), coverage=coverage(candidates.embeddings),
        **origin)
    if work is not None:
        write_json(work.metrics, metrics)
    oof_scores = pl.DataFrame({"i": labelled.i[rows].astype(np.int32),
                               "j": labelled.j[rows].astype(np.int32), "p": oof})
    return Training(bundle, metrics, oof_scores)
