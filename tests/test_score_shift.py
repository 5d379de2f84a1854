"""The distance of a catalog's pair scores from the training scores, and the warning on submit."""
from __future__ import annotations

import numpy as np

from ranker import score_quantiles, score_shift


def test_same_distribution_is_near_zero_and_a_shifted_one_is_far():
    rng = np.random.default_rng(0)
    training = rng.beta(0.5, 2, 100_000)
    quantiles = score_quantiles(training)
    assert len(quantiles) == 19 and quantiles == sorted(quantiles)
    assert score_shift(quantiles, rng.beta(0.5, 2, 50_000)) < 0.02
    assert score_shift(quantiles, rng.beta(2, 0.5, 50_000)) > 0.5   # mostly confident pairs
    assert score_shift(quantiles, np.zeros(10)) == 0.95              # every score at the bottom


def test_nothing_to_compare_gives_none():
    assert score_quantiles(np.empty(0)) == []
    assert score_shift([], np.ones(3)) is None
    assert score_shift(score_quantiles(np.ones(3)), np.empty(0)) is None
