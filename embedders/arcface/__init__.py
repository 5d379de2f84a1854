"""Metric-learning training of the embedders' networks (text and image): ArcFace by default,
the other class and pair losses of :mod:`.losses`, named recipes; out-of-fold embeddings for
protocol P2.

Public API: :class:`TrainingSettings`, :func:`recipe_settings`, :data:`RECIPES`,
:func:`train_encoder`, :func:`save_checkpoint`, :func:`load_loss`, :func:`embed_items`,
:func:`create_loss`, :class:`MetricLoss`, :class:`ArcMarginHead`, :class:`CurricularFaceHead`,
:class:`FocalCrossEntropy`, :class:`Ranger`, :class:`SAM`, :func:`batch_order`,
:func:`warmup_cosine`, :class:`TextEncoder`, :class:`ImageEncoder`.
"""
from .curricularface import CurricularFaceHead
from .encoders import ImageEncoder, TextEncoder
from .focal import FocalCrossEntropy
from .head import ArcMarginHead
from .losses import CLASS_LOSSES, LOSSES, MINERS, PAIR_LOSSES, MetricLoss, create_loss
from .ranger import Ranger
from .recipes import RECIPES, recipe_settings
from .sam import SAM
from .samplers import SAMPLERS, batch_order
from .schedule import warmup_cosine
from .train import (OPTIMIZERS, TrainingSettings, TrainResult, embed_items, load_loss,
                    save_checkpoint, train_encoder)

__all__ = ["CLASS_LOSSES", "LOSSES", "MINERS", "OPTIMIZERS", "PAIR_LOSSES", "RECIPES",
           "SAMPLERS", "ArcMarginHead", "CurricularFaceHead", "FocalCrossEntropy", "ImageEncoder",
           "MetricLoss", "Ranger", "SAM", "TextEncoder", "TrainResult", "TrainingSettings",
           "batch_order", "create_loss", "embed_items", "load_loss", "recipe_settings",
           "save_checkpoint", "train_encoder", "warmup_cosine"]
