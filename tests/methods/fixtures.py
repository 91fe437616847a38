"""What the method tests share: attaching a method to a scenario, fitting it briefly, a tiny float64 model, and the
check that a method reads only the splits its access allows."""

from __future__ import annotations

import re
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from torch import nn

from benchmark.core.errors import DataAccessError
from benchmark.experiment.runner import run
from benchmark.metrics.evaluator import Evaluation
from benchmark.models.pretraining import Pretrained, build_model
from benchmark.training import TRAINER_DEFAULTS, attach, attach_model, fit
from datamodules.access import DataView

SPLITS = ("forget", "retain", "test")


def attached(method, scenario, pretrained: Pretrained = Pretrained(), fresh_seed: int | None = None):
    """`method` attached to `scenario` (no attack evaluation): the pretrained original, or with `fresh_seed` an
    untrained `build_model` of that seed as the original (no pretraining)."""
    if fresh_seed is None:
        attach(method, scenario, pretrained, Evaluation(mia=False), progress=False)
    else:
        scenario.setup()
        attach_model(method, build_model(pretrained.arch, scenario.info, fresh_seed), scenario, pretrained, Evaluation(mia=False))
    return method


class LearningRates(pl.Callback):
    """The learning rate of every training batch, with its epoch."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, float]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.seen.append((trainer.current_epoch, trainer.optimizers[0].param_groups[0]["lr"]))


def fitted(method, scenario, batches: int, *callbacks: pl.Callback):
    """`method` attached to `scenario` and fitted on CPU, `batches` training batches an epoch, seed 0."""
    attached(method, scenario)
    pl.seed_everything(0, verbose=False)
    trainer = pl.Trainer(**TRAINER_DEFAULTS, accelerator="cpu", devices=1, enable_progress_bar=False, limit_train_batches=batches,
                         callbacks=list(callbacks))
    fit(method, scenario, trainer)
    return method


class Double(nn.Module):
    """The loaders give float32 pixels; the tiny model computes in float64."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.double()


def tiny() -> nn.Sequential:
    """A 2-layer MLP on 2 × 2 images, 3 classes, 51 parameters, float64."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), Double(), nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).double()


def recorded_reads(monkeypatch) -> list[str]:
    """The names of the splits read through any `DataView` from now on, in order (the test's monkeypatch undoes it)."""
    read: list[str] = []
    getitem = DataView.__getitem__
    monkeypatch.setattr(DataView, "__getitem__", lambda self, name: read.append(name) or getitem(self, name))
    return read


def assert_reads_only(method, names: tuple[str, ...]) -> None:
    """The method's view holds exactly the splits `names`, and reading any other split is refused in one line that
    names the method and its declared access."""
    assert method.data.names == tuple(names)
    for other in (s for s in SPLITS if s not in names):
        message = f"{type(method).__name__} declared access to {method.data_access} and cannot read the '{other}' split"
        with pytest.raises(DataAccessError, match=re.escape(message)):
            method.data[other]


def assert_a_snooping_run_writes_nothing(method, scenario, pretrained: Pretrained, split: str, results_dir) -> None:
    """A run of `method` (a subclass that reads `split`, outside its access, in `prepare` or a hook) fails with the
    one-line access error and leaves no result record."""
    with pytest.raises(DataAccessError, match=re.escape(f"cannot read the '{split}' split")):
        run(method, scenario, pretrained, results_dir=str(results_dir), progress=False)
    assert not list(Path(results_dir).rglob("*.json"))
