"""The first-pass pair filter: symmetric decisions, out-of-fold kept set, save and load."""
from __future__ import annotations

import json

import numpy as np
import pytest

from common.errors import InputError
from ranker import PairFilter
from tests.conftest import symmetric_pairs


def test_keeps_the_matches_drops_most_non_matches_and_stays_symmetric():
    X, y, i, j, labels = symmetric_pairs()
    n = len(labels)
    pair_filter = PairFilter(threshold=0.05, rounds=30, num_threads=1).fit(
        X, y, i, j, labels, ["signal", "noise"], n_folds=3)
    kept = pair_filter.oof_keep_
    report = pair_filter.report_
    assert report["kept_pairs"] == kept.sum() < 0.6 * len(y)
    assert report["positive_pairs_dropped"] <= 0.05 * y.sum()
    assert report["positive_pairs"] == y.sum()
    kept_keys = set(zip(i[kept].tolist(), j[kept].tolist()))
    assert all((b, a) in kept_keys for a, b in kept_keys)
    # the fitted model decides new pairs the same symmetric way
    again = pair_filter.keep(X, i, j, n)
    assert set(zip(i[again].tolist(), j[again].tolist())) == {
        (b, a) for a, b in zip(i[again].tolist(), j[again].tolist())}
    assert y[again].mean() > y.mean()


def test_save_and_load_round_trip(tmp_path):
    X, y, i, j, labels = symmetric_pairs(1)
    pair_filter = PairFilter(threshold=0.1, rounds=20, num_threads=1).fit(
        X, y, i, j, labels, ["signal", "noise"], n_folds=3)
    pair_filter.save(tmp_path / "filter", {"signal": "similarity", "noise": "phash"})
    loaded = PairFilter.load(tmp_path / "filter")
    assert loaded.threshold == 0.1
    assert loaded.feature_names_ == ["signal", "noise"]
    assert loaded.groups == ["phash", "similarity"]
    n = len(labels)
    assert np.array_equal(loaded.keep(X, i, j, n), pair_filter.keep(X, i, j, n))


def test_bad_threshold_is_refused(tmp_path):
    X, y, i, j, labels = symmetric_pairs(2)
    with pytest.raises(ValueError, match="threshold"):  # checked in fit, scikit-learn style
        PairFilter(threshold=1.5).fit(X, y, i, j, labels, ["s", "n"], n_folds=2)
    PairFilter(rounds=5, num_threads=1).fit(X, y, i, j, labels, ["s", "n"], n_folds=2).save(
        tmp_path, {"s": "similarity", "n": "phash"})
    schema = json.loads((tmp_path / "schema.json").read_text())
    schema["filter_threshold"] = "high"
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    with pytest.raises(InputError, match="filter_threshold"):
        PairFilter.load(tmp_path)


def _clique(n: int, tied: bool):
    """Every ordered pair of n postings; scores fall with the pair's index distance (or all
    equal: one product posted n times)."""
    i, j = (a.ravel() for a in np.meshgrid(np.arange(n), np.arange(n), indexing="ij"))
    off = i != j
    i, j = i[off], j[off]
    p = np.full(len(i), 0.9, np.float32) if tied else (1 - np.abs(i - j) / (2 * n)).astype(
        np.float32)
    return i, j, p, n


@pytest.mark.parametrize("tied", [False, True])
def test_every_posting_keeps_its_own_best_pairs_and_the_table_stays_symmetric(tied):
    i, j, p, n = _clique(12, tied)
    keep = PairFilter(threshold=0.05, max_pairs=3).decide(p, i, j, n)
    kept = set(zip(i[keep].tolist(), j[keep].tolist()))
    assert kept == {(b, a) for a, b in kept}
    for posting in range(n):
        rows = np.flatnonzero(i == posting)
        best = rows[np.lexsort((j[rows], -p[rows]))[:3]]  # ties: the lower index
        assert all((posting, int(other)) in kept for other in j[best])
    assert len(kept) <= 2 * 3 * n < len(i)
    if not tied:  # a pair neither end ranks among its best three goes
        assert (0, 6) not in kept and (0, 1) in kept
    assert PairFilter(threshold=0.05, max_pairs=None).decide(p, i, j, n).all()
    # the threshold still applies within the bound
    assert not PairFilter(threshold=0.95, max_pairs=3).decide(p, i, j, n)[p < 0.95].any()


def test_the_bound_is_saved_with_the_model_and_older_models_have_none(tmp_path):
    X, y, i, j, labels = symmetric_pairs(3)
    PairFilter(threshold=0.1, max_pairs=7, rounds=5, num_threads=1).fit(
        X, y, i, j, labels, ["s", "n"], n_folds=2).save(tmp_path, {"s": "similarity",
                                                                    "n": "phash"})
    assert PairFilter.load(tmp_path).max_pairs == 7
    schema = json.loads((tmp_path / "schema.json").read_text())
    del schema["filter_max_pairs"]
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    assert PairFilter.load(tmp_path).max_pairs is None
    schema["filter_max_pairs"] = 0
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    with pytest.raises(InputError, match="filter_max_pairs"):
        PairFilter.load(tmp_path)
    with pytest.raises(ValueError, match="max_pairs"):
        PairFilter(max_pairs=0).fit(X, y, i, j, labels, ["s", "n"], n_folds=2)
