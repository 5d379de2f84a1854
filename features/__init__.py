"""Features: one row per candidate pair, one float32 column per feature, each in a named group.

Public API: :func:`build_features`, :data:`FEATURE_GROUPS`, :class:`FeatureTable`,
:class:`PairContext`.
"""
from .build import FEATURE_GROUPS, FeatureTable, build_features
from .context import PairContext

__all__ = ["FEATURE_GROUPS", "FeatureTable", "PairContext", "build_features"]
