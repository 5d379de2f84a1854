"""Neighbour lists on disk, for the neighbourhood features."""
from __future__ import annotations

from pathlib import Path

from common.atomic import load_npy, save_npy

from .build import Neighbours


def save_neighbours(folder: Path, neighbours: dict[str, Neighbours]) -> None:
    for name, lists in neighbours.items():
        save_npy(Path(folder) / f"{name}.index.npy", lists.index)
        save_npy(Path(folder) / f"{name}.similarity.npy", lists.similarity)


def load_neighbours(folder: Path, names: list[str]) -> dict[str, Neighbours]:
    return {name: Neighbours(load_npy(Path(folder) / f"{name}.index.npy", "candidates"),
                             load_npy(Path(folder) / f"{name}.similarity.npy", "candidates"))
            for name in names}
