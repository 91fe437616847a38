"""A complete leaderboard submission: gradient ascent on the forget set with a smaller learning rate.

    python cli.py submit --method leaderboard/example_method.py:GentleAscent --track digits-random10
"""

import torch.nn.functional as F

from datamodules.access import FORGET_ONLY
from methods.base import UnlearningMethod


class GentleAscent(UnlearningMethod):
    """Maximise `strength` × the cross-entropy on D_f (SGD lr 1e-4, at most 20 epochs) until D_f is misclassified."""

    data_access = FORGET_ONLY
    defaults = {"optimizer": {"init_args": {"lr": 1e-4}}, "budget": {"max_epochs": 20, "stop": "misclassify"}}

    def __init__(self, *, strength: float = 1.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.strength = strength

    def training_step(self, batch, batch_idx):
        x, y = batch["forget"]
        return -self.strength * F.cross_entropy(self.model(x), y)
