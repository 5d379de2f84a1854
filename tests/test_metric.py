"""The metric against hand-computed cases, its vectorised and set forms, and `evaluate`."""
from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.errors import InputError
from common.metric import entity_resolution_scores, score_pairs, score_sets, score_submission
from tests.conftest import run_cli

TRUTH = {"a": "x", "b": "x", "c": "x", "d": "y", "e": "z"}


def test_perfect_prediction_scores_one():
    predicted = {"a": {"a", "b", "c"}, "b": {"a", "b", "c"}, "c": {"a", "b", "c"},
                 "d": {"d"}, "e": {"e"}}
    assert score_sets(predicted, TRUTH).f1 == pytest.approx(1.0)


def test_self_only_hand_computed():
    # a, b, c: |P|=1, |T|=3, hit=1 → F1 = 2/4 = 0.5 each; d, e: 1.0 each → mean 3.5 / 5 = 0.7.
    score = score_sets({p: {p} for p in TRUTH}, TRUTH)
    assert score.f1 == pytest.approx(0.7)
    assert score.precision == pytest.approx(1.0)
    assert score.recall == pytest.approx((1 / 3 * 3 + 2) / 5)


def test_wrong_extra_match_hand_computed():
    # a predicts {a, b, d}: hit 2, |P| 3, |T| 3 → F1 2·2/6; d predicts {d, a}: hit 1 → 2/3.
    predicted = {"a": {"a", "b", "d"}, "b": {"a", "b", "c"}, "c": {"a", "b", "c"},
                 "d": {"d", "a"}, "e": {"e"}}
    score = score_sets(predicted, TRUTH)
    assert score.f1 == pytest.approx((4 / 6 + 1 + 1 + 2 / 3 + 1) / 5)
    assert score.precision == pytest.approx((2 / 3 + 1 + 1 + 1 / 2 + 1) / 5)
    assert score.recall == pytest.approx((2 / 3 + 1 + 1 + 1 + 1) / 5)


def test_pairwise_and_bcubed_hand_computed():
    # TRUTH's true unordered pairs: ab, ac, bc. Predicted (either direction): ab, ad.
    labels = np.array([0, 0, 0, 1, 2])
    query, match = np.array([0, 1, 3, 0, 2]), np.array([1, 0, 0, 0, 2])  # a→b, b→a, d→a, self
    scores = entity_resolution_scores(query, match, labels)
    assert scores["pairwise"]["precision"] == pytest.approx(1 / 2)
    assert scores["pairwise"]["recall"] == pytest.approx(1 / 3)
    assert scores["pairwise"]["f1"] == pytest.approx(2 * (1 / 2) * (1 / 3) / (1 / 2 + 1 / 3))
    # per posting, self added: a {a,b} p 1 r 2/3; b {a,b} 1, 2/3; c {c} 1, 1/3; d {d,a} 1/2, 1;
    # e {e} 1, 1
    precision, recall = (1 + 1 + 1 + 0.5 + 1) / 5, (2 / 3 + 2 / 3 + 1 / 3 + 1 + 1) / 5
    assert scores["bcubed"]["precision"] == pytest.approx(precision, abs=1e-6)
    assert scores["bcubed"]["recall"] == pytest.approx(recall, abs=1e-6)
    assert scores["bcubed"]["f1"] == pytest.approx(2 * precision * recall / (precision + recall),
                                                   abs=1e-6)


def test_pairwise_edge_cases():
    singletons = np.arange(4)
    alone = entity_resolution_scores(np.empty(0, np.int64), np.empty(0, np.int64), singletons)
    assert alone["pairwise"] == {"precision": 0.0, "recall": 1.0, "f1": 0.0}
    assert alone["bcubed"]["f1"] == 1.0
    groups = np.array([0, 0, 1, 1])
    everything = entity_resolution_scores(*np.nonzero(np.ones((4, 4), bool)), groups)
    assert everything["pairwise"]["precision"] == pytest.approx(2 / 6)
    assert everything["pairwise"]["recall"] == 1.0


