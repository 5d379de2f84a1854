"""ablate_groups covers every group, without and alone, with ΔF1 against all groups."""
from __future__ import annotations

import numpy as np

from features import SCORE_GRAPH_FEATURES
from ranker import PairRanker, ablate_groups, ablation_markdown


def test_every_group_without_and_alone():
    rng = np.random.default_rng(0)
    n = 60
    labels = np.repeat(np.arange(20), 3)
    i = np.repeat(np.arange(n), 6)
    j = rng.integers(0, n, len(i))
    keep = i != j
    i, j = i[keep], j[keep]
    y = (labels[i] == labels[j]).astype(np.float32)
    signal = y + rng.normal(0, 0.3, len(y))
    X = np.column_stack([signal, rng.normal(size=len(y)), signal * 0.5]).astype(np.float32)
    names = ["strong", "noise", "half"]
    groups = {"strong": "a", "noise": "b", "half": "c"}
    seen = []

    def evaluate(scores):
        seen.append(len(scores))
        return {"f1": float(np.corrcoef(scores, y)[0, 1]), "precision": 1.0, "recall": 1.0}

    rows = ablate_groups(X, y, i, j, labels, names, groups,
                         lambda: PairRanker(rounds=20, early_stopping=5, num_threads=1),
                         evaluate, n_folds=3)
    assert [(r["variant"], r["group"]) for r in rows] == [
        ("all", "all"), ("without", "a"), ("only", "a"), ("without", "b"), ("only", "b"),
        ("without", "c"), ("only", "c")]
    assert rows[0]["delta_f1"] == 0
    only_noise = next(r for r in rows if r["variant"] == "only" and r["group"] == "b")
    assert only_noise["delta_f1"] < -0.15  # noise alone is far worse than all features
    assert ablation_markdown(rows).count("\n") == len(rows) + 2


def test_second_stage_row_follows_the_all_groups_row():
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(20), 3)
    i = np.repeat(np.arange(60), 6)
    j = rng.integers(0, 60, len(i))
    keep = i != j
    i, j = i[keep], j[keep]
    y = (labels[i] == labels[j]).astype(np.float32)
    X = np.column_stack([y + rng.normal(0, 0.5, len(y)), rng.normal(size=len(y))]) \
        .astype(np.float32)
    rows = ablate_groups(X, y, i, j, labels, ["signal", "noise"], {"signal": "a", "noise": "b"},
                         lambda: PairRanker(rounds=20, early_stopping=5, num_threads=1),
                         lambda s: {"f1": float(np.corrcoef(s, y)[0, 1]), "precision": 1.0,
                                    "recall": 1.0}, n_folds=3, second_stage=True)
    assert [(r["variant"], r["group"]) for r in rows][:2] == [("all", "all"),
                                                             ("with", "score_graph")]
    assert rows[1]["features"] == 2 + len(SCORE_GRAPH_FEATURES)
    assert rows[1]["delta_f1"] == round(rows[1]["f1"] - rows[0]["f1"], 6)
