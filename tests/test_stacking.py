"""The second stage: score-graph features, nested (leakage-free) cross-validation, block scoring."""
from __future__ import annotations

import numpy as np
import pytest

from features import SCORE_GRAPH_FEATURES, score_graph_features
from ranker import (PairRanker, out_of_fold_scores, predict_second_stage, stacked_matrix,
                    stacked_out_of_fold_scores)
from tests.conftest import symmetric_pairs


def column(features: np.ndarray, name: str) -> np.ndarray:
    return features[:, SCORE_GRAPH_FEATURES.index(name)]


def test_score_graph_features_by_hand():
    # three postings, every pair in both directions
    i = np.array([0, 0, 1, 1, 2, 2])
    j = np.array([1, 2, 0, 2, 0, 1])
    p = np.array([0.8, 0.4, 0.6, 0.5, 0.2, 0.3], dtype=np.float32)
    features = score_graph_features(i, j, p, 3)
    assert features.shape == (6, len(SCORE_GRAPH_FEATURES)) and features.dtype == np.float32
    expected = {  # pair (0, 1) and pair (0, 2); mean scores: 01 .7, 02 .3, 12 .4
        "stack_p": (0.8, 0.4), "stack_p_rev": (0.6, 0.2), "stack_p_mean": (0.7, 0.3),
        "stack_p_max": (0.8, 0.4), "stack_p_min": (0.6, 0.2),
        "stack_best_i": (0.7, 0.7), "stack_best_j": (0.7, 0.4),
        "stack_sum_i": (1.0, 1.0), "stack_sum_j": (1.1, 0.7),
        "stack_confident_i": (1, 1), "stack_confident_j": (1, 0),
        "stack_rank_i": (0, 1), "stack_rank_j": (0, 1),
        "stack_share_i": (1.0, 0.3 / 0.7), "stack_share_j": (1.0, 0.3 / 0.4),
        "stack_two_hop": (0.3 * 0.4, 0.7 * 0.4),
        "stack_two_hop_i": (0.12 / 1.0, 0.28 / 1.0), "stack_two_hop_j": (0.12 / 1.1, 0.28 / 0.7),
    }
    assert set(expected) == set(SCORE_GRAPH_FEATURES)
    for name, values in expected.items():
        np.testing.assert_allclose(column(features, name)[:2], values, rtol=1e-5, atol=1e-6,
                                   err_msg=name)


def test_a_pair_without_its_reverse_counts_its_own_score():
    features = score_graph_features(np.array([0, 1]), np.array([1, 2]),
                                    np.array([0.9, 0.2], np.float32), 3)
    np.testing.assert_allclose(column(features, "stack_p_rev"), [0.9, 0.2], rtol=1e-6)
    np.testing.assert_allclose(column(features, "stack_p_mean"), [0.9, 0.2], rtol=1e-6)


def noisy_pairs(seed: int):
    """symmetric_pairs with a weaker signal, so the rankers have something left to learn."""
    X, y, i, j, labels = symmetric_pairs(seed)
    rng = np.random.default_rng(seed + 100)
    X[:, 0] = y + rng.normal(0, 0.8, len(y))
    return X, y, i, j, labels


def make_ranker():
    return PairRanker(rounds=15, early_stopping=5, num_threads=1,
                      params={"min_data_in_leaf": 5})


def run_stacked(X, y, i, j, labels):
    names = ["signal", "noise"]
    first = out_of_fold_scores(X, y, i, j, labels, names, make_ranker, 3, 7, negative_rate=1.0)
    return stacked_out_of_fold_scores(X, y, i, j, labels, names, make_ranker, first, 3, 7,
                                      negative_rate=1.0)


def test_nested_scores_of_a_fold_never_see_that_folds_labels():
    """Scrambling the labels of every pair that touches fold f leaves fold f's second-stage
    scores unchanged bit for bit: no model on their path was trained on those pairs. (Building
    the features from the plain first-stage out-of-fold scores would fail this.)"""
    X, y, i, j, labels = noisy_pairs(3)
    base = run_stacked(X, y, i, j, labels)
    assert not np.isnan(base.scores).any() and len(base.best_iterations) == 3
    fold = 1
    touching = (base.folds[i] == fold) | (base.folds[j] == fold)
    scrambled = y.copy()
    scrambled[touching] = np.random.default_rng(0).permutation(y[touching])
    assert (scrambled != y).any()
    again = run_stacked(X, scrambled, i, j, labels)
    held = base.folds[i] == fold
    np.testing.assert_array_equal(again.scores[held], base.scores[held])
    assert not np.array_equal(again.scores[~held], base.scores[~held])


def test_two_folds_are_refused():
    X, y, i, j, labels = noisy_pairs(4)
    first = out_of_fold_scores(X, y, i, j, labels, ["signal", "noise"], make_ranker, 2, 7)
    with pytest.raises(ValueError, match="at least 3 folds"):
        stacked_out_of_fold_scores(X, y, i, j, labels, ["signal", "noise"], make_ranker, first,
                                   2, 7)


def test_first_stage_on_other_folds_is_refused():
    X, y, i, j, labels = noisy_pairs(4)
    names = ["signal", "noise"]
    first = out_of_fold_scores(X, y, i, j, labels, names, make_ranker, 3, 7, negative_rate=1.0)
    with pytest.raises(ValueError, match="other folds"):
        stacked_out_of_fold_scores(X, y, i, j, labels, names, make_ranker, first, 3, 8)


def test_block_scoring_matches_one_matrix():
    X, y, i, j, labels = noisy_pairs(5)
    n = len(labels)
    names = ["signal", "noise"]
    first = make_ranker().fit(X, y, names)
    p = first.predict(X)
    second = make_ranker().fit(stacked_matrix(X, p, i, j, n), y,
                               names + list(SCORE_GRAPH_FEATURES))
    whole = second.predict(stacked_matrix(X, p, i, j, n))
    blocks = [X[start:start + 100] for start in range(0, len(X), 100)]
    np.testing.assert_array_equal(predict_second_stage(second, blocks, p, i, j, n), whole)
    with pytest.raises(ValueError, match="blocks hold"):
        predict_second_stage(second, blocks[:-1], p, i, j, n)
