"""Ranker: p(match) per candidate pair from a gradient-boosted model (LightGBM or XGBoost).

Public API: :class:`PairRanker`, :func:`out_of_fold_scores`, :func:`fit_final`,
:class:`OutOfFold`, :func:`sample_negatives`, :data:`BACKENDS`, :data:`SCHEMA_FILE`.
"""
from .backends import BACKENDS
from .cv import OutOfFold, fit_final, out_of_fold_scores
from .model import SCHEMA_FILE, PairRanker
from .sampling import sample_negatives

__all__ = ["BACKENDS", "OutOfFold", "PairRanker", "SCHEMA_FILE", "fit_final",
           "out_of_fold_scores", "sample_negatives"]
