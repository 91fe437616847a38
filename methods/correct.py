"""Correct: fine-tune the forget set towards its new labels (seed 000 eq. 4; CORRECT in seed 001 Table 3)."""

from typing import Literal

import torch.nn.functional as F

from benchmark.errors import UnlearnBenchError
from datamodules.access import FORGET_ONLY, DataView
from methods.base import StopTarget, UnlearningMethod, register_method


@register_method
class Correct(UnlearningMethod):
    """Minimise L_UL^Cor(D_f; θ) = L_CE(g_θ(x_f), y*_f) (seed 000 eq. 4) until D_f is relabeled.

    Trains on the `relabel` split (the forget images with the request's new labels y*), so it needs a
    request with new labels (e.g. `RandomInstances(relabel=True)`). Defaults are seed 000's
    (§Experimental details): SGD, lr 1e-3, momentum 0.9, weight decay 1e-5, early stop when D_f
    accuracy on y* is 100 %, at most 100 epochs (seed 001 Algorithm 4); batch size 64 is our choice,
    as for NegGrad. Algorithm 4 checks after each epoch (`stop_check="epoch"`); the authors' code
    checks after every step (`stop_check="step"`).
    """

    data_access = FORGET_ONLY
    train_splits = ("relabel",)

    def __init__(
        self,
        *,
        lr: float = 1e-3,
        momentum: float = 0.9,
        weight_decay: float = 1e-5,
        batch_size: int = 64,
        max_epochs: int = 100,
        stop: StopTarget = "relabel",
        stop_check: Literal["epoch", "step"] = "epoch",
    ) -> None:
        super().__init__(lr=lr, momentum=momentum, weight_decay=weight_decay, batch_size=batch_size, max_epochs=max_epochs, stop=stop, stop_check=stop_check)

    def prepare(self, data: DataView) -> None:
        if "relabel" not in data:
            raise UnlearnBenchError(f"{type(self).__name__} relabels D_f and needs a request with new labels (e.g. RandomInstances relabel=True)")

    def training_step(self, batch, batch_idx):
        x, y_new = batch["relabel"]
        loss = F.cross_entropy(self.model(x), y_new)
        self.log("train/loss", loss)
        return loss
