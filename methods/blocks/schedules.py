"""Learning-rate schedules of the methods that fine-tune with one (MSG, CT: the NeurIPS 2023 challenge solutions as
xcadet/deepunlearn re-implements them), as factors of the fractional epoch."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch

from methods.base import TrainsOnRetain, make_optimizer

Schedule = Literal["epoch", "step"]


def warmup_then_decay(epochs: int) -> Callable[[float], float]:
    """kgltop2's `LinearAnnealingLR(num_annealing_steps=A, num_total_steps=T)`, A = (E + 1) // 2, T = E + 1, as a factor
    of the fractional epoch t: with its step count c = t + 1, c / A up to c = A, then (T − c) / (T − A)
    (E = 5: 1/3, 2/3, 1, 2/3, 1/3 at epochs 0 … 4)."""
    peak, total = (epochs + 1) // 2, epochs + 1
    return lambda t: (t + 1) / peak if t + 1 <= peak else (total - t - 1) / (total - peak)


def cosine(epochs: int) -> Callable[[float], float]:
    """`CosineAnnealingLR(T_max=E)` (η_min 0) as a factor of the fractional epoch t: (1 + cos(π t / E)) / 2."""
    return lambda t: (1 + math.cos(math.pi * t / epochs)) / 2


def scheduled(method: TrainsOnRetain, factor: Callable[[float], float], schedule: Schedule) -> dict:
    """The method's optimizer (`make_optimizer` over all of its model's parameters) with a `LambdaLR` of `factor` at
    the fractional epoch t: stepped after each epoch at t = 0, 1, … (`epoch`: the authors' `scheduler.step()` once per
    epoch) or after every optimizer step at t = step / steps per epoch (`step`)."""
    optimizer = make_optimizer(method.optimizer_spec, method.model.parameters())
    if schedule == "epoch":
        lr = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: factor(epoch))
    else:
        per_epoch = max(1.0, method.trainer.estimated_stepping_batches / method.num_epochs())
        lr = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: factor(step / per_epoch))
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": lr, "interval": schedule}}
