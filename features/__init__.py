"""Features: one row per candidate pair, one float32 column per feature, each in a named group.

Public API: :func:`build_features`, :data:`FEATURE_GROUPS`, :class:`FeatureTable`,
:class:`PairContext`; the second stage's group (from first-stage scores, not in
:data:`FEATURE_GROUPS`): :func:`score_graph_features` (:class:`ScoreGraph` for chunks), :data:`SCORE_GRAPH_FEATURES`,
:data:`SCORE_GRAPH_GROUP`; the columns that read one view of the postings (photos):
:func:`view_columns`.
"""
from .build import FEATURE_GROUPS, FeatureTable, build_features, view_columns
from .context import PairContext
from .score_graph import (SCORE_GRAPH_FEATURES, SCORE_GRAPH_GROUP, ScoreGraph,
                          score_graph_features)

__all__ = ["FEATURE_GROUPS", "FeatureTable", "PairContext", "SCORE_GRAPH_FEATURES",
           "SCORE_GRAPH_GROUP", "ScoreGraph", "build_features", "score_graph_features",
           "view_columns"]
