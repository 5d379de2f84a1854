"""Protocol P1 folds: k folds grouped by ``label_group`` with a fixed seed."""
from __future__ import annotations

import numpy as np

from .errors import InputError

# The rankers' early stopping holds out one of this many label-grouped inner folds
# (ranker.cv.FoldTrainer), so training needs at least this many label groups whatever --folds.
EARLY_STOPPING_FOLDS = 10


def require_label_groups(labels: np.ndarray, n_folds: int, file: str | None = None) -> None:
    """Refuse labels whose groups cannot fill ``n_folds`` folds and the early-stopping split
    (each fold holds whole label groups) with an :class:`InputError`, before any training."""
    groups = len(np.unique(labels))
    needed = max(n_folds, EARLY_STOPPING_FOLDS)
    if groups >= needed:
        return
    advice = (f"use --folds {groups} or fewer" if groups >= EARLY_STOPPING_FOLDS
              else "label more products")
    raise InputError(f"{groups} label groups are too few: training with {n_folds} folds deals "
                     f"whole groups into the folds and into the {EARLY_STOPPING_FOLDS} folds of "
                     f"the early-stopping split, so it needs at least {needed}; {advice}",
                     file=file, column="label_group")


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
