"""NegGrad: gradient ascent on the forget set (seed 000 eq. 3, after Golatkar et al. 2020)."""

from typing import Literal

from datamodules.access import FORGET_ONLY
from methods.base import StopTarget, UnlearningMethod, register_method
from methods.objectives import GOAL_SPLIT, Goal, unlearning_loss


@register_method
class NegGrad(UnlearningMethod):
    """Minimise L_UL^MS(D_f; θ) = −L_CE(g_θ(x_f), y_f) (seed 000 eq. 3) until D_f is misclassified.

    Defaults are seed 000's (§Experimental details): SGD, lr 1e-3, momentum 0.9, weight decay 1e-5,
    early stop when D_f accuracy is 0 %, at most 100 epochs (seed 001 Algorithm 3). The papers do not
    give a batch size; 64 is our choice. Algorithm 3 checks after each epoch (`stop_check="epoch"`);
    the authors' code checks after every step (`stop_check="step"`). With `goal="relabel"` it is
    `Correct` (eq. 4).
    """

    data_access = FORGET_ONLY
    train_splits = ("forget",)

    def __init__(
        self,
        *,
        goal: Goal = "misclassify",
        lr: float = 1e-3,
        momentum: float = 0.9,
        weight_decay: float = 1e-5,
        batch_size: int = 64,
        max_epochs: int = 100,
        stop: StopTarget | None = None,
        stop_check: Literal["epoch", "step"] = "epoch",
    ) -> None:
        """
        Args:
            goal: `misclassify` D_f (L_UL^MS, eq. 3) or `relabel` it to the request's new labels (L_UL^Cor, eq. 4).
            stop: the stop criterion; default: the goal's (`misclassify` or `relabel`).
        """
        super().__init__(lr=lr, momentum=momentum, weight_decay=weight_decay, batch_size=batch_size, max_epochs=max_epochs,
                         stop=goal if stop is None else stop, stop_check=stop_check)
        self.goal = goal
        self.train_splits = (GOAL_SPLIT[goal],)

    def training_step(self, batch, batch_idx):
        x, y = batch[self.train_splits[0]]
        loss = unlearning_loss(self.model(x), y, self.goal)
        self.log("train/loss", loss)
        return loss
