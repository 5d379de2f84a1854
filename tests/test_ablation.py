"""ablate_groups covers every group, without and alone, with ΔF1 against all groups."""
from __future__ import annotations

import numpy as np

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
