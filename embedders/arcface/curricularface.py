"""CurricularFace head (Huang et al., 2020): an ArcFace margin on the true class, plus a
curriculum on the negatives.

A negative class whose cosine beats the true class's margin cosine is *hard*; its logit becomes
``cos θ_j · (t + cos θ_j)``, where ``t`` follows the running mean of the true-class cosine. Early
in training t is near 0, so hard negatives weigh little (easy samples first); as the embedding
improves t grows and hard negatives weigh more. The true class's margin, its fall-back and the
float32 guard are the ArcFace head's.
"""
from __future__ import annotations

import torch

from .head import ArcMarginHead


class CurricularFaceHead(ArcMarginHead):
    def __init__(self, embedding_dim: int, n_classes: int, scale: float = 30.0,
                 margin: float = 0.5, momentum: float = 0.01):
        super().__init__(embedding_dim, n_classes, scale, margin)
        self.momentum = momentum
        self.register_buffer("t", torch.zeros(()))

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=embeddings.device.type, enabled=False):
            cos = self.cosine(embeddings).clamp(-1 + 1e-7, 1 - 1e-7)
            target = self.with_margin(cos.gather(1, labels[:, None]))
            if self.training:
                with torch.no_grad():
                    self.t.mul_(1 - self.momentum).add_(self.momentum * cos.gather(
                        1, labels[:, None]).mean())
            logits = torch.where(cos > target, cos * (self.t + cos), cos)
            return self.scale * logits.scatter(1, labels[:, None], target)
