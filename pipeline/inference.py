"""Matching a new catalog with a fitted bundle: candidates, filter, features, both stages'
scores, post-processing, the submission table."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from common.console import Timer
from common.pairs import find_pairs
from features import build_features
from postprocess import to_submission
from ranker import predict_second_stage

from .bundle import ModelBundle
from .stages import Candidates, kept_by_filter, pair_arrays


@dataclass
class Matching:
    """The outcome of matching one catalog: every scored pair (``i``, ``j``, ``p``, ``kept``:
    in the final match sets), the submission table and the counts for ``submit.json``."""

    pairs: pl.DataFrame
    submission: pl.DataFrame
    candidate_pairs: int
    seconds: dict


def score_pairs(bundle: ModelBundle, candidates: Candidates, timer: Timer
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """p(match) of the candidate pairs the filter keeps, by the last stage of ``bundle``."""
    table = candidates.table
    if bundle.pair_filter is not None:
        table = kept_by_filter(candidates, bundle, timer)
    ranker, second = bundle.ranker, bundle.second
    with timer.step("features"):
        features = build_features(candidates.context(table), bundle.groups)
    bundle.check_features(features.names)
    i, j = pair_arrays(features.frame)
    with timer.step("score"):
        p = np.concatenate([np.empty(0, np.float32)] + [
            ranker.predict(block) for block in features.row_blocks(ranker.feature_names_)])
    if second is not None:
        with timer.step("second_stage"):
            p = predict_second_stage(second, features.row_blocks(ranker.feature_names_), p, i, j,
                                     candidates.postings.height)
    return i, j, p


def match(bundle: ModelBundle, candidates: Candidates, timer: Timer) -> Matching:
    """Score a catalog's candidates, post-process them and tabulate the match sets."""
    i, j, p = score_pairs(bundle, candidates, timer)
    n = candidates.postings.height
    with timer.step("postprocess"):
        kept_i, kept_j, kept_score = bundle.processor.predict(i, j, p, n)
        submission = to_submission(candidates.postings["posting_id"], kept_i, kept_j, kept_score)
    kept = np.zeros(len(i), dtype=bool)
    position = find_pairs(i, j, kept_i, kept_j, n)
    kept[position[position >= 0]] = True
    pairs = pl.DataFrame({"i": i.astype(np.int32), "j": j.astype(np.int32), "p": p,
                          "kept": kept})
    return Matching(pairs, submission, candidates.table.height, timer.seconds)
