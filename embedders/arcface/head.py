"""Additive angular margin (ArcFace) classification head."""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class ArcMarginHead(nn.Module):
    """Logits ``s·cos(θ_y + m)`` for the true class and ``s·cos θ_j`` for the others, with θ the
    angle between the L2-normalised embedding and the class centre.

    Past θ = π − m adding m would no longer lower the logit (cos is not monotonic there); the
    standard fall-back ``cos θ − m·sin m`` keeps it decreasing. ``easy_margin`` instead applies
    the margin only where cos θ > 0. The cosine is computed in float32 even under autocast: the
    margin's sin/cos arithmetic is not safe in half precision.
    """

    def __init__(self, embedding_dim: int, n_classes: int, scale: float = 30.0,
                 margin: float = 0.5, easy_margin: bool = False):
        super().__init__()
        if n_classes < 2:
            raise ValueError("ArcFace needs at least 2 classes")
        if not 0 <= margin < math.pi / 2:
            raise ValueError("margin must be in [0, π/2)")
        self.embedding_dim, self.n_classes = embedding_dim, n_classes
        self.scale, self.margin, self.easy_margin = scale, margin, easy_margin
        self.weight = nn.Parameter(torch.empty(n_classes, embedding_dim))
        nn.init.xavier_uniform_(self.weight)

    def cosine(self, embeddings: torch.Tensor) -> torch.Tensor:
        return F.linear(F.normalize(embeddings.float()), F.normalize(self.weight.float()))

    def with_margin(self, cos: torch.Tensor) -> torch.Tensor:
        """cos(θ + m), with the fall-back past θ = π − m (or the easy margin)."""
        sin = torch.sqrt(1.0 - cos * cos)
        shifted = cos * math.cos(self.margin) - sin * math.sin(self.margin)
        if self.easy_margin:
            return torch.where(cos > 0, shifted, cos)
        return torch.where(cos > math.cos(math.pi - self.margin), shifted,
                           cos - math.sin(math.pi - self.margin) * self.margin)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=embeddings.device.type, enabled=False):
            cos = self.cosine(embeddings).clamp(-1 + 1e-7, 1 - 1e-7)
            target = F.one_hot(labels, self.n_classes).bool()
            return self.scale * torch.where(target, self.with_margin(cos), cos)
