"""Post-processing steps on small hand-made and generated score tables."""
from __future__ import annotations

import json

import numpy as np
import pytest

from postprocess import (Chisel, GraphMerge, Min2, MutualBest, PostProcessor, PruneOneWay,
                         ScoreBlend, ThresholdCut)
from postprocess.score_blend import neighbour_scores
from postprocess.state import MatchState, Truth


def symmetric_pairs(n: int, scored: dict[tuple[int, int], float]):
    """Both directions of every given pair, sorted by (i, j) as candidates are."""
    rows = sorted({(a, b, s) for (a, b), s in scored.items()} |
                  {(b, a, s) for (a, b), s in scored.items()})
    i, j, p = (np.array(c) for c in zip(*rows))
    return i.astype(np.int64), j.astype(np.int64), p.astype(np.float32)


def state_of(n, scored, keep_above=None):
    i, j, p = symmetric_pairs(n, scored)
    state = MatchState.from_pairs(i, j, p, n)
    return state if keep_above is None else state.with_keep(state.score > keep_above)


def kept_set(state):
    return {(int(a), int(b)) for a, b in zip(state.i[state.keep], state.j[state.keep])}


def catalog(seed=0, products=300):
    """Generated labelled score table: true pairs score high with noise, false ones low, and
    group sizes vary (1 to 12 postings) as on Shopee."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 13, products)
    labels = np.repeat(np.arange(products), sizes)
    n = len(labels)
    # Candidates: every true pair plus random false ones, closed under symmetry.
    same = [(a, b) for g in range(products) for a in np.flatnonzero(labels == g)
            for b in np.flatnonzero(labels == g) if a < b]
    false = {(min(a, b), max(a, b)) for a, b in rng.integers(0, n, (6 * n, 2)) if a != b
             and labels[a] != labels[b]}
    scored = {pair: float(np.clip(rng.normal(0.7, 0.2), 0, 1)) for pair in same}
    scored.update({pair: float(np.clip(rng.normal(0.25, 0.2), 0, 1)) for pair in false})
    i, j, p = symmetric_pairs(n, scored)
    return i, j, p, labels


def test_threshold_cut_picks_the_metrics_best_threshold():
    from common.metric import score_pairs

    i, j, p, labels = catalog()
    cut = ThresholdCut().fit(MatchState.from_pairs(i, j, p, len(labels)), Truth(labels))
    grid = np.round(np.arange(0.02, 0.98, 0.01), 4)
    f1 = [score_pairs(i[p > t], j[p > t], labels).f1 for t in grid]
    assert cut.threshold_ == float(grid[int(np.argmax(f1))])
    assert cut.threshold is None  # the parameter stays as given


def test_min2_gives_an_empty_posting_its_best_candidate_above_its_threshold():
    state = state_of(4, {(0, 1): 0.9, (2, 3): 0.4, (0, 2): 0.1}, keep_above=0.5)
    assert kept_set(state) == {(0, 1), (1, 0)}
    rescued = Min2.from_fitted(threshold=0.3).apply(state)
    assert kept_set(rescued) == {(0, 1), (1, 0), (2, 3), (3, 2)}
    assert kept_set(Min2.from_fitted(threshold=0.45).apply(state)) == kept_set(state)


def test_min2_fit_never_lowers_f1_and_switches_off_when_useless():
    i, j, p, labels = catalog(1)
    truth = Truth(labels)
    state = ThresholdCut.from_fitted(threshold=0.6).apply(
        MatchState.from_pairs(i, j, p, len(labels)))
    step = Min2().fit(state, truth)
    assert truth.evaluate(step.apply(state))["f1"] >= truth.evaluate(state)["f1"]
    # Every empty posting's best candidate is false: the best Min2 threshold adds nothing.
    n = 4
    labels = np.array([0, 1, 2, 3])
    lonely = state_of(n, {(0, 1): 0.4, (2, 3): 0.3}, keep_above=0.5)
    assert Min2().fit(lonely, Truth(labels)).threshold_ >= 0.4


def test_chisel_at_strength_zero_is_the_plain_cut_and_cuts_prefixes():
    i, j, p, labels = catalog(2)
    truth = Truth(labels)
    state = ThresholdCut.from_fitted(threshold=0.5).apply(
        MatchState.from_pairs(i, j, p, len(labels)))
    fitted = Chisel(base=0.5).fit(state, truth)
    zero = Chisel.from_fitted(base=0.5, strength=0.0,
                              rank_thresholds=[0.5] * len(fitted.rank_thresholds_)).apply(state)
    assert np.array_equal(zero.keep, state.keep & (state.rank < 49))
    chiselled = fitted.apply(state)
    assert truth.evaluate(chiselled)["f1"] >= truth.evaluate(state)["f1"]
    # Kept pairs form a prefix of each posting's ranked list.
    kept_per_query = np.bincount(chiselled.i[chiselled.keep], minlength=state.n)
    worst_kept_rank = np.full(state.n, -1)
    np.maximum.at(worst_kept_rank, chiselled.i[chiselled.keep], chiselled.rank[chiselled.keep])
    assert np.array_equal(worst_kept_rank + 1, kept_per_query)


def test_full_strength_chisel_follows_the_true_size_distribution():
    i, j, p, labels = catalog(3)
    truth = Truth(labels)
    state = MatchState.from_pairs(i, j, p, len(labels))
    step = Chisel(base=0.5, strengths=(1.0,)).fit(state, truth)
    predicted = np.bincount(state.i[step.apply(state).keep], minlength=state.n)
    true_matches = truth.sizes - 1
    for r in (1, 3, 6):
        assert abs((predicted >= r).mean() - (true_matches >= r).mean()) < 0.05


def test_prune_drops_only_weak_one_way_edges():
    i, j, p = symmetric_pairs(3, {(0, 1): 0.3, (1, 2): 0.9})
    state = MatchState.from_pairs(i, j, p, 3)
    # (0, 1) kept one way only, (1, 2) both ways.
    keep = ((state.i == 0) & (state.j == 1)) | ((state.i == 1) & (state.j == 2)) | \
        ((state.i == 2) & (state.j == 1))
    state = state.with_keep(keep)
    assert kept_set(PruneOneWay.from_fitted(threshold=0.5).apply(state)) == {(1, 2), (2, 1)}
    assert kept_set(PruneOneWay.from_fitted(threshold=0.2).apply(state)) == kept_set(state)


def test_mutual_best_keeps_a_kept_pair_only_where_each_is_the_others_best():
    scored = {(0, 1): 0.9, (1, 2): 0.95, (3, 4): 0.8, (4, 5): 0.3}
    # 0's best is 1 but 1's is 2; 5's best is 4 but 4's is 3
    state = state_of(6, scored, keep_above=0.5)
    assert kept_set(MutualBest().fit(state, Truth(np.arange(6))).apply(state)) == \
        {(1, 2), (2, 1), (3, 4), (4, 3)}
    # best among every candidate, not only the kept ones: 1 still prefers 2 when (1, 2) is cut
    cut = state.with_keep(state.keep & (state.score < 0.92))
    assert kept_set(MutualBest().apply(cut)) == {(3, 4), (4, 3)}
    processor = PostProcessor.from_params({"steps": [{"step": "threshold", "threshold": 0.5},
                                                     {"step": "mutual_best"}]})
    i, j, p = symmetric_pairs(6, scored)
    kept_i, kept_j, _ = processor.predict(i, j, p, 6)
    assert set(zip(kept_i.tolist(), kept_j.tolist())) == {(1, 2), (2, 1), (3, 4), (4, 3)}


def test_component_merge_adds_the_missing_pairs_of_a_chain_within_the_size_cap():
    state = state_of(6, {(0, 1): 0.9, (1, 2): 0.9, (3, 4): 0.9, (4, 5): 0.9, (3, 5): 0.2},
                     keep_above=0.5)
    merged = GraphMerge.from_fitted(method="components", threshold=0.8, max_size=3).apply(state)
    assert {(0, 2), (2, 0), (3, 5), (5, 3)} <= kept_set(merged)
    # The new, never-scored pair (0, 2) joins with score 0; the scored (3, 5) keeps its own.
    assert merged.score[(merged.i == 0) & (merged.j == 2)][0] == 0
    assert merged.score[(merged.i == 3) & (merged.j == 5)][0] == pytest.approx(0.2)
    capped = GraphMerge.from_fitted(method="components", threshold=0.8, max_size=2).apply(state)
    assert kept_set(capped) == kept_set(state)


def test_average_linkage_merges_a_tight_group_but_not_two_weakly_linked_ones():
    scored = {(0, 1): 0.9, (0, 2): 0.8, (1, 2): 0.2, (3, 4): 0.9, (2, 3): 0.6}
    state = state_of(5, scored, keep_above=0.95)
    merged = GraphMerge.from_fitted(method="average", threshold=0.5, max_size=10).apply(state)
    # {0, 1, 2} averages (0.9 + 0.8 + 0.2) / 3 > 0.5; joining {3, 4} averages 0.6 / 6.
    assert kept_set(merged) == {(a, b) for a in range(3) for b in range(3) if a != b} | \
        {(3, 4), (4, 3)}
    small = GraphMerge.from_fitted(method="average", threshold=0.5, max_size=2).apply(state)
    assert kept_set(small) == {(0, 1), (1, 0), (3, 4), (4, 3)}


def test_pipeline_reports_every_step_in_order_and_round_trips_through_json():
    i, j, p, labels = catalog(4)
    processor = PostProcessor().fit(i, j, p, labels)
    assert [r["step"] for r in processor.report_] == \
        ["threshold", "score_blend", "chisel", "min2", "prune", "merge", "cap"]
    f1 = [r["f1"] for r in processor.report_]
    assert all(b >= a - 1e-9 for a, b in zip(f1, f1[1:]))  # each tuned step can only help OOF
    reloaded = PostProcessor.from_params(json.loads(json.dumps(processor.fitted_params())))
    first, second = processor.predict(i, j, p, len(labels)), reloaded.predict(i, j, p, len(labels))
    for a, b in zip(first, second):
        assert np.array_equal(a, b)
    kept_i = first[0]
    assert np.bincount(kept_i, minlength=len(labels)).max() <= 49


def test_pipeline_caps_at_fifty_matches_best_first():
    n = 80
    scored = {(0, b): 0.5 + b / 200 for b in range(1, n)}
    i, j, p = symmetric_pairs(n, scored)
    processor = PostProcessor.from_params({"symmetrise": "mean", "threshold": 0.1,
                                           "max_matches": 50})
    qi, qj, _ = processor.predict(i, j, p, n)
    assert set(qj[qi == 0].tolist()) == set(range(n - 49, n))


def test_pipeline_with_no_pairs_and_bad_step_lists():
    processor = PostProcessor.from_params({"symmetrise": "mean", "steps": [
        {"step": "threshold", "threshold": 0.5}, {"step": "merge", "method": "average",
                                                  "threshold": 0.4, "max_size": 50}]})
    empty = np.zeros(0, np.int64)
    qi, qj, s = processor.predict(empty, empty, np.zeros(0, np.float32), 1)
    assert len(qi) == len(qj) == len(s) == 0
    with pytest.raises(ValueError, match="unknown"):
        PostProcessor(steps=("threshold", "magic")).fit(empty, empty, empty, np.zeros(1, int))
    with pytest.raises(ValueError, match="start with 'threshold'"):
        PostProcessor(steps=("min2",)).fit(empty, empty, empty, np.zeros(1, int))


def test_neighbour_scores_lift_a_match_that_the_neighbours_agree_on():
    # 0-1 and 1-2 are strong, 0-2 weak: 0's best neighbour (1) vouches for 2.
    state = MatchState.from_pairs(*symmetric_pairs(4, {(0, 1): 0.9, (1, 2): 0.9, (0, 2): 0.2,
                                                       (2, 3): 0.3}), 4)
    opinion = neighbour_scores(state, depth=1)
    at = {(int(a), int(b)): float(v) for a, b, v in zip(state.i, state.j, opinion)}
    assert at[(0, 2)] > 0.2 + 0.2
    assert at[(2, 3)] < at[(0, 2)]  # only 3 itself vouches for the 2-3 pair
    blended = ScoreBlend.from_fitted(depth=1, weight=0.5, threshold=0.35).apply(state)
    assert (0, 2) in kept_set(blended) and (2, 3) not in kept_set(blended)


def test_a_neighbour_whose_list_misses_j_has_no_opinion_of_j():
    # One product of four postings, but the candidate lists are truncated: 0-3 is a candidate,
    # 1-3 is not. 0's best neighbour 1 cannot judge 3, so it must not drag p(0, 3) down.
    state = MatchState.from_pairs(*symmetric_pairs(4, {(0, 1): 0.95, (0, 3): 0.8, (1, 2): 0.9,
                                                       (2, 3): 0.9, (0, 2): 0.9}), 4)
    opinion = neighbour_scores(state, depth=1)
    at = {(int(a), int(b)): float(v) for a, b, v in zip(state.i, state.j, opinion)}
    assert at[(0, 3)] > 0.8


def test_score_blend_fit_is_no_worse_than_the_plain_cut():
    i, j, p, labels = catalog(5)
    truth = Truth(labels)
    state = MatchState.from_pairs(i, j, p, len(labels))
    plain = ThresholdCut().fit(state, truth).apply(state)
    blended = ScoreBlend().fit(state, truth).apply(state)
    assert truth.evaluate(blended)["f1"] >= truth.evaluate(plain)["f1"] - 1e-9


def test_fit_keeps_the_parameters_as_given_and_copies_the_given_ones():
    i, j, p, labels = catalog(6)
    truth = Truth(labels)
    state = MatchState.from_pairs(i, j, p, len(labels))
    steps = [ThresholdCut(), ScoreBlend(), Min2(), PruneOneWay(), GraphMerge(), Chisel(base=0.5)]
    for step in steps:
        before = dict(vars(step))
        step.fit(state, truth)
        assert {k: v for k, v in vars(step).items() if not k.endswith("_")} == before
        assert set(step.fitted_params()) == set(type(step).fitted)
        restored = type(step).from_fitted(**json.loads(json.dumps(step.fitted_params())))
        assert restored.fitted_params() == step.fitted_params()
        assert np.array_equal(restored.apply(state).keep, step.apply(state).keep)
    given = ScoreBlend(depth=1, weight=0.5, iterations=2, threshold=0.4).fit(state, truth)
    assert given.fitted_params() == {"depth": 1, "weight": 0.5, "iterations": 2, "threshold": 0.4}
    assert Min2(threshold=0.3).fit(state, truth).threshold_ == 0.3
    merge = GraphMerge(method="average", max_size=5).fit(state, truth)
    assert merge.method_ == "average" and merge.max_size_ == 5 and merge.threshold_ is not None
    with pytest.raises(AttributeError, match="not fitted"):
        ThresholdCut(threshold=0.5).apply(state)
    processor = PostProcessor(steps=["threshold", "chisel"]).fit(i, j, p, labels)
    # The pipeline gives chisel its base (the tuned cut) as a parameter.
    assert processor.steps_[1].base == processor.steps_[1].base_ == processor.steps_[0].threshold_
