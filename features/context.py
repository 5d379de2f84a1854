"""What every feature group reads: the candidate pairs and the stage outputs behind them.

A context covers a whole pair table, or one chunk of it (:meth:`PairContext.chunks`: the pairs of
a range of query postings), so that a catalog of millions of postings never holds every pair's
features at once. A chunk reads the whole table where a feature needs it (the reverse pair's
rank, the candidate graph), and per-posting or whole-table values (cleaned titles, token
matrices, degrees) are computed once and shared by every chunk of the table.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, Iterator

import numpy as np
import polars as pl


@dataclass
class PairContext:
    """Inputs of the feature groups. ``candidates`` is sorted by (i, j) and closed under symmetry;
    ``embeddings`` maps embedder name to :class:`embedders.Embedding`; ``neighbours`` maps vector
    embedder name to :class:`candidates.Neighbours`. ``rows`` (start, stop) is the chunk of
    ``candidates`` the features are built for (default: every pair)."""

    candidates: pl.DataFrame
    postings: pl.DataFrame
    embeddings: dict = field(default_factory=dict)
    neighbours: dict = field(default_factory=dict)
    rows: tuple[int, int] | None = None
    _shared: dict = field(default_factory=dict, repr=False)

    @cached_property
    def n(self) -> int:
        return self.postings.height

    @property
    def start(self) -> int:
        return 0 if self.rows is None else self.rows[0]

    @property
    def stop(self) -> int:
        return self.candidates.height if self.rows is None else self.rows[1]

    def __len__(self) -> int:
        return self.stop - self.start

    def shared(self, key, make: Callable[[], object]):
        """``make()``, computed once for the whole table and shared with its chunks (per-posting
        arrays, token matrices, the candidate graph)."""
        if key not in self._shared:
            self._shared[key] = make()
        return self._shared[key]

    @property
    def table_i(self) -> np.ndarray:
        """Query ends of every pair of the table (not only this chunk's), int32 as in the
        table (int64 copies of both ends were 1.2 GB at a million postings)."""
        return self.shared("table_i", lambda: self._end("i"))

    @property
    def table_j(self) -> np.ndarray:
        return self.shared("table_j", lambda: self._end("j"))

    def _end(self, name: str) -> np.ndarray:
        return self.candidates[name].cast(pl.Int32).to_numpy()

    @cached_property
    def i(self) -> np.ndarray:
        return self.table_i[self.start:self.stop]

    @cached_property
    def j(self) -> np.ndarray:
        return self.table_j[self.start:self.stop]

    @cached_property
    def reverse(self) -> np.ndarray:
        """Position in the whole table of each pair's reverse (j, i); -1 where it is absent."""
        from common.pairs import reverse_positions

        whole = self.shared("reverse", lambda: _narrow(reverse_positions(
            self.table_i, self.table_j, self.n)))
        return whole[self.start:self.stop]

    @property
    def vector_embedders(self) -> list[str]:
        return [name for name, emb in self.embeddings.items() if emb.kind in ("dense", "sparse")]

    @property
    def hash_embedders(self) -> list[str]:
        return [name for name, emb in self.embeddings.items() if emb.kind == "hash"]

    def column(self, name: str) -> np.ndarray:
        """This chunk's values of a candidates column as float32, null → NaN."""
        return self._as_float(self.candidates[name].slice(self.start, len(self)))

    def reversed_column(self, name: str) -> np.ndarray:
        """The candidates column ``name`` of pair (j, i) for every pair (i, j) of the chunk; NaN
        where the reverse is absent."""
        return self.reversed(self.candidates[name])

    def reversed(self, values: pl.Series | np.ndarray) -> np.ndarray:
        """``values``, one per pair of the whole table (a candidates column, or values computed
        over the table), of pair (j, i) for every pair (i, j) of the chunk as float32; NaN where
        the reverse is absent."""
        reverse = self.reverse
        out = self._as_float(pl.Series(values).gather(np.maximum(reverse, 0)))
        out[reverse < 0] = np.nan
        return out

    @staticmethod
    def _as_float(series: pl.Series) -> np.ndarray:
        return series.cast(pl.Float32).fill_null(np.nan).to_numpy().astype(np.float32)

    @cached_property
    def once(self) -> np.ndarray:
        """One direction of each pair of the chunk: i < j, or a pair whose reverse is outside
        the chunk (or absent)."""
        reverse = self.reverse
        return (self.i < self.j) | (reverse < self.start) | (reverse >= self.stop)

    def symmetric(self, compute: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
        """Values of a symmetric pair function, computed once per unordered pair of the chunk and
        copied to the reverse pair: half the work for fuzzy scores, overlaps and common
        neighbours (a pair whose reverse is in another chunk is computed in both)."""
        return self.symmetric_many(lambda a, b: (compute(a, b),))[0]

    def symmetric_many(self, compute: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, ...]]
                       ) -> list[np.ndarray]:
        """:meth:`symmetric` for a function that returns several symmetric columns at once
        (one pass of a pair kernel)."""
        once = self.once
        rest = ~once
        source = self.reverse[rest] - self.start
        columns = []
        for values in compute(self.i[once], self.j[once]):
            full = np.empty(len(once), dtype=np.float32)
            full[once] = values
            full[rest] = full[source]
            columns.append(full)
        return columns

    def chunks(self, postings_per_chunk: int | None) -> Iterator[PairContext]:
        """Views of this table's pairs, one per range of ``postings_per_chunk`` query postings
        (the table is sorted by i, so each is a contiguous row range), sharing this context's
        whole-table values; the whole table at once where ``postings_per_chunk`` is None or
        covers the catalog."""
        ranges = self.chunk_rows(postings_per_chunk)
        if len(ranges) == 1:
            yield self
            return
        for start, stop in ranges:
            yield self.chunk(start, stop)

    def chunk_rows(self, postings_per_chunk: int | None) -> list[tuple[int, int]]:
        """The row ranges of :meth:`chunks` (one covering the table where it is one chunk), so
        that the chunks can be made elsewhere (:meth:`chunk`: a Dask task on a worker)."""
        if self.rows is not None:
            raise ValueError("chunks of a chunk")
        if postings_per_chunk is None or postings_per_chunk >= self.n:
            return [(0, self.candidates.height)]
        if postings_per_chunk < 1:
            raise ValueError("postings_per_chunk must be at least 1")
        bounds = np.searchsorted(self.table_i, np.arange(0, self.n, postings_per_chunk))
        bounds = np.unique(np.append(bounds, len(self.table_i)))  # empty ranges dropped
        if len(bounds) < 2:  # no pair at all
            return [(0, 0)]
        return list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))

    def chunk(self, start: int, stop: int) -> PairContext:
        """The view of rows ``start:stop``, sharing this context's whole-table values."""
        return PairContext(self.candidates, self.postings, self.embeddings, self.neighbours,
                           (start, stop), self._shared)


def _narrow(positions: np.ndarray) -> np.ndarray:
    """Pair positions as int32 where the table has fewer than 2³¹ pairs (half the memory)."""
    return positions.astype(np.int32) if len(positions) < 2**31 else positions
