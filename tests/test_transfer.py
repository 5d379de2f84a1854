"""Matching a catalog unlike the training one (pipeline.transfer): what is detected, and the
post-processing each ``adapt`` mode then uses."""
from __future__ import annotations

import logging

import numpy as np
import polars as pl
import pytest

from pipeline import Matcher, ParameterError
from pipeline.transfer import (CONSERVATIVE_CUT, MIN_SHIFT_PAIRS, choose_processor,
                               conservative_processor, differences, sole_code_pairs,
                               with_sole_code_pairs)
from postprocess import PostProcessor

GAP = {"phash": {"training": 1.0, "catalog": 0.0}}


def test_a_score_shift_counts_only_on_enough_pairs_and_a_coverage_gap_always():
    assert differences(None, 10_000, {}) == []
    assert differences(0.2, 10_000, {}) == []
    assert len(differences(0.6, MIN_SHIFT_PAIRS, {})) == 1
    # a few hundred postings' pairs: a distance of 0.9 is chance, not another catalog
    assert differences(0.9, MIN_SHIFT_PAIRS - 1, {}) == []
    found = differences(0.6, 10_000, GAP)
    assert len(found) == 2 and "phash gives 0% of its postings a vector" in found[1]


def test_each_adapt_mode_picks_its_post_processing_and_warns_once(caplog):
    saved = PostProcessor.from_params({"symmetrise": "max", "threshold": 0.3})
    with caplog.at_level(logging.WARNING):
        processor, adapted = choose_processor(saved, [], "auto")
    assert processor is saved and not adapted and not caplog.records
    for mode, expected in (("auto", True), ("always", True), ("never", False)):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            processor, adapted = choose_processor(saved, ["a reason"], mode)
        assert adapted is expected and (processor is saved) is not expected
        assert len(caplog.records) == 1 and "a reason" in caplog.text
    assert choose_processor(saved, [], "always")[1]
    conservative = choose_processor(saved, [], "always")[0]
    assert conservative.symmetrise == "max"  # the model's own symmetrisation
    assert [s.name for s in conservative.steps_] == ["threshold", "mutual_best"]
    with pytest.raises(ValueError, match="adapt must be one of"):
        choose_processor(saved, [], "sometimes")


def test_the_conservative_processor_keeps_only_confident_mutual_best_pairs():
    # 0-1 mutual best and sure; 2-3 mutual best, not sure; 4's best is 5, whose best is 6
    i = np.array([0, 1, 2, 3, 4, 5, 5, 6])
    j = np.array([1, 0, 3, 2, 5, 4, 6, 5])
    p = np.array([0.95, 0.95, 0.85, 0.85, 0.92, 0.92, 0.97, 0.97], dtype=np.float32)
    kept_i, kept_j, _ = conservative_processor().predict(i, j, p, 7)
    assert set(zip(kept_i.tolist(), kept_j.tolist())) == {(0, 1), (1, 0), (5, 6), (6, 5)}
    assert CONSERVATIVE_CUT == 0.9


def test_an_unknown_adapt_mode_is_a_parameter_error():
    with pytest.raises(ParameterError, match="adapt must be one of auto, always, never"):
        Matcher(adapt="sometimes").validate_params()


TITLES = pl.Series(["Apple iPod shuffle 1GB pink MB811LL/A", "iPod Shuffle mb811ll-a",
                    "Sony KDL40 television", "Sony KDL40 wall mount", "Sony KDL40 remote",
                    "Canon CLI221 ink", "cli 221 cartridge canon", "Bose speaker XQ7700",
                    "XQ7700 bose", "a title without a code"])


def test_sole_code_holders_are_the_only_two_postings_carrying_a_code():
    a, b = sole_code_pairs(TITLES)
    # mb811lla: two holders; kdl40: three (no pair); cli221 (`cli 221` folded): two; xq7700: two
    assert list(zip(a.tolist(), b.tolist())) == [(0, 1), (5, 6), (7, 8)]


def test_the_conservative_matches_gain_the_scored_pairs_of_sole_code_holders():
    n = len(TITLES)
    # scored: 0-1 both ways (unsure), 5→6 only, 2-3 both ways (kept already); 7-8 never scored
    i = np.array([0, 1, 5, 2, 3, 2])
    j = np.array([1, 0, 6, 3, 2, 4])
    p = np.array([0.3, 0.5, 0.2, 0.95, 0.95, 0.6], dtype=np.float32)
    kept = (np.array([2, 3, 5]), np.array([3, 2, 6]), np.array([0.95, 0.95, 0.2], np.float32))
    (ki, kj, ks), held = with_sole_code_pairs(kept, i, j, p, n, TITLES)
    pairs = dict(zip(zip(ki.tolist(), kj.tolist()), ks.tolist()))
    assert set(pairs) == {(2, 3), (3, 2), (5, 6), (0, 1), (1, 0)}
    assert len(ki) == 5  # 5→6 was kept already: once
    assert pairs[(0, 1)] == pytest.approx(0.4) and pairs[(1, 0)] == pytest.approx(0.4)
    assert held == 2  # scored pairs of sole code holders: 0-1, 5-6
    nothing = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))
    assert with_sole_code_pairs(nothing, i[:0], j[:0], p[:0], n, TITLES)[1] == 0
