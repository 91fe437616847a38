"""AdvImp: Adv plus a MAS weight-importance penalty (seed 000 eqs. 2 and 7, seed 001 Algorithm 2)."""

from __future__ import annotations

import torch
from jsonargparse.typing import NonNegativeFloat, PositiveInt

from datamodules.access import DataView
from methods.adv import Adv
from methods.base import register_method
from methods.blocks.adversarial import split_tensors
from methods.blocks.importance import importance_penalty, penalty_weights


@register_method
class AdvImp(Adv):
    """Minimise L_UL(D_f) + L_CE(D̄_f) + λ Σ_i Ω̄_i (θ_i − θ̃_i)² (seed 000 eq. 7), θ̃ the original weights.

    Ω̄ = 1 − Ω, Ω the MAS importance (eq. 2) of the original model on D_f normalised per parameter tensor
    to [0, 1], computed once in `prepare`. λ = 1 is the paper's (§Experimental details); the authors'
    code halves the sum, so its λ = 1 is `reg_lambda=0.5` here. Everything else as `Adv`
    (`configs/methods/AdvImp/seed000.yaml`).
    """

    defaults = "configs/methods/AdvImp/seed000.yaml"

    def __init__(self, *, reg_lambda: NonNegativeFloat = 1.0, importance_batch_size: PositiveInt = 32, **kwargs) -> None:
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
