"""Negative down-sampling for training: most candidate pairs are easy non-matches, and the trees'
cost grows with rows. Kept negatives are weighted 1/rate so predicted probabilities stay
calibrated in expectation."""
from __future__ import annotations

import numpy as np


def sample_negatives(y: np.ndarray, rate: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(keep mask, weight per kept row): every positive, a ``rate`` share of the negatives."""
    if not 0 < rate <= 1:
        raise ValueError("negative rate must be in (0, 1]")
    if rate == 1:
        return np.ones(len(y), dtype=bool), np.ones(len(y), dtype=np.float32)
    keep = (y > 0) | (np.random.default_rng(seed).random(len(y)) < rate)
    weight = np.where(y[keep] > 0, 1.0, 1.0 / rate).astype(np.float32)
    return keep, weight


def group_size_weights(i: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-pair weight 1 / |true group of the query|, scaled to mean 1.

    The metric averages over postings, but a group of g postings brings g·(g−1) positive pairs;
    these weights give every posting's pairs about the same total say.
    """
    sizes = np.bincount(labels)[labels].astype(np.float64)
    weight = 1.0 / sizes[i]
    return (weight / weight.mean()).astype(np.float32)
