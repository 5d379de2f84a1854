"""Ranker: p(match) per candidate pair from a gradient-boosted model (LightGBM or XGBoost).

Public API: :class:`PairRanker`, :func:`out_of_fold_scores`, :func:`fit_final`,
:class:`OutOfFold`, :class:`PairFilter`, :data:`FILTER_GROUPS`, :data:`FILTER_MAX_PAIRS`,
:func:`sample_negatives`, :func:`group_size_weights`, :func:`ablate_groups`,
:func:`ablation_markdown`,
:func:`ablation_chart`, :func:`write_importance`, :data:`BACKENDS`, :data:`SCHEMA_FILE`;
the second stage: :func:`stacked_out_of_fold_scores`, :func:`stacked_matrix`,
:func:`predict_second_stage` (:func:`second_stage_rows`: one block of it),
:data:`SECOND_STAGE_PARAMS` (its score-graph features live with
the other feature groups, in :mod:`features.score_graph`); a catalog's distance from the
training scores: :func:`score_quantiles`, :func:`score_shift`, :data:`SCORE_SHIFT_WARN_ABOVE`.
"""
from .ablation import ablate_groups, ablation_chart, ablation_markdown
from .backends import BACKENDS
from .cv import OutOfFold, fit_final, out_of_fold_scores
from .filter import FILTER_GROUPS, PairFilter
from .filter import MAX_PAIRS as FILTER_MAX_PAIRS
from .importance import write_importance
from .model import SCHEMA_FILE, PairRanker
from .sampling import group_size_weights, sample_negatives
from .score_shift import WARN_ABOVE as SCORE_SHIFT_WARN_ABOVE
from .score_shift import score_quantiles, score_shift
from .stacking import (SECOND_STAGE_PARAMS, predict_second_stage, second_stage_rows,
                       stacked_matrix, stacked_out_of_fold_scores)

__all__ = ["BACKENDS", "FILTER_GROUPS", "FILTER_MAX_PAIRS", "OutOfFold", "PairFilter", "PairRanker", "SCHEMA_FILE",
           "SCORE_SHIFT_WARN_ABOVE", "SECOND_STAGE_PARAMS", "ablate_groups", "ablation_chart",
           "ablation_markdown", "fit_final", "group_size_weights", "out_of_fold_scores",
           "predict_second_stage", "sample_negatives", "score_quantiles", "score_shift",
           "second_stage_rows", "stacked_matrix", "stacked_out_of_fold_scores",
           "write_importance"]
