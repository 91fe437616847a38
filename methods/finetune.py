"""FineTune: keep training the original on the retain set only (seed 002 §IV-B baseline, "catastrophic forgetting")."""

from datamodules.access import RETAIN_FULL
from methods.base import TrainsOnRetain, register_method


@register_method
class FineTune(TrainsOnRetain):
    """Minimise L_CE on D_r starting from the original weights (seed 002 Table I, "FineTune [9]").

    Seed 002 does not state the baseline's hyperparameters; ours (`configs/methods/FineTune/seed002.yaml`):
    SGD lr 0.01, momentum 0.9, weight decay 5e-4, 5 epochs, batch 64, no early stop.
    """

    data_access = RETAIN_FULL
    defaults = "configs/methods/FineTune/seed002.yaml"
