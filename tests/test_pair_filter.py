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


def _star(n_leaves: int):
    """A hub (posting 0) paired both ways with ``n_leaves`` postings, the leaves also paired
    with their neighbour; scores fall with the leaf's number."""
    i, j, p = [], [], []
    for leaf in range(1, n_leaves + 1):
        score = 1.0 - leaf / 100
        i += [0, leaf]
        j += [leaf, 0]
        p += [score, score]
    for leaf in range(1, n_leaves):
        i += [leaf, leaf + 1]
        j += [leaf + 1, leaf]
        p += [0.5, 0.5]
    order = np.lexsort((j, i))
    return (np.array(i)[order], np.array(j)[order], np.array(p, np.float32)[order],
            n_leaves + 1)


def test_no_posting_keeps_more_than_max_pairs_and_the_kept_table_stays_symmetric():
    i, j, p, n = _star(12)
    pair_filter = PairFilter(threshold=0.05, max_pairs=4)
    keep = pair_filter.decide(p, i, j, n)
    assert np.bincount(i[keep], minlength=n).max() <= 4
    kept = set(zip(i[keep].tolist(), j[keep].tolist()))
    assert kept == {(b, a) for a, b in kept}
    # the hub keeps its four best leaves, which keep it (it is in their best four)
    assert sorted(b for a, b in kept if a == 0) == [1, 2, 3, 4]
    # a leaf the hub dropped still keeps its other pairs
    assert (7, 8) in kept and (0, 7) not in kept
    unbounded = PairFilter(threshold=0.05, max_pairs=None).decide(p, i, j, n)
    assert unbounded.all()
    # the threshold still applies within the bound
    leaves = (i != 0) & (j != 0)
    assert not PairFilter(threshold=0.9, max_pairs=4).decide(p, i, j, n)[leaves].any()


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
