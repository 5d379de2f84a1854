"""Which postings make up each training batch.

- ``random``: epoch after epoch, a fresh permutation of the postings;
- ``class-balanced``: postings drawn with replacement, weighted by 1 / the size of their group,
  so a product listed twice is drawn as often as one listed fifty times;
- ``m-per-class``: every batch holds ``m`` postings of each of ``batch_size / m`` groups
  (pytorch-metric-learning's ``MPerClassSampler``), so a pair loss sees positives in every batch.
  Groups smaller than ``m`` are drawn with replacement.

All three draw from one seeded generator, so a run's batches are reproducible.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np

SAMPLERS = ("random", "class-balanced", "m-per-class")


def batch_order(labels: np.ndarray, sampler: str, batch_size: int, total_steps: int,
                rng: np.random.Generator, m_per_class: int = 2) -> np.ndarray:
    """Row indices of ``total_steps`` batches, one after the other (batch s is
    ``order[s * batch_size:(s + 1) * batch_size]``)."""
    labels = np.asarray(labels)
    n, need = len(labels), total_steps * batch_size
    if sampler == "random":
        steps_per_epoch = max(n // batch_size, 1)
        epochs = int(np.ceil(total_steps / steps_per_epoch))
        return np.concatenate([rng.permutation(n) for _ in range(epochs)])
    if sampler == "class-balanced":
        weight = 1.0 / np.bincount(labels)[labels]
        return rng.choice(n, size=need, replace=True, p=weight / weight.sum())
    if sampler == "m-per-class":
        from pytorch_metric_learning.samplers import MPerClassSampler

        groups = len(np.unique(labels))
        if m_per_class * groups < batch_size:
            raise ValueError(f"m-per-class sampling needs at least batch_size / m = "
                             f"{batch_size // m_per_class} groups; the postings hold {groups}")
        sampler_ = MPerClassSampler(labels, m_per_class, batch_size,
                                    length_before_new_iter=need)
        with _library_random_state(int(rng.integers(2**31))):
            return np.fromiter(iter(sampler_), dtype=np.int64, count=need)
    raise ValueError(f"unknown sampler {sampler!r}; one of {', '.join(SAMPLERS)}")


@contextmanager
def _library_random_state(seed: int):
    """pytorch-metric-learning draws from its module-level ``NUMPY_RANDOM``; seed it for the
    sampler's draws and put the library's own back afterwards."""
    from pytorch_metric_learning.utils import common_functions

    previous = common_functions.NUMPY_RANDOM
    common_functions.NUMPY_RANDOM = np.random.RandomState(seed)
    try:
        yield
    finally:
        common_functions.NUMPY_RANDOM = previous
