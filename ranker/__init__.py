"""Ranker: p(match) per candidate pair from a gradient-boosted model (LightGBM or XGBoost).

Public API: :class:`PairRanker`, :func:`out_of_fold_scores`, :func:`fit_final`,
:class:`OutOfFold`, :class:`PairFilter`, :data:`FILTER_GROUPS`, :func:`sample_negatives`,
:func:`group_size_weights`, :func:`ablate_groups`, :func:`ablation_markdown`,
:func:`ablation_chart`, :func:`write_importance`, :data:`BACKENDS`, :data:`SCHEMA_FILE`.
"""
from .ablation import ablate_groups, ablation_chart, ablation_markdown
from .backends import BACKENDS
from .cv import OutOfFold, fit_final, out_of_fold_scores
from .filter import FILTER_GROUPS, PairFilter
from .importance import write_importance
from .model import SCHEMA_FILE, PairRanker
from .sampling import group_size_weights, sample_negatives

__all__ = ["BACKENDS", "FILTER_GROUPS", "OutOfFold", "PairFilter", "PairRanker", "SCHEMA_FILE",
           "ablate_groups", "ablation_chart", "ablation_markdown", "fit_final",
           "group_size_weights", "out_of_fold_scores", "sample_negatives", "write_importance"]
