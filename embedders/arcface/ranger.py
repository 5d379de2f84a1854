"""Ranger: RAdam (Liu et al., 2019) with LookAhead (Zhang et al., 2019).

RAdam rectifies Adam's variance in the first steps, so it needs no warm-up of its own; LookAhead
keeps a slow copy of the weights and every ``k`` steps moves it ``alpha`` of the way to the fast
weights, then restarts the fast weights from it. A subclass of ``torch.optim.RAdam``, so the
learning-rate schedule and SAM wrap it like any optimiser.

Weight decay is decoupled, as in AdamW, so ``weight_decay`` means the same for both optimisers.
LookAhead moves the weights about half as far per step at the same learning rate: on Shopee
titles Ranger wanted about 10x AdamW's rate (README, "Embedder training recipes").
"""
from __future__ import annotations

import torch


class Ranger(torch.optim.RAdam):
    def __init__(self, params, lr: float = 1e-3, k: int = 6, alpha: float = 0.5, **kwargs):
        if k < 1 or not 0 < alpha <= 1:
            raise ValueError("LookAhead needs k >= 1 and 0 < alpha <= 1")
        super().__init__(params, lr=lr, decoupled_weight_decay=True, **kwargs)
        self.lookahead_k, self.lookahead_alpha = k, alpha
        self.lookahead_steps = 0
        # the slow weights live beside, not in, self.state: RAdam initialises a parameter's
        # state only while it is empty
        self.slow_weights: dict[torch.Tensor, torch.Tensor] = {}

    @torch.no_grad()
    def step(self, closure=None):
        slow = self.slow_weights
        for group in self.param_groups:
            for p in group["params"]:
                if p not in slow:
                    slow[p] = p.detach().clone()
        loss = super().step(closure)
        self.lookahead_steps += 1
        if self.lookahead_steps % self.lookahead_k == 0:
            for p, weights in slow.items():
                weights.add_(p - weights, alpha=self.lookahead_alpha)
                p.copy_(weights)
        return loss
