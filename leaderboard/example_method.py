"""A complete leaderboard submission: gradient ascent on the forget set with a smaller learning rate.

    python cli.py submit --method leaderboard/example_method.py:GentleAscent --track digits-random10
"""

import torch.nn.functional as F

from datamodules.access import FORGET_ONLY
from methods.base import UnlearningMethod


class GentleAscent(UnlearningMethod):
    """Maximise the cross-entropy on D_f (lr 1e-4, at most 20 epochs) until D_f is misclassified."""

    data_access = FORGET_ONLY
    train_splits = ("forget",)

    def __init__(self, *, lr: float = 1e-4, max_epochs: int = 20) -> None:
        super().__init__(lr=lr, max_epochs=max_epochs, stop="misclassify")

    def training_step(self, batch, batch_idx):
        x, y = batch["forget"]
        return -F.cross_entropy(self.model(x), y)
