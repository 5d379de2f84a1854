"""One-to-one matching: a kept pair stays only when each posting is the other's best."""
from __future__ import annotations

from typing import ClassVar

from common.pairs import reverse_positions

from .state import MatchState, Truth
from .step import Step


class MutualBest(Step):
    """Keep a kept pair (i, j) only when j is i's highest-scored candidate and i is j's.

    It assumes nothing about a catalog but that a posting's best match, when it has one, is
    its most similar candidate: no group sizes learnt elsewhere. That makes it the matching of
    last resort for a model carried to a catalog unlike its own (:mod:`pipeline.transfer`), and
    a fit for catalogs whose products are listed at most twice. Nothing to tune.
    """

    name: ClassVar[str] = "mutual_best"

    def fit(self, state: MatchState, truth: Truth) -> MutualBest:
        return self

    def apply(self, state: MatchState) -> MatchState:
        reverse = reverse_positions(state.i, state.j, state.n)
        best = state.rank == 0
        mutual = best & (reverse >= 0) & best[reverse.clip(min=0)]
        return state.with_keep(state.keep & mutual)