def test_pairs_and_sets_agree_on_hand_case():
    ids = list(TRUTH)
    labels = np.array([0, 0, 0, 1, 2])
    pairs = [(0, 1), (0, 3), (3, 0), (1, 2)]
    q, m = np.array(pairs).T
    by_pairs = score_pairs(q, m, labels)
    predicted = {p: {p} for p in ids}
    for a, b in pairs:
        predicted[ids[a]].add(ids[b])
    assert by_pairs.f1 == pytest.approx(score_sets(predicted, TRUTH).f1)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_pairs_and_sets_agree(data):
    n = data.draw(st.integers(1, 12))
    labels = np.array(data.draw(st.lists(st.integers(0, 4), min_size=n, max_size=n)))
    pairs = data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)),
                               max_size=40))
    q = np.array([a for a, _ in pairs], dtype=np.int64)
    m = np.array([b for _, b in pairs], dtype=np.int64)
    _, codes = np.unique(labels, return_inverse=True)
    vectorised = score_pairs(q, m, codes)
    truth = {str(k): str(labels[k]) for k in range(n)}
    predicted = {str(k): {str(k)} for k in range(n)}
    for a, b in pairs:
        predicted[str(a)].add(str(b))
    reference = score_sets(predicted, truth)
    assert vectorised.f1 == pytest.approx(reference.f1)
    assert vectorised.precision == pytest.approx(reference.precision)
    assert vectorised.recall == pytest.approx(reference.recall)
    assert 0 <= vectorised.f1 <= 1


def _postings() -> pl.DataFrame:
    return pl.DataFrame({"posting_id": list(TRUTH), "title": ["t"] * 5,
                         "label_group": list(TRUTH.values())})


def test_score_submission_matches_sets():
    sub = pl.DataFrame({"posting_id": list(TRUTH),
                        "matches": ["a b d", "b a c", "c a b", "d a", "e"]})
    predicted = {"a": {"a", "b", "d"}, "b": {"a", "b", "c"}, "c": {"a", "b", "c"},
                 "d": {"d", "a"}, "e": {"e"}}
    assert score_submission(_postings(), sub).f1 == pytest.approx(score_sets(predicted, TRUTH).f1)


def test_score_submission_rejects_unknown_ids():
    sub = pl.DataFrame({"posting_id": list(TRUTH), "matches": ["a zz", "b", "c", "d", "e"]})
    with pytest.raises(InputError, match="row 1.*matches.*'zz'"):
        score_submission(_postings(), sub, "sub.csv")


def test_evaluate_command(tmp_path):
    _postings().write_csv(tmp_path / "p.csv")
    pl.DataFrame({"posting_id": list(TRUTH), "matches": list(TRUTH)}).write_csv(tmp_path / "s.csv")
    done = run_cli("evaluate", "--postings", str(tmp_path / "p.csv"),
                   "--submission", str(tmp_path / "s.csv"))
    assert done.returncode == 0, done.stderr
    # Self only: no predicted pair out of the three true ones (a-b, a-c, b-c).
    assert json.loads(done.stdout) == {
        "f1": 0.7, "precision": 1.0, "recall": 0.6,
        "pairwise": {"precision": 0.0, "recall": 0.0, "f1": 0.0},
        "bcubed": {"precision": 1.0, "recall": 0.6, "f1": 0.75}}


def test_evaluate_reports_missing_rows(tmp_path):
    _postings().write_csv(tmp_path / "p.csv")
    pl.DataFrame({"posting_id": ["a"], "matches": ["a"]}).write_csv(tmp_path / "s.csv")
    done = run_cli("evaluate", "--postings", str(tmp_path / "p.csv"),
                   "--submission", str(tmp_path / "s.csv"))
    assert done.returncode == 2
    assert "no row for posting_id" in done.stderr and "Traceback" not in done.stderr
