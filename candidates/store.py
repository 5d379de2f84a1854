"""Neighbour lists on disk, for the neighbourhood features."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from common.atomic import save_npy

from .build import Neighbours


def save_neighbours(folder: Path, neighbours: dict[str, Neighbours]) -> None:
    for name, lists in neighbours.items():
        save_npy(Path(folder) / f"{name}.index.npy", lists.index)
        save_npy(Path(folder) / f"{name}.similarity.npy", lists.similarity)


def load_neighbours(folder: Path, names: list[str]) -> dict[str, Neighbours]:
    return {name: Neighbours(np.load(Path(folder) / f"{name}.index.npy", allow_pickle=False),
                             np.load(Path(folder) / f"{name}.similarity.npy", allow_pickle=False))
            for name in names}
