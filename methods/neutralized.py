"""Neutralized: two-stage model retraining (Kim & Woo 2022, *Efficient Two-Stage Model Retraining for Machine
Unlearning*, CVPR Workshops), a baseline of seed 004 (§5 Baselines, Tables 1-4: "Neutralized", dedicated to
Oracle_std, with full D and 100 % of D_e)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from jsonargparse.typing import ClosedUnitInterval, NonNegativeInt, PositiveFloat
from lightning.pytorch.utilities import CombinedLoader
from torch.utils.data import Dataset

from datamodules.access import FORGET_AND_RETAIN, DataView
from methods.base import UnlearningMethod, register_method
from methods.blocks.objectives import distillation_loss

NeutralLabels = Literal["other", "any"]
PHASE_SPLIT = {"neutralize": "forget", "retrain": "retain"}
"""The split each stage trains on; its batches carry the split's name, so the scenario's training augmentation
applies to them as to every method training on its splits."""


def neutral_labels(y: torch.Tensor, num_classes: int, kind: NeutralLabels, generator: torch.Generator) -> torch.Tensor:
    """One random label per row: uniform over the K − 1 classes other than `y` (`other`) or over all K (`any`)."""
    if kind == "any":
        return torch.randint(0, num_classes, y.shape, generator=generator)
    return (y + torch.randint(1, num_classes, y.shape, generator=generator)) % num_classes


@register_method
class Neutralized(UnlearningMethod):
    """Stage 1, neutralisation: `neutralize_epochs` epochs of cross-entropy on D_e with one random label per image
    (drawn once), which quickly erases the original's response to D_e. Stage 2, retraining: `budget.max_epochs` epochs
    on all of D_r distilling the frozen original f_o (`distillation_loss`), starting from stage 1's weights. One
    optimizer for both stages.

    Readings (Kim & Woo's text beyond its abstract could not be read here; sources: its abstract, on its authors'
    publication page; seed 004 §4.3, App. D.3; seed 004's code, JinhwanNam/Few-shot-Unlearning `Unlearning/`):
    - Stage 1: the abstract's model "that loses information with contrastive labels in the requested dataset". We
      read a contrastive label as a random label other than the image's own (`neutral_labels="other"`); seed 004
      describes the stage as learning D_e "with random labels" (§4.3, "analogously to Kim & Woo"), and its code draws
      them over all K classes, the true one included (`neutral_labels="any"`). On D_e alone (§4.3 as printed).
    - Stage 2: the abstract's "we retrain the first stage output model with knowledge distillation (KD)"; the teacher
      is f_o, the only other model there is, on D_r. `distill_weight` 1 and T = 1 (the default) is seed 004's own
      relearning (soft cross-entropy to f_o's softmax, its `softXEnt`); `distill_weight=0` is plain fine-tuning on
      D_r with its labels (the reading "neutralise, then fine-tune").
    - Seed 004 uses the method with full D and 100 % of D_e: access to the forget set and the full retain set.

    Epochs: `budget.max_epochs` counts the retraining epochs; the neutralisation epochs come before them (the trainer
    runs `neutralize_epochs + budget.max_epochs`). Defaults (`configs/methods/Neutralized/seed004.yaml`; neither paper
    gives numbers): as seed 004's analogous Ours_std (its `default.yaml`, `main.py`): 10 neutralisation and 10
    retraining epochs, SGD lr 1e-3, momentum 0.9, weight decay 2e-5, batch 128.
    """

    data_access = FORGET_AND_RETAIN
    train_splits = ("forget", "retain")
    defaults = "configs/methods/Neutralized/seed004.yaml"

    def __init__(self, *, neutralize_epochs: NonNegativeInt = 10, neutral_labels: NeutralLabels = "other",
                 distill_weight: ClosedUnitInterval = 1.0, temperature: PositiveFloat = 1.0, seed: int | None = None, **kwargs) -> None:
        """
        Args:
            neutralize_epochs: epochs of stage 1 on D_e (0: no neutralisation, stage 2 alone).
            neutral_labels: stage 1's labels: a random class `other` than the image's (Kim & Woo's contrastive
                labels, our reading) or `any` class (seed 004's random labels, its code's draw).
            distill_weight: w of stage 2's loss: w · T² · KL to f_o's softened output + (1 − w) · CE on D_r's labels.
            temperature: T of the distillation.
            seed: the seed of stage 1's labels; null: the run's seed (`seed_everything`, read when `prepare` runs).
        """
        super().__init__(**kwargs)
        self.neutralize_epochs, self.neutral_labels, self.distill_weight = neutralize_epochs, neutral_labels, distill_weight
        self.temperature, self.seed = temperature, seed
        self.neutral_set: Dataset | None = None

    # ---- epochs and stages ----
    def num_epochs(self) -> int:
        return self.neutralize_epochs + self.budget.max_epochs

    @property
    def phase(self) -> str:
        """`neutralize` for the first `neutralize_epochs` epochs, then `retrain`."""
        return "neutralize" if self.trainer.current_epoch < self.neutralize_epochs else "retrain"

    def prepare(self, data: DataView) -> None:
        forget = data["forget"]
        generator = torch.Generator().manual_seed(torch.initial_seed() if self.seed is None else self.seed)
        self.neutral_set = forget.subset(torch.arange(len(forget)), neutral_labels(forget.targets, self.num_classes, self.neutral_labels, generator))

    def on_fit_start(self) -> None:
        super().on_fit_start()
        self.trainer.reload_dataloaders_every_n_epochs = 1  # (each stage has its own loader)

    def train_loader(self, data: DataView) -> CombinedLoader:
        split = PHASE_SPLIT[self.phase]
        dataset = self.neutral_set if self.phase == "neutralize" else data[split]
        return CombinedLoader({split: data.loader_over(dataset, self.batch_size())}, mode="max_size_cycle")

    def training_step(self, batch, batch_idx):
        x, y = batch[PHASE_SPLIT[self.phase]]
        logits = self.model(x)
        if self.phase == "neutralize":
            loss = F.cross_entropy(logits, y)
        else:
            with torch.no_grad():
                teacher = self.original.eval()(x) if self.distill_weight > 0 else None
            loss = distillation_loss(logits, teacher, y, self.distill_weight, self.temperature)
        self.log_train("train/loss", loss)
        return loss
