"""Sharpness-aware minimisation (Foret et al., 2021) around any base optimiser.

Each step takes two gradients: one at the weights w, used to move to the worst nearby point
w + ρ·g/‖g‖, and one there, which the base optimiser applies back at w.
"""
from __future__ import annotations

import torch
from torch.optim import Optimizer


class SAM(Optimizer):
    def __init__(self, params, base_optimizer: type[Optimizer], rho: float = 0.05, **kwargs):
        if rho <= 0:
            raise ValueError("rho must be positive")
        super().__init__(params, dict(rho=rho, **kwargs))
        self.base_optimizer = base_optimizer(self.param_groups, **kwargs)
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)

    @torch.no_grad()
    def first_step(self) -> None:
        """Climb to w + ρ·g/‖g‖ and remember the offset."""
        norm = self._grad_norm()
        for group in self.param_groups:
            scale = group["rho"] / (norm + 1e-12)
            for p in group["params"]:
                if p.grad is None:
                    continue
                offset = p.grad * scale.to(p)
                p.add_(offset)
                self.state[p]["sam_offset"] = offset

    @torch.no_grad()
    def second_step(self) -> None:
        """Return to w and apply the base update with the gradient taken at the perturbed point."""
        for group in self.param_groups:
            for p in group["params"]:
                if "sam_offset" in self.state[p]:
                    p.sub_(self.state[p].pop("sam_offset"))
        self.base_optimizer.step()

    def step(self, closure=None):
        if closure is None:
            raise ValueError("SAM needs a closure that recomputes the loss and its gradients")
        self.first_step()
        self.zero_grad()
        with torch.enable_grad():
            closure()
        self.second_step()

    def _grad_norm(self) -> torch.Tensor:
        grads = [p.grad.norm(2) for g in self.param_groups for p in g["params"] if p.grad is not None]
        return torch.norm(torch.stack(grads), 2) if grads else torch.tensor(0.0)
