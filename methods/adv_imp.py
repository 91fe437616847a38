"""AdvImp: Adv plus a MAS weight-importance penalty (seed 000 eqs. 2 and 7, seed 001 Algorithm 2)."""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from datamodules.access import DataView
from methods.adv import Adv
from methods.adversarial import split_tensors
from methods.base import register_method


def mas_importance(model: nn.Module, x: torch.Tensor, batch_size: int = 32) -> dict[str, torch.Tensor]:
    """Ω_i = (1/N) Σ_n |∂‖g_θ(x_n)‖²₂ / ∂θ_i| over the rows of x (seed 000 eq. 2; MAS, Aljundi et al. 2018).

    One tensor per named parameter. Per-sample gradients (torch.func, `batch_size` samples per forward
    and backward), model in eval mode (BatchNorm with running statistics). The authors' code instead
    takes |∂ mean_n ‖g_θ(x_n)‖₂ / ∂θ| per batch (unsquared norm, absolute value after the batch mean,
    model in train mode); we follow eq. 2.
    """
    params = {name: p.detach() for name, p in model.named_parameters()}
    buffers = dict(model.named_buffers())

    def squared_norm(p: dict[str, torch.Tensor], xi: torch.Tensor) -> torch.Tensor:
        return functional_call(model, (p, buffers), (xi.unsqueeze(0),)).pow(2).sum()

    per_sample = vmap(grad(squared_norm), in_dims=(None, 0))
    total = {name: torch.zeros_like(p) for name, p in params.items()}
    device, was_training = next(iter(params.values())).device, model.training
    model.eval()
    try:
        for chunk in x.split(batch_size):
            for name, g in per_sample(params, chunk.to(device)).items():
                total[name] += g.abs().sum(0)
    finally:
        model.train(was_training)
    return {name: t / len(x) for name, t in total.items()}


def normalize_per_tensor(importance: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """(Ω^l − min Ω^l) / (max Ω^l − min Ω^l) per parameter tensor l (seed 001 Algorithm 2, line 5).

    A "layer" is read as one parameter tensor (a layer's weight and bias are scaled separately, as in the
    authors' code). A constant tensor (e.g. all zero: parameters without effect on D_f's outputs), where
    the formula divides by zero, maps to 0: no importance, so fully held in place (Ω̄ = 1).
    """
    def scale(t: torch.Tensor) -> torch.Tensor:
        low, high = t.min(), t.max()
        return (t - low) / (high - low) if high > low else torch.zeros_like(t)

    return {name: scale(t) for name, t in importance.items()}


def penalty_weights(model: nn.Module, x: torch.Tensor, batch_size: int = 32) -> dict[str, torch.Tensor]:
    """Ω̄ = 1 − Ω, Ω the per-tensor normalised MAS importance of `model` on x (seed 001 Algorithm 2)."""
    return {name: 1 - omega for name, omega in normalize_per_tensor(mas_importance(model, x, batch_size)).items()}


def importance_penalty(model: nn.Module, reference: nn.Module, weights: dict[str, torch.Tensor]) -> torch.Tensor:
    """R_Imp = Σ_i Ω̄_i (θ_i − θ̃_i)² over every parameter (seed 000 eq. 7), θ̃ the reference's weights."""
    anchors = dict(reference.named_parameters())
    return sum((weights[name] * (p - anchors[name]).pow(2)).sum() for name, p in model.named_parameters())


@register_method
class AdvImp(Adv):
    """Minimise L_UL(D_f) + L_CE(D̄_f) + λ Σ_i Ω̄_i (θ_i − θ̃_i)² (seed 000 eq. 7), θ̃ the original weights.

    Ω̄ = 1 − Ω, Ω the MAS importance (eq. 2) of the original model on D_f normalised per parameter tensor
    to [0, 1], computed once in `prepare`. λ = 1 is the paper's (§Experimental details); the authors'
    code halves the sum, so its λ = 1 is `reg_lambda=0.5` here. Everything else as `Adv`.
    """

    def __init__(self, *, reg_lambda: float = 1.0, importance_batch_size: int = 32, **kwargs) -> None:
        """
        Args:
            reg_lambda: λ, the strength of the importance penalty.
            importance_batch_size: samples per per-sample-gradient pass of the MAS importance.
            **kwargs: the arguments of `Adv`.
        """
        super().__init__(**kwargs)
        self.reg_lambda, self.importance_batch_size = reg_lambda, importance_batch_size
        self.penalty_weights: dict[str, torch.Tensor] = {}

    def prepare(self, data: DataView) -> None:
        """D̄_f (as `Adv`) and Ω̄ from the original model on D_f."""
        super().prepare(data)
        x, _ = split_tensors(data, "forget")
        self.penalty_weights = penalty_weights(self.original, x, self.importance_batch_size)

    def objective(self, batch: dict) -> torch.Tensor:
        """Eq. 7 on one step's batches."""
        return super().objective(batch) + self.reg_lambda * importance_penalty(self.model, self.original, self.penalty_weights)
