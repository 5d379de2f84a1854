"""What every feature group reads: the candidate pairs and the stage outputs behind them."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

import numpy as np
import polars as pl


@dataclass
class PairContext:
    """Inputs of the feature groups. ``candidates`` is sorted by (i, j) and closed under symmetry;
    ``embeddings`` maps embedder name to :class:`embedders.Embedding`; ``neighbours`` maps vector
    embedder name to :class:`candidates.Neighbours`."""

    candidates: pl.DataFrame
    postings: pl.DataFrame
    embeddings: dict = field(default_factory=dict)
    neighbours: dict = field(default_factory=dict)

    @cached_property
    def n(self) -> int:
        return self.postings.height

    @cached_property
    def i(self) -> np.ndarray:
        return self.candidates["i"].to_numpy().astype(np.int64)

    @cached_property
    def j(self) -> np.ndarray:
        return self.candidates["j"].to_numpy().astype(np.int64)

    @cached_property
    def reverse(self) -> np.ndarray:
        from common.pairs import reverse_positions

        return reverse_positions(self.i, self.j, self.n)

    @property
    def vector_embedders(self) -> list[str]:
        return [name for name, emb in self.embeddings.items() if emb.kind != "hash"]

    @property
    def hash_embedders(self) -> list[str]:
        return [name for name, emb in self.embeddings.items() if emb.kind == "hash"]

    def column(self, name: str) -> np.ndarray:
        """A candidates column as float32, null → NaN."""
        return self.candidates[name].cast(pl.Float32).fill_null(np.nan).to_numpy()

    @cached_property
    def once(self) -> np.ndarray:
        """One direction of each pair: i < j, or a pair whose reverse is absent."""
        return (self.i < self.j) | (self.reverse < 0)

    def symmetric(self, compute: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
        """Values of a symmetric pair function, computed once per unordered pair and copied to
        the reverse pair: half the work for fuzzy scores, overlaps and common neighbours."""
        once = self.once
        full = np.empty(len(once), dtype=np.float32)
        full[once] = compute(self.i[once], self.j[once])
        rest = ~once
        full[rest] = full[self.reverse[rest]]
        return full

    def reversed(self, values: np.ndarray) -> np.ndarray:
        """``values`` of pair (j, i) for every pair (i, j); NaN where the reverse is absent."""
        out = values[np.maximum(self.reverse, 0)].astype(np.float32)
        out[self.reverse < 0] = np.nan
        return out
