"""Candidates: top-K neighbour search per embedder ∪ exact-hash blocks, as one pair table.

Public API: :func:`build_candidates` (lists allocated per posting or globally:
:func:`allocation_spec`, ``ALLOCATIONS``, :func:`global_entries`), :class:`CandidateSet`,
:class:`Neighbours`,
:func:`candidate_recall`, :func:`recall_by_source`, :func:`top_k`, :func:`find_neighbours`
(exact or approximate, ``SEARCH_METHODS``; exact over :func:`query_shards` too),
:func:`pair_similarity`, :func:`save_neighbours`, :func:`load_neighbours`,
:func:`blend_neighbours`, photo bridges (:func:`bridge_spec`, :mod:`candidates.bridges`);
re-exported from :mod:`common.pairs` (their home):
:func:`reverse_positions`, :func:`row_pointers`, :func:`row_position`.
"""
from common.pairs import reverse_positions, row_pointers, row_position

from .allocate import ALLOCATIONS, allocation_spec, global_entries
from .blend import blend_neighbours
from .bridges import BRIDGE_IN, BRIDGE_LIST_DEPTH, BRIDGE_OUT, bridge_spec
from .build import CandidateSet, Neighbours, build_candidates, candidate_recall, recall_by_source
from .pairs import pair_similarity
from .search import SEARCH_METHODS, find_neighbours, query_shards, top_k
from .store import load_neighbours, save_neighbours

__all__ = ["ALLOCATIONS", "BRIDGE_IN", "BRIDGE_LIST_DEPTH", "BRIDGE_OUT", "SEARCH_METHODS",
           "allocation_spec", "blend_neighbours", "bridge_spec",
           "build_candidates", "candidate_recall", "CandidateSet", "find_neighbours",
           "global_entries", "load_neighbours", "Neighbours", "pair_similarity", "query_shards",
           "recall_by_source", "reverse_positions", "row_pointers", "row_position",
           "save_neighbours", "top_k"]
