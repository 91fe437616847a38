"""FineTune: keep training the original on the retain set only (seed 002 §IV-B baseline, "catastrophic forgetting")."""

from typing import Literal

import torch.nn.functional as F

from datamodules.access import RETAIN_FULL
from methods.base import StopTarget, UnlearningMethod, register_method


@register_method
class FineTune(UnlearningMethod):
    """Minimise L_CE on D_r starting from the original weights (seed 002 Table I, "FineTune [9]").

    Seed 002 does not state the baseline's hyperparameters; ours: SGD lr 0.01, momentum 0.9,
    weight decay 5e-4, 5 epochs, batch 64, no early stop.
    """

    data_access = RETAIN_FULL
    train_splits = ("retain",)

    def __init__(
        self,
        lr: float = 0.01,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        batch_size: int = 64,
        max_epochs: int = 5,
        stop: StopTarget = "none",
        stop_check: Literal["epoch", "step"] = "epoch",
    ) -> None:
        super().__init__(lr=lr, momentum=momentum, weight_decay=weight_decay, batch_size=batch_size, max_epochs=max_epochs, stop=stop, stop_check=stop_check)

    def training_step(self, batch, batch_idx):
        x, y = batch["retain"]
        loss = F.cross_entropy(self.model(x), y)
        self.log("train/loss", loss)
        return loss
