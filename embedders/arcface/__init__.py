"""ArcFace training of the embedders' networks (text and image) with an additive angular margin
head; out-of-fold embeddings for protocol P2.

Public API: :class:`ArcMarginHead`, :class:`SAM`, :func:`warmup_cosine`,
:class:`ArcFaceSettings`, :func:`train_arcface`, :func:`save_checkpoint`, :func:`load_head`,
:func:`embed_items`, :class:`TextEncoder`, :class:`ImageEncoder`.
"""
from .encoders import ImageEncoder, TextEncoder
from .head import ArcMarginHead
from .sam import SAM
from .schedule import warmup_cosine
from .train import (ArcFaceSettings, TrainResult, embed_items, load_head, save_checkpoint,
                    train_arcface)

__all__ = ["ArcFaceSettings", "ArcMarginHead", "ImageEncoder", "SAM", "TextEncoder",
           "TrainResult", "embed_items", "load_head", "save_checkpoint", "train_arcface",
           "warmup_cosine"]
