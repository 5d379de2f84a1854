"""Focal cross-entropy (Lin et al., 2017) over margin logits.

``(1 − p_t)^γ · CE``: the examples the head already separates well (p_t near 1) weigh less, so
the rare hard ones (near-duplicate titles of different products) steer the gradient. γ = 0 is
plain cross-entropy. Same call signature as ``torch.nn.CrossEntropyLoss``, so it can also stand
in for the cross-entropy inside pytorch-metric-learning's margin losses.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class FocalCrossEntropy(nn.Module):
    def __init__(self, gamma: float = 2.0, reduction: str = "mean"):
        super().__init__()
        if gamma < 0:
            raise ValueError("focal gamma must be non-negative")
        if reduction not in ("mean", "sum", "none"):
            raise ValueError("reduction must be mean, sum or none")
        self.gamma, self.reduction = gamma, reduction

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ce = F.cross_entropy(logits.float(), target, reduction="none")
        loss = (1.0 - torch.exp(-ce)).pow(self.gamma) * ce if self.gamma else ce
        if self.reduction == "mean":
            return loss.mean()
        return loss.sum() if self.reduction == "sum" else loss
