"""The second stage's ``score_graph`` feature group: the first ranker's scores around each pair.

A pair's own features cannot tell that i's best candidate scores 0.95 while j sits at 0.4 in its
list, or that i and j share three confident neighbours; the first stage's scores of the other
pairs can: p(i, j) and p(j, i), each end's best and summed score and count of confident pairs, the
pair's rank in each end's list, its share of each end's best, and the two-hop score
Σ_k p̄(i, k)·p̄(k, j) (p̄: the mean of both directions). ``ranker.stacking`` trains on them.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from candidates import pair_similarity
from common.pairs import rank_within_query, symmetrise

SCORE_GRAPH_GROUP = "score_graph"
CONFIDENT = 0.5  # a pair counts towards an end's confident pairs from this mean score on
SCORE_GRAPH_FEATURES = (
    "stack_p", "stack_p_rev", "stack_p_mean", "stack_p_max", "stack_p_min",
    "stack_best_i", "stack_best_j", "stack_sum_i", "stack_sum_j",
    "stack_confident_i", "stack_confident_j", "stack_rank_i", "stack_rank_j",
    "stack_share_i", "stack_share_j", "stack_two_hop", "stack_two_hop_i", "stack_two_hop_j")


def score_graph_features(i: np.ndarray, j: np.ndarray, p: np.ndarray, n: int) -> np.ndarray:
    """Pairs × :data:`SCORE_GRAPH_FEATURES` (float32) from first-stage scores ``p``.

    The pair table should be closed under symmetry (the candidate and filtered tables are); a
    pair without its reverse counts its own score for the reverse direction.
    """
    return ScoreGraph(i, j, p, n).features()


class ScoreGraph:
    """The first-stage scores of a whole pair table, summarised per posting once, so that the
    score-graph features of any row range (a chunk of query postings) cost only that range."""

    def __init__(self, i: np.ndarray, j: np.ndarray, p: np.ndarray, n: int):
        self.i, self.j = i, j
        self.p = np.asarray(p, dtype=np.float32)
        self.mean = symmetrise(i, j, self.p, n, "mean")
        self.best = np.zeros(n)
        np.maximum.at(self.best, i, self.mean)
        self.total = np.bincount(i, weights=self.mean, minlength=n)
        self.confident = np.bincount(i, weights=self.mean >= CONFIDENT, minlength=n)
        # The table is closed under symmetry, so ranking the pairs by their second end ranks i
        # in j's list.
        self.rank_i = rank_within_query(i, self.mean)
        self.rank_j = rank_within_query(j, self.mean)
        self.graph = sp.csr_matrix((self.mean, (i, j)), shape=(n, n))

    def __len__(self) -> int:
        return len(self.p)

    def features(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Rows ``start:stop`` × :data:`SCORE_GRAPH_FEATURES` (float32)."""
        rows = slice(start, len(self) if stop is None else stop)
        i, j, p = self.i[rows], self.j[rows], self.p[rows]
        mean32 = self.mean[rows]
        reverse = 2 * mean32 - p  # the reverse pair's score (its own where it has none)
        best_i, best_j, total_i, total_j = (self.best[i], self.best[j], self.total[i],
                                            self.total[j])
        two_hop = pair_similarity(self.graph, i, j).astype(np.float64)
        mean = mean32.astype(np.float64)
        columns = [p, reverse, mean, np.maximum(p, reverse), np.minimum(p, reverse),
                   best_i, best_j, total_i, total_j, self.confident[i], self.confident[j],
                   self.rank_i[rows], self.rank_j[rows],
                   mean / np.maximum(best_i, 1e-6), mean / np.maximum(best_j, 1e-6),
                   two_hop, two_hop / np.maximum(total_i, 1e-6),
                   two_hop / np.maximum(total_j, 1e-6)]
        out = np.empty((len(p), len(columns)), dtype=np.float32)
        for k, column in enumerate(columns):
            out[:, k] = column
        return out
