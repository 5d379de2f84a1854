"""The training objectives, one registry: class (margin) losses and pair losses.

Class losses learn a centre per label group and push each embedding towards its own centre by a
margin: ``arcface`` (this package's head: the documented fall-back past θ = π − m and the
float32 guard under autocast), ``subcenter-arcface`` (pytorch-metric-learning's, three centres
per group so a group's outlier postings do not drag its main centre) and ``curricularface``
(this package's head; the library has none). They take ``focal_gamma`` and a margin warm-up.

Pair losses compare the embeddings of a batch with each other, so their batches must hold
positives (``m-per-class`` sampling): ``contrastive`` (cosine similarity, positives pulled to 1,
negatives pushed below 0), ``triplet`` (margin 0.1) and ``multi-similarity``, optionally with a
miner choosing the informative pairs and a cross-batch memory (XBM) of the last ``xbm``
embeddings to compare against, all from pytorch-metric-learning.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .curricularface import CurricularFaceHead
from .focal import FocalCrossEntropy
from .head import ArcMarginHead

CLASS_LOSSES = ("arcface", "subcenter-arcface", "curricularface")
PAIR_LOSSES = ("contrastive", "triplet", "multi-similarity")
LOSSES = CLASS_LOSSES + PAIR_LOSSES
MINERS = ("none", "multi-similarity", "batch-hard")


class MetricLoss(nn.Module):
    """``loss(embeddings, labels)`` → a scalar, whatever the objective. Embeddings are taken
    in float32: the pair similarities and margins are not safe in half precision."""

    def __init__(self, name: str, module: nn.Module, miner=None,
                 criterion: nn.Module | None = None):
        super().__init__()
        self.name, self.module, self.miner, self.criterion = name, module, miner, criterion
        # A cross-batch memory compares against embeddings of earlier steps; while the encoder
        # still moves fast they are stale (XBM's "slow drift" holds only after a warm-up), so
        # training may keep it off (neither filled nor used) for its first steps.
        self.memory_on = True

    @property
    def is_classifier(self) -> bool:
        return self.name in CLASS_LOSSES

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        embeddings = embeddings.float()
        with torch.autocast(device_type=embeddings.device.type, enabled=False):
            if self.criterion is not None:  # this package's heads give logits
                return self.criterion(self.module(embeddings, labels), labels)
            if self.miner is not None:
                return self.module(embeddings, labels, self.miner(embeddings, labels))
            if self.has_memory and not self.memory_on:  # the batch alone, memory untouched
                inner = self.module
                pairs = inner.miner(embeddings, labels) if inner.miner is not None else None
                return inner.loss(embeddings, labels, pairs)
            return self.module(embeddings, labels)  # the library's losses (XBM mines inside)

    @property
    def has_memory(self) -> bool:
        return hasattr(self.module, "memory_size")  # pytorch-metric-learning's CrossBatchMemory

    def set_margin(self, radians: float) -> None:
        """The margin of a class loss (for the warm-up); pair losses have none to change."""
        if self.is_classifier:
            self.module.margin = radians

    @torch.no_grad()
    def init_centres(self, centres: torch.Tensor) -> None:
        """Start every class centre (each sub-centre too) at its group's mean embedding."""
        if self.name == "subcenter-arcface":
            k = self.module.sub_centers
            jitter = 0.01 * torch.randn(centres.shape[0] * k, centres.shape[1])
            self.module.W.copy_((centres.repeat_interleave(k, dim=0) + jitter).T)
        elif self.is_classifier:
            self.module.weight.copy_(centres)

    def state_to_save(self) -> dict[str, torch.Tensor]:
        """What a checkpoint keeps: the class centres (an ArcFace head's ``weight``, as before
        the other losses existed); pair losses learn nothing but the encoder."""
        return {k: v.detach().cpu().contiguous() for k, v in self.module.state_dict().items()}


def create_loss(settings, embedding_dim: int, n_classes: int) -> MetricLoss:
    """The objective ``settings`` name (``settings.loss``, ``miner``, ``xbm``, ``scale``,
    ``margin``, ``focal_gamma``, ``triplet_margin``, ``sub_centers``)."""
    name = settings.loss
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; one of {', '.join(LOSSES)}")
    if name in CLASS_LOSSES and n_classes < 2:
        raise ValueError(f"{name} needs at least 2 label groups")
    criterion = FocalCrossEntropy(settings.focal_gamma)
    if name == "arcface":
        return MetricLoss(name, ArcMarginHead(embedding_dim, n_classes, settings.scale,
                                              settings.margin, settings.easy_margin), None,
                          criterion)
    if name == "curricularface":
        return MetricLoss(name, CurricularFaceHead(embedding_dim, n_classes, settings.scale,
                                                   settings.margin), None, criterion)
    from pytorch_metric_learning import distances, losses, miners

    if name == "subcenter-arcface":
        module = losses.SubCenterArcFaceLoss(num_classes=n_classes, embedding_size=embedding_dim,
                                             margin=math.degrees(settings.margin),
                                             scale=settings.scale,
                                             sub_centers=settings.sub_centers)
        if settings.focal_gamma:
            module.cross_entropy = FocalCrossEntropy(settings.focal_gamma, reduction="none")
        return MetricLoss(name, module)
    if name == "contrastive":
        module = losses.ContrastiveLoss(pos_margin=1.0, neg_margin=0.0,
                                        distance=distances.CosineSimilarity())
    elif name == "triplet":
        module = losses.TripletMarginLoss(margin=settings.triplet_margin)
    else:
        module = losses.MultiSimilarityLoss()
    miner = {"none": None, "multi-similarity": miners.MultiSimilarityMiner(),
             "batch-hard": miners.BatchHardMiner()}[settings.miner]
    if settings.xbm:  # the miner then picks pairs among the batch and the memory
        return MetricLoss(name, losses.CrossBatchMemory(module, embedding_dim,
                                                        memory_size=settings.xbm, miner=miner))
    return MetricLoss(name, module, miner)
