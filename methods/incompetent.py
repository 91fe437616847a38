"""Incompetent: unlearning by bad teaching (Chundawat et al. 2022a, *Can Bad Teaching Induce Forgetting? Unlearning in
Deep Networks using an Incompetent Teacher*, arXiv 2205.08096), a baseline of seed 004 (§5 Baselines, Tables 1-4:
"Incompetent", dedicated to Oracle_unt)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from jsonargparse.typing import PositiveFloat, PositiveInt, restricted_number_type
from lightning.pytorch.utilities import CombinedLoader
from torch.utils.data import ConcatDataset, Dataset

from benchmark.models.pretraining import build_model
from datamodules.access import FORGET_AND_RETAIN, DataAccess, DataView
from methods.base import UnlearningMethod, register_method

RetainFraction = restricted_number_type("RetainFraction", float, [(">", 0), ("<=", 1)])
FORGET, RETAIN = 1, 0
"""The unlearning label of a row of the unlearning set (the authors' `UnLearningData`: 1 forget, 0 retain)."""


def bad_teaching_loss(student: torch.Tensor, competent: torch.Tensor, incompetent: torch.Tensor, forget: torch.Tensor,
                      temperature: float = 1.0, reduction: Literal["mean", "batchmean"] = "mean") -> torch.Tensor:
    """KL(t ‖ softmax(student / T)) with t = softmax(incompetent / T) on the rows where `forget` is true and
    softmax(competent / T) on the others (the authors' `UnlearnerLoss`; no T² factor). `mean` averages over rows ×
    classes (the authors' `F.kl_div` default, which PyTorch says will become `batchmean`: written out here),
    `batchmean` over rows (the KL's definition)."""
    target = torch.where(forget[:, None], F.softmax(incompetent / temperature, dim=-1), F.softmax(competent / temperature, dim=-1))
    total = F.kl_div(F.log_softmax(student / temperature, dim=-1), target, reduction="sum")
    return total / (target.numel() if reduction == "mean" else len(target))


def labelled(split: Dataset, label: int) -> Dataset:
    """Every row of `split` with the target `label` (the unlearning label in place of the class)."""
    return split.subset(torch.arange(len(split)), torch.full((len(split),), label, dtype=torch.long))


@register_method
class Incompetent(UnlearningMethod):
    """The student f (from the original f_o) distils a competent teacher (f_o, frozen) on retain rows and an
    incompetent teacher (a randomly initialised model of f_o's architecture, frozen, in evaluation mode) on forget
    rows: the loss is `bad_teaching_loss` (as the authors' `unlearn.py` `UnlearnerLoss` computes it).

    As the authors' code (vikram2000b/bad-teaching-unlearning `unlearn.py`, `dataset.py`, CIFARSuper20_Rocket_Unlearn
    notebook): D_f and a random `retain_fraction` of D_r are joined into one set, each row labelled forget (1) or
    retain (0), shuffled, so every batch mixes both and each row picks its teacher by its label; both teachers see
    the student's batch in evaluation mode; nothing is augmented (the notebook builds its validation set with the
    `transform_train` it unlearns with, which suggests that transform holds no random augmentation).

    The retain subset: with `retain_samples` unset, the method is given D_r and draws ⌊fraction · |D_r|⌋ of it
    (the notebook's `random.sample(retain_train, int(0.3 * len(retain_train)))`) with the draw a `subset` view makes
    (seeded by the request, so the same images for every run seed). The view's subsets have an absolute size, which
    needs |D_r|: hence full access here. `retain_samples=n` instead declares access to the forget set and a seeded
    subset of n retain images and trains on exactly those (n = ⌊fraction · |D_r|⌋ gives the same images).

    Defaults (`configs/methods/Incompetent/seed004.yaml`; seed 004 gives none): the authors' notebook, T = 1, Adam
    lr 1e-4, 1 epoch, batch 256, 30 % of D_r, `mean` reduction (with Adam the reduction's 1/K scale hardly matters).
    """

    data_access = FORGET_AND_RETAIN
    train_splits = ("forget", "retain")
    defaults = "configs/methods/Incompetent/seed004.yaml"

    def __init__(self, *, temperature: PositiveFloat = 1.0, retain_fraction: RetainFraction = 0.3, retain_samples: PositiveInt | None = None,
                 reduction: Literal["mean", "batchmean"] = "mean", teacher_seed: int | None = None, **kwargs) -> None:
        """
        Args:
            temperature: T of the softmaxes of the student and both teachers (the authors' KL_temperature, 1).
            retain_fraction: the share of D_r joined to D_f (the authors' 0.3), drawn seeded by the request.
            retain_samples: instead, a seeded subset of this many D_r images, the only retain images the method may
                read (access: forget set + a retain subset); null: `retain_fraction` of D_r.
            reduction: the KL's `mean` over rows × classes (the authors' code) or `batchmean` over rows.
            teacher_seed: the seed of the incompetent teacher's initialisation; null: drawn from the run's seed.
        """
        super().__init__(**kwargs)
        self.temperature, self.retain_fraction, self.retain_samples = temperature, retain_fraction, retain_samples
        self.reduction, self.teacher_seed = reduction, teacher_seed
        if retain_samples is not None:
            self.data_access, self.retain_subset_size = DataAccess(forget=True, retain="subset"), retain_samples
        self.unlearning_set: ConcatDataset | None = None
        self.incompetent: torch.nn.Module | None = None

    def retain_subset(self, data: DataView) -> Dataset:
        """The retain rows joined to D_f: the view's subset (`retain_samples`), or ⌊fraction · |D_r|⌋ of D_r drawn as
        the view draws its subsets."""
        if self.retain_samples is not None:
            return data["retain"]
        return data.retain_subset(max(1, int(self.retain_fraction * len(data["retain"]))))

    def prepare(self, data: DataView) -> None:
        forget, retain = data["forget"], self.retain_subset(data)
        self.unlearning_set = ConcatDataset([labelled(forget, FORGET), labelled(retain, RETAIN)])
        self.unlearning_set.in_memory = all(getattr(s, "in_memory", False) for s in self.unlearning_set.datasets)  # (no loader workers)
        run_seed = torch.Generator().manual_seed(torch.initial_seed())  # (a draw from it, not the run's seed itself: the original's init)
        seed = self.teacher_seed if self.teacher_seed is not None else int(torch.randint(2**31, (1,), generator=run_seed))
        self.incompetent = build_model(self.pretrained.arch, data.info, seed).to(self.device).eval().requires_grad_(False)
        self.cost["cost/retain_samples"] = float(len(retain))

    def train_loader(self, data: DataView) -> CombinedLoader:
        return CombinedLoader({"unlearn": data.loader_over(self.unlearning_set, self.batch_size())}, mode="max_size_cycle")

    def training_step(self, batch, batch_idx):
        x, label = batch["unlearn"]
        with torch.no_grad():
            competent, incompetent = self.original.eval()(x), self.incompetent.eval()(x)
        loss = bad_teaching_loss(self.model(x), competent, incompetent, label == FORGET, self.temperature, self.reduction)
        self.log_train("train/loss", loss)
        return loss
