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
