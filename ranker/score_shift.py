"""How far a catalog's pair scores sit from those of the catalog the model was trained on.

A model carried to another catalog (another market, title-only listings, a catalog where half the
postings match nothing) scores pairs unlike those its thresholds and post-processing were tuned
on. The quantiles of the training catalog's out-of-fold scores travel with the model; matching
measures the Kolmogorov-Smirnov distance of the new catalog's scores from them (at those
quantiles: the largest gap between the share of new scores below a training quantile and the
share of training scores there); above :data:`WARN_ABOVE` the catalog counts as another kind
(``pipeline.transfer``: a warning, and the conservative post-processing).
"""
from __future__ import annotations

import numpy as np

QUANTILE_LEVELS = np.round(np.linspace(0.05, 0.95, 19), 2)
# Shopee, a held-out half of its products: 0.15; Abt-Buy, Amazon-Google: 0.53 from that
# half-catalog model; from the default model on all of Shopee train 0.19 and 0.11 (0.23 and
# 0.23 before its rankers learnt what a missing photo means).
WARN_ABOVE = 0.25


def score_quantiles(p: np.ndarray) -> list[float]:
    """The scores' quantiles at :data:`QUANTILE_LEVELS`, as plain data for the model schema."""
    p = np.asarray(p, dtype=np.float64)
    return [round(float(q), 6) for q in np.quantile(p, QUANTILE_LEVELS)] if len(p) else []


def score_shift(quantiles: list[float], p: np.ndarray) -> float | None:
    """Kolmogorov-Smirnov distance of scores ``p`` from the distribution whose
    :func:`score_quantiles` are ``quantiles``; None where either side has no score."""
    if not quantiles or not len(p):
        return None
    below = np.searchsorted(np.sort(np.asarray(p, np.float64)), quantiles, side="right") / len(p)
    return round(float(np.max(np.abs(below - QUANTILE_LEVELS))), 4)
