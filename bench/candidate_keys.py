"""What the candidate-source benches (``shared_neighbours.py``, ``photo_bridges.py``) read from
a work directory made by ``cli.py candidates`` on a labelled catalog, and its lists' entries."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from candidates import load_neighbours  # noqa: E402
from common.pairs import pair_keys, unique_keys  # noqa: E402
from common.postings import label_codes  # noqa: E402


def labelled_candidates(work: Path) -> tuple[np.ndarray, np.ndarray]:
    """The postings' label codes and the candidate pairs' sorted ``i · n + j`` keys."""
    labels = label_codes(pl.read_parquet(work / "postings.parquet"))
    table = pl.read_parquet(work / "candidates.parquet", columns=["i", "j"])
    return labels, unique_keys(pair_keys(table["i"].to_numpy(), table["j"].to_numpy(),
                                         len(labels)))


def saved_lists(work: Path, names: list[str]) -> dict[str, np.ndarray]:
    """Each named embedder's saved neighbour list (n × depth, best first, -1 past its end)."""
    return {name: lists.index for name, lists in load_neighbours(work / "neighbours",
                                                                 names).items()}


def list_entries(index: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, neighbour) of each row's best ``depth`` entries of a list, as int64."""
    rows = np.repeat(np.arange(len(index), dtype=np.int64), min(depth, index.shape[1]))
    cols = index[:, :depth].ravel().astype(np.int64)
    valid = cols >= 0
    return rows[valid], cols[valid]
