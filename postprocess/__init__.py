"""Post-processing: pair scores to match sets (threshold, symmetrisation, the 50-match cap) and
the submission table.

Public API: :class:`ThresholdMatcher`, :func:`symmetrise`, :func:`rank_within_query`,
:func:`to_submission`, :data:`MAX_MATCHES`.
"""
from .pairs import MAX_MATCHES, rank_within_query, symmetrise
from .submission import to_submission
from .threshold import ThresholdMatcher

__all__ = ["MAX_MATCHES", "ThresholdMatcher", "rank_within_query", "symmetrise", "to_submission"]
