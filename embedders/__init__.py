"""Embedders: per-modality vectors for every posting, cached on disk.

Public API: :func:`create_embedder` (by registered name), :func:`list_embedders`,
:func:`embed_catalog` (compute or load from the cache), :class:`Embedding`, :func:`hamming`;
for the learned embedders (``arcface_text``, ``arcface_image``) :func:`is_learned` and
:func:`copy_trained` (a trained encoder into a model folder).
"""
from .base import Embedder, Embedding, l2_normalise_rows
from .cache import embed_catalog
from .phash import hamming
from .learned import copy_trained
from .registry import (create_embedder, describe_embedders, is_learned, list_embedders,
                       register_embedder)

__all__ = ["Embedder", "Embedding", "copy_trained", "create_embedder", "describe_embedders",
           "embed_catalog", "hamming", "is_learned", "l2_normalise_rows", "list_embedders",
           "register_embedder"]
