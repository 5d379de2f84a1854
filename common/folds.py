"""Protocol P1 folds: k folds grouped by ``label_group`` with a fixed seed."""
from __future__ import annotations

import numpy as np


def group_folds(labels: np.ndarray, n_folds: int = 5, seed: int = 42) -> np.ndarray:
    """Fold number per posting; all postings of a label group share a fold.

    Groups are shuffled with ``seed`` and dealt largest-first onto the currently smallest fold, so
    folds hold near-equal numbers of postings and stay the same for the same labels and seed.
    """
    if n_folds < 2:
        raise ValueError("n_folds must be at least 2")
    groups, codes, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    if len(groups) < n_folds:
        raise ValueError(f"{len(groups)} label groups cannot fill {n_folds} folds")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(groups))
    order = order[np.argsort(-sizes[order], kind="stable")]
    fold_of_group = np.empty(len(groups), dtype=np.int64)
    load = np.zeros(n_folds, dtype=np.int64)
    # One pass over groups (thousands), not postings or pairs.
    for group in order:
        fold = int(np.argmin(load))
        fold_of_group[group] = fold
        load[fold] += sizes[group]
    return fold_of_group[codes]
