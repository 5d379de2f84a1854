"""Embedders: per-modality vectors for every posting, cached on disk.

Public API: :func:`create_embedder` (by registered name), :func:`list_embedders`,
:func:`embed_catalog` (compute or load from the cache), :class:`Embedding`, :func:`hamming`.
"""
from .base import Embedder, Embedding, l2_normalise_rows
from .cache import embed_catalog
from .phash import hamming
from .registry import create_embedder, describe_embedders, list_embedders, register_embedder

__all__ = ["Embedder", "Embedding", "create_embedder", "describe_embedders", "embed_catalog",
           "hamming", "l2_normalise_rows", "list_embedders", "register_embedder"]
