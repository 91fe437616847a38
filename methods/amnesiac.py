"""Amnesiac: relabel the forget set with wrong classes and fine-tune on it with the retain set (Graves, Nagisetty &
Ganesh, *Amnesiac Machine Learning*, AAAI 2021), as the SSD and Bad Teaching repositories run it as a baseline."""

from __future__ import annotations


import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import CombinedLoader
from torch.utils.data import ConcatDataset, Dataset

from datamodules.access import FORGET_AND_RETAIN, DataView
from methods.base import UnlearningMethod, register_method
from methods.blocks.adversarial import other_labels

UNLEARN = "unlearn"
"""The batch key of the joined set (not a scenario split: the scenario does not augment it; the method does when
`augment` is set)."""


@register_method
class Amnesiac(UnlearningMethod):
    """Every D_f image gets one random wrong label, drawn once (uniform over the K − 1 other classes, `other_labels`);
    D_f so relabelled is joined with all of D_r into one shuffled set, trained on with cross-entropy.

    Code: if-loops/selective-synaptic-dampening @ src/forget_random_strategies.py `amnesiac` (and
    forget_full_class_strategies.py), the same as vikram2000b/bad-teaching-unlearning's notebook baseline: labels
    redrawn with `random.choice` until not the true class, D_r appended, `DataLoader(shuffle=True)`, 3 epochs of
    `fit_one_unlearning_cycle` (Adam lr 1e-4, `model.train()`). Graves et al. call this relabel-and-retrain
    variant "unlearning" and keep "amnesiac unlearning" for undoing the recorded updates of the forgotten batches;
    the baselines' name is kept here.

    Readings: the labels come from a generator seeded by the run's seed (`torch.initial_seed()`, the same on every
    process) or `seed`; they are fixed for the whole run (the repositories draw them once, before training). A
    request with its own new labels (the view's `relabel` split) does not change them: Amnesiac draws its own. The
    repositories' unlearning transforms have no augmentation (`augment=False`; `True` gives the dataset's
    training augmentation, redrawn per batch).

    Defaults (`configs/methods/Amnesiac/ssd.yaml`): the SSD repository's: Adam lr 1e-4, 3 epochs, batch 128,
    BatchNorm in train mode. Data: D_f and all of D_r.
    """

    data_access = FORGET_AND_RETAIN
    train_splits = ("forget", "retain")
    defaults = "configs/methods/Amnesiac/ssd.yaml"

    def __init__(self, *, seed: int | None = None, augment: bool = False, **kwargs) -> None:
        """
        Args:
            seed: the seed of the wrong labels; null: the run's seed (`seed_everything`, read when `prepare` runs).
            augment: give the batches the dataset's training augmentation (the repositories' have none).
        """
        super().__init__(**kwargs)
        self.seed, self.augment = seed, augment
        self.relabelled: Dataset | None = None
        """D_f with its wrong labels."""
        self.unlearning_set: ConcatDataset | None = None
        self.augmented_keys = (UNLEARN,) if augment else ()

    def prepare(self, data: DataView) -> None:
        forget, retain = data["forget"], data["retain"]
        generator = torch.Generator().manual_seed(torch.initial_seed() if self.seed is None else self.seed)
        self.relabelled = forget.subset(torch.arange(len(forget)), other_labels(forget.targets, self.num_classes, generator))
        self.unlearning_set = ConcatDataset([self.relabelled, retain])
        self.unlearning_set.in_memory = all(getattr(s, "in_memory", False) for s in self.unlearning_set.datasets)  # (no loader workers)

    def train_loader(self, data: DataView) -> CombinedLoader:
        return CombinedLoader({UNLEARN: data.loader_over(self.unlearning_set, self.batch_size())}, mode="max_size_cycle")

    def training_step(self, batch, batch_idx):
        x, y = batch[UNLEARN]
        loss = F.cross_entropy(self.model(x), y)
        self.log_train("train/loss", loss)
        return loss
