"""NegGrad+: fine-tuning on the retain set while ascending on the forget set (Kurmanji et al., *Towards Unbounded
Machine Unlearning*, NeurIPS 2023, arXiv 2302.09880, its improved NegGrad baseline)."""

from __future__ import annotations


import torch
import torch.nn.functional as F
from jsonargparse.typing import ClosedUnitInterval, NonNegativeFloat, PositiveInt
from torch import nn

from datamodules.access import FORGET_AND_RETAIN, DataView
from methods.base import UnlearningMethod, register_method
from methods.blocks.loaders import ASCENT, DESCENT, RetainCyclingForget



def neggrad_plus_loss(retain_logits: torch.Tensor, retain_y: torch.Tensor, forget_logits: torch.Tensor, forget_y: torch.Tensor,
                      alpha: float) -> torch.Tensor:
    """α · CE(retain batch) − (1 − α) · CE(forget batch), each CE the batch mean."""
    return alpha * F.cross_entropy(retain_logits, retain_y) - (1 - alpha) * F.cross_entropy(forget_logits, forget_y)


def l2_to(model: nn.Module, reference: nn.Module) -> torch.Tensor:
    """½ · Σ ‖θ − θ₀‖² over the trainable parameters (the notebooks' `l2_penalty` without its weight)."""
    return sum(((p - p0).pow(2).sum() for p, p0 in zip(model.parameters(), reference.parameters()) if p.requires_grad),
               torch.zeros(())) / 2


@register_method
class NegGradPlus(UnlearningMethod):
    """Minimise α · CE(D_r batch) − (1 − α) · CE(D_f batch): each step one D_r batch and one D_f batch, an epoch one
    pass over D_r with D_f cycled (α = 1: FineTune's loss; α = 0: NegGrad's). Code: meghdadk/SCRUB @
    thirdparty/repdistiller/helper/loops.py `train_negrad` (as the resnet50_cifar100 notebook runs it);
    xcadet/deepunlearn @ munl/unlearning/neggradplus.py.

    Where the codes differ:
    - BatchNorm: `train_negrad` (and RUM's neggrad) train in `model.train()` (`batchnorm: train`, our default); the
      small-scale notebook's `run_neggrad_epoch` and Deep Unlearn's copy of it run in `model.eval()`, BatchNorm on its
      running statistics, never updated: `batchnorm: frozen` here (eval mode also turns dropout off, which
      `batchnorm` does not; the benchmark's models have no dropout).
    - Those two also add α · λ/2 · ‖θ − θ₀‖² (θ₀ the original's weights; their `l2_penalty` with the run's weight
      decay as λ: 0.1 in the small-scale notebook, 0 in Deep Unlearn's defaults) in place of optimizer weight
      decay: `l2_to_original` = λ (0: none).
    - D_f batches: the SCRUB notebooks build D_r and D_f loaders of different sizes (resnet50_cifar100 128 / 64):
      `forget_batch_size` (null: `budget.batch_size`, as Deep Unlearn).
    - Neither augments the batches (`augment=False`; `True` gives the dataset's training augmentation).

    Defaults (`configs/methods/NegGradPlus/deepunlearn.yaml`): Deep Unlearn's (neggradplus.py `ORIGINAL_*`): SGD lr
    0.01, momentum 0.9, weight decay 0, batch 256, 10 epochs, α = 0.95 (the small-scale notebook's α, lr and epochs),
    with BatchNorm in train mode (`train_negrad`'s). The paper's CIFAR-100 run (resnet50_cifar100.ipynb cell 23) uses
    α = 0.9999, 5 epochs.
    """

    data_access = FORGET_AND_RETAIN
    train_splits = ("retain", "forget")
    defaults = "configs/methods/NegGradPlus/deepunlearn.yaml"

    def __init__(self, *, alpha: ClosedUnitInterval = 0.95, l2_to_original: NonNegativeFloat = 0.0,
                 forget_batch_size: PositiveInt | None = None, augment: bool = False, **kwargs) -> None:
        """
        Args:
            alpha: α, the weight of the D_r cross-entropy; 1 − α that of the D_f cross-entropy, ascended.
            l2_to_original: λ of the α · λ/2 · ‖θ − θ₀‖² term to the original weights (the small-scale notebook's and
                Deep Unlearn's `l2_penalty`); 0: none.
            forget_batch_size: the D_f batch size; null: `budget.batch_size`.
            augment: give the batches the dataset's training augmentation (the authors' loaders have none).
        """
        super().__init__(**kwargs)
        self.alpha, self.l2_to_original, self.forget_batch_size, self.augment = alpha, l2_to_original, forget_batch_size, augment
        self.augmented_keys = (DESCENT, ASCENT) if augment else ()

    def train_loader(self, data: DataView) -> RetainCyclingForget:
        retain = data.loader("retain", self.batch_size())
        forget = data.loader("forget", self.forget_batch_size or self.batch_size())
        return RetainCyclingForget(retain, forget, lambda: self.current_epoch)

    def training_step(self, batch, batch_idx):
        (x_r, y_r), (x_f, y_f) = batch[DESCENT], batch[ASCENT]
        loss = neggrad_plus_loss(self.model(x_r), y_r, self.model(x_f), y_f, self.alpha)
        if self.l2_to_original > 0:
            loss = loss + self.alpha * self.l2_to_original * l2_to(self.model, self.original).to(loss.device)
        self.log_train("train/loss", loss)
        return loss
