"""L1Sparse: fine-tuning on D_r with a decaying ℓ1 penalty on the weights, "ℓ1-sparse MU" (Jia et al., NeurIPS 2023,
*Model Sparsity Can Simplify Machine Unlearning*, its sparsity-aware unlearning), as OPTML-Group/Unlearn-Sparse @
unlearn/FT.py (`FT_l1`, run as `FT_prune`) computes it; Unlearn-Saliency @ Classification/unlearn/FT.py holds the same code."""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from jsonargparse.typing import NonNegativeFloat, NonNegativeInt

from benchmark.core.errors import UnlearnBenchError
from datamodules.access import RETAIN_FULL
from methods.base import TrainsOnRetain, register_method


def l1_norm(parameters: Iterable[torch.Tensor]) -> torch.Tensor:
    """‖θ‖₁ = Σ |θ_i| over every entry of `parameters` (the authors' `l1_regularization`: the 1-norm of all of them)."""
    return sum(p.abs().sum() for p in parameters)


def decayed_alpha(alpha: float, epoch: int, epochs: int, no_l1_epochs: int = 0) -> float:
    """α_t = α · (1 − t / (E − n)) at epoch t (from 0) of E while t < E − n, then 0 for the last n epochs."""
    span = epochs - no_l1_epochs
    return alpha * (1 - epoch / span) if epoch < span else 0.0


@register_method
class L1Sparse(TrainsOnRetain):
    """Cross-entropy on D_r plus α_t ‖θ‖₁ over all parameters, α_t decaying linearly per epoch.

    Minimise L_CE(D_r) + α_t ‖θ‖₁, ‖θ‖₁ over all parameters (weights, biases, normalisation layers, head), α_t =
    α · (1 − t / (E − n)) decaying linearly per epoch t = 0 … E − 1 (`decayed_alpha`), with E the budget's epochs and
    n = `no_l1_epochs` final epochs without the penalty.

    Readings: the authors' code reads `args.no_l1_epochs`, which no argument parser of Unlearn-Sparse, Unlearn-Saliency
    or Scissorhands defines (their `FT_prune` fails as shipped): n = 0 is ours, so α_t reaches α/E in the last epoch,
    never 0. With n > 0 the last n epochs are plain fine-tuning (the code's `else: 0`); n ≥ E is refused (Unlearn-Sparse
    keeps α constant at n = E, Unlearn-Saliency sets it to 0: neither decays). The penalty is the plain sum over every
    entry (not averaged), added to each batch's mean cross-entropy; α_t changes once per epoch, not per step.

    Defaults (`configs/methods/L1Sparse/optml.yaml`): α = 1e-4, lr 0.01, 10 epochs (Scissorhands @
    Classification/sh/main_0.1_cifar10.sh, CIFAR-10 10 % random; the README leaves α open), and the OPTML protocol:
    SGD momentum 0.9, weight decay 5e-4, batch 256, constant lr. Data: all of D_r.
    """

    data_access = RETAIN_FULL
    defaults = "configs/methods/L1Sparse/optml.yaml"

    def __init__(self, *, alpha: NonNegativeFloat = 1e-4, no_l1_epochs: NonNegativeInt = 0, **kwargs) -> None:
        """
        Args:
            alpha: α, the ℓ1 coefficient at the first epoch (Scissorhands' 1e-4 for CIFAR-10 and SVHN; 2e-4 for
                CIFAR-100 at 50 %).
            no_l1_epochs: the last epochs trained without the penalty (n; the authors' code never sets it: 0).
        """
        super().__init__(**kwargs)
        if no_l1_epochs >= self.budget.max_epochs:
            raise UnlearnBenchError(f"L1Sparse.no_l1_epochs = {no_l1_epochs} leaves no epoch of the {self.budget.max_epochs} with the ℓ1 "
                                    "penalty; use fewer (or FineTune)")
        self.alpha, self.no_l1_epochs = alpha, no_l1_epochs

    def alpha_at(self, epoch: int) -> float:
        """α_t of epoch `epoch`."""
        return decayed_alpha(self.alpha, epoch, self.num_epochs(), self.no_l1_epochs)

    def training_step(self, batch, batch_idx):
        x, y = batch["retain"]
        loss = F.cross_entropy(self.model(x), y)
        alpha = self.alpha_at(self.current_epoch)
        if alpha:
            loss = loss + alpha * l1_norm(self.model.parameters())
        self.log_train("train/loss", loss)
        return loss
