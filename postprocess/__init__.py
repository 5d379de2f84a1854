"""Post-processing: pair scores to match sets, and the submission table.

The pipeline symmetrises p(i, j) and p(j, i), then runs its switched-on steps in a fixed order
(threshold, neighbour blending of the scores, chisel, Min2, prune weak one-way edges, graph
merge) and caps each posting at 50
matches, self first. Neighbour blending of the embeddings happens before the candidate search, in
``candidates.blend_neighbours``.

Public API: :class:`PostProcessor` (fit on out-of-fold scores, parameters as plain data),
:data:`POSTPROCESS_STEPS`, the steps :class:`ThresholdCut`, :class:`Chisel`, :class:`Min2`,
:class:`PruneOneWay`, :class:`GraphMerge`, :class:`ScoreBlend`, :class:`MutualBest` (not a
trained step: the matching of a model carried to another catalog),
:func:`to_submission`, :data:`MAX_MATCHES`; re-exported from :mod:`common.pairs` (their home):
:func:`symmetrise`, :func:`rank_within_query`.
"""
from common.pairs import rank_within_query, symmetrise

from .chisel import Chisel
from .cut import ThresholdCut
from .graph import GraphMerge, PruneOneWay
from .min2 import Min2
from .mutual_best import MutualBest
from .pairs import MAX_MATCHES
from .pipeline import DEFAULT_STEPS as POSTPROCESS_STEPS
from .pipeline import PostProcessor
from .score_blend import ScoreBlend
from .submission import to_submission

__all__ = ["MAX_MATCHES", "POSTPROCESS_STEPS", "Chisel", "GraphMerge", "Min2", "MutualBest",
           "PostProcessor", "PruneOneWay", "ScoreBlend", "ThresholdCut", "rank_within_query",
           "symmetrise", "to_submission"]
