"""RL: random labelling, the baseline of SalUn's Table 1 that SalUn builds on (Fan et al., ICLR 2024, *SalUn: Empowering
Machine Unlearning via Gradient-based Weight Saliency*), as OPTML-Group/Unlearn-Saliency @ Classification/unlearn/RL.py
(HEAD a6e89fd) runs it."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch.utils.data import ConcatDataset

from datamodules.access import FORGET_AND_RETAIN, DataView
from methods.base import UnlearningMethod, register_method
from methods.blocks.loaders import Passes

Mode = Literal["sequential", "mixed"]
MIXED = "unlearn"
"""The batch key of `mode="mixed"`'s joined set (not a scenario split: RL lists it in `augmented_keys`)."""


@register_method
class RL(UnlearningMethod):
    """Each epoch, cross-entropy on D_f with random labels, then on D_r with its own labels.

    `mode="sequential"` (the authors' CIFAR-10 / SVHN branch): a full pass over the forget loader, each batch's labels
    redrawn uniformly in [0, K) (the true class can be drawn: `torch.randint(0, num_classes)`), then a full pass over
    the retain loader, one optimizer step per batch in both; the two losses are never summed (the authors,
    Unlearn-Saliency#21: the sequential updates are intended, the retain weight is 1). `mode="mixed"` (the CIFAR-100 /
    TinyImageNet branch): D_f's labels drawn once per epoch, D_f and D_r joined and shuffled into one set.

    Readings: the random labels come from a generator seeded by the run's seed (`torch.initial_seed()`), the same on
    every process, so a run is reproducible (the authors draw from the global RNG); `mixed`'s joined set gets the
    dataset's training augmentation as the scenario's splits do (the authors' loaders keep RandomCrop + Flip).
    Defaults (`configs/methods/RL/optml.yaml`): the OPTML protocol (Unlearn-Saliency @ Classification/arg_parser.py):
    SGD momentum 0.9, weight decay 5e-4, batch 256, 10 epochs, a constant lr (MultiStepLR at 91/136 is never
    reached); the lr was searched in [1e-4, 1e-1] and never released (Unlearn-WorstCase#1), 0.01 (`unlearn_lr`'s
    default) is ours. Data: D_f and all of D_r.
    """

    data_access = FORGET_AND_RETAIN
    augmented_keys = (MIXED,)
    train_splits = ("forget", "retain")
    defaults = "configs/methods/RL/optml.yaml"

    def __init__(self, *, mode: Mode = "sequential", **kwargs) -> None:
        """
        Args:
            mode: `sequential`: per epoch a pass over D_f with labels redrawn per batch, then a pass over D_r (the
                authors' CIFAR-10 / SVHN code); `mixed`: D_f with labels drawn once per epoch joined with D_r into one
                shuffled set (their CIFAR-100 / TinyImageNet code).
        """
        super().__init__(**kwargs)
        self.mode = mode
        self.generator: torch.Generator | None = None
        self.epoch_labels: dict[int, torch.Tensor] = {}
        """`mixed`: D_f's random labels of each epoch."""

    def prepare(self, data: DataView) -> None:
        self.generator = torch.Generator().manual_seed(torch.initial_seed())
        self.epoch_labels = {}

    def random_labels(self, count: int) -> torch.Tensor:
        """`count` labels drawn uniformly in [0, K) from the run's generator."""
        return torch.randint(self.num_classes, (count,), generator=self.generator)

    def mixed_set(self, data: DataView, epoch: int) -> ConcatDataset:
        """`mixed`'s set for `epoch`: D_f with that epoch's random labels (drawn on first use), then D_r."""
        forget, retain = data["forget"], data["retain"]
        if epoch not in self.epoch_labels:
            self.epoch_labels[epoch] = self.random_labels(len(forget))
        joined = ConcatDataset([forget.subset(torch.arange(len(forget)), self.epoch_labels[epoch]), retain])
        joined.in_memory = all(getattr(part, "in_memory", False) for part in joined.datasets)  # (no loader workers)
        return joined

    def train_loader(self, data: DataView) -> Passes:
        batch = self.batch_size()
        if self.mode == "mixed":
            length = len(data.loader_over(self.mixed_set(data, 0), batch))
            return Passes(lambda epoch: [(MIXED, data.loader_over(self.mixed_set(data, epoch), batch))], length, lambda: self.current_epoch)
        loaders = [(name, data.loader(name, batch)) for name in ("forget", "retain")]
        return Passes(lambda epoch: loaders, sum(len(loader) for _, loader in loaders), lambda: self.current_epoch)

    def training_step(self, batch, batch_idx):
        ((key, (x, y)),) = batch.items()
        if key == "forget":
            y = self.random_labels(len(y)).to(y.device)
        loss = F.cross_entropy(self.model(x), y)
        self.log_train("train/loss", loss)
        return loss

