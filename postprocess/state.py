"""The working state every post-processing step reads and rewrites: scored pairs, which of them
are kept as matches, and (while fitting) whether each pair is a true match."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from common.pairs import key_positions, pair_keys, rank_within_query, split_keys, unique_keys


@dataclass(frozen=True)
class MatchState:
    """Pairs ``(i, j)`` with score ``score`` over ``n`` postings; ``keep`` marks the predicted
    matches (self is always implicit). Steps may append pairs (a graph merge adds pairs that were
    never candidates); ``rank`` is each pair's 0-based rank among its query's pairs by score."""

    n: int
    i: np.ndarray
    j: np.ndarray
    score: np.ndarray
    keep: np.ndarray
    rank: np.ndarray

    @classmethod
    def from_pairs(cls, i: np.ndarray, j: np.ndarray, score: np.ndarray, n: int) -> MatchState:
        i = np.asarray(i, dtype=np.int64)
        j = np.asarray(j, dtype=np.int64)
        score = np.asarray(score, dtype=np.float32)
        return cls(n, i, j, score, np.zeros(len(i), dtype=bool), rank_within_query(i, score))

    def with_keep(self, keep: np.ndarray) -> MatchState:
        return replace(self, keep=keep)

    def with_added(self, i: np.ndarray, j: np.ndarray, score: np.ndarray) -> MatchState:
        """Append kept pairs that are not already present (present ones are simply kept)."""
        n = self.n
        if not len(i):
            return self
        added = pair_keys(i, j, n)
        new_keys = unique_keys(added)
        position = key_positions(pair_keys(self.i, self.j, n), new_keys)
        found = position >= 0
        keep = self.keep.copy()
        keep[position[found]] = True
        fresh = new_keys[~found]
        if not len(fresh):
            return replace(self, keep=keep)
        new_score = _score_for(new_keys, added, score)[~found]
        fresh_i, fresh_j = split_keys(fresh, n)
        all_i = np.concatenate([self.i, fresh_i])
        all_j = np.concatenate([self.j, fresh_j])
        all_score = np.concatenate([self.score, new_score.astype(np.float32)])
        all_keep = np.concatenate([keep, np.ones(len(fresh), dtype=bool)])
        return MatchState(n, all_i, all_j, all_score, all_keep, rank_within_query(all_i, all_score))


def _score_for(unique_keys: np.ndarray, keys: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Highest score given to each of ``unique_keys`` among (``keys``, ``score``)."""
    order = np.lexsort((-score, keys))
    first = np.searchsorted(keys[order], unique_keys)
    return score[order][first]


class Truth:
    """What scoring a state needs: the label code of each posting and its true group size."""

    def __init__(self, labels: np.ndarray):
        self.labels = np.asarray(labels)
        self.sizes = np.bincount(self.labels)[self.labels].astype(np.float64)

    def evaluate(self, state: MatchState, keep: np.ndarray | None = None) -> dict[str, float]:
        """Mean per-posting F1, precision and recall of ``keep`` (default: the state's own)."""
        keep = state.keep if keep is None else keep
        qi, qj = state.i[keep], state.j[keep]
        same = self.labels[qi] == self.labels[qj]
        hits = 1 + np.bincount(qi, weights=same, minlength=state.n)
        size = 1 + np.bincount(qi, minlength=state.n)
        return {"f1": float((2 * hits / (size + self.sizes)).mean()),
                "precision": float((hits / size).mean()),
                "recall": float((hits / self.sizes).mean())}
