"""Fitting a method: the original model (pretrained and cached on a miss), a method's attachment to it and to its
data view of a scenario, the fit, and the test of the fitted weights (`run_test`); the check that the launcher started
no more processes than the trainer's world (`check_world`). The pipeline (`benchmark.experiment.runner`), `cli.py` and
U-LiRA's shadow runs use it."""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.callbacks import ModelCheckpoint

from benchmark.core.errors import UnlearnBenchError
from benchmark.core.paths import exclusive
from benchmark.metrics.evaluator import Evaluation, Evaluator
from benchmark.metrics.mia import attack_classes, check_split_sizes
from benchmark.models.pretraining import (
    RECIPES,
    Pretrained,
    build_model,
    cache_path,
    init_source,
    load_checkpoint,
)
from datamodules.scenarios import NothingForgotten, UnlearningScenario
from methods.retrain import Retrain

TRAINER_DEFAULTS = {
    "logger": False,
    "enable_checkpointing": False,
    "enable_model_summary": False,
    "use_distributed_sampler": False,  # scenarios shard their own data: every sample evaluated exactly once
    "num_sanity_val_steps": 0,
}


def obtain_original(scenario: UnlearningScenario, pretrained: Pretrained, progress: bool = True) -> torch.nn.Module:
    """The original model: `pretrained.checkpoint` if given, else the cached pretraining (trained on a miss)."""
    scenario.setup()
    model = build_model(pretrained.arch, scenario.info, pretrained.seed)
    if pretrained.checkpoint:
        load_checkpoint(pretrained.checkpoint, model)
        return model
    path = cache_path(pretrained, scenario.info.name, scenario.request.original_training_set_hash)
    if not path.exists():
        with exclusive(path.with_name(path.name + ".lock")):  # (the processes of one launch pretrain it once)
            if not path.exists():
                full = NothingForgotten(scenario.dataset_name, scenario.request.corruption, scenario.data, data_root=scenario.data_root,
                                        **scenario.loading())
                full.setup()
                if full.request.training_set_hash != scenario.request.original_training_set_hash:
                    raise UnlearnBenchError(f"the original's training set of {scenario.info.name} hashes to {full.request.training_set_hash[:16]}…, "
                                            f"its request says {scenario.request.original_training_set_hash[:16]}…")
                _pretrain(scenario, pretrained, full, model, path, progress)
    load_checkpoint(path, model)
    return model


def _pretrain(scenario: UnlearningScenario, pretrained: Pretrained, full: NothingForgotten, model: torch.nn.Module, path: Path, progress: bool) -> None:
    """Train the original `model` on the scenario's whole training set (`full`) by its recipe and cache it at `path`."""
    recipe = pretrained.recipe_name(scenario.info.name)
    if RECIPES.get(recipe).init is not None:  # its pretrained body first
        dataset, source = init_source(pretrained, RECIPES.get(recipe))
        obtain_original(NothingForgotten(dataset, **scenario.loading()), source, progress)
    print(f"pretraining the original {pretrained.arch} on {scenario.info.name} (recipe {recipe}, seed {pretrained.seed}) → {path}", file=sys.stderr)
    partial = path.with_suffix(".resume")  # (an interrupted pretraining goes on from its last finished epoch)
    keeper, last = epoch_checkpoints(partial)
    if last is not None:
        print(f"resuming it from {last}", file=sys.stderr)
    trainer_kwargs = {**TRAINER_DEFAULTS, "accelerator": "auto", "devices": 1, "enable_progress_bar": progress, "enable_checkpointing": True,
                      "callbacks": keeper, "default_root_dir": str(path.parent)}  # (on SLURM, Lightning resumes a fit from any hpc_ckpt_* there)
    with torch.random.fork_rng():
        pl.seed_everything(pretrained.seed, verbose=False)
        trainer = pl.Trainer(max_epochs=1, precision=RECIPES.get(recipe).trainer_precision, **trainer_kwargs)
        pretraining = Retrain()
        attach_model(pretraining, model, full, pretrained, Evaluation(mia=False))  # trained, never evaluated here
        fit(pretraining, full, trainer, ckpt_path=last)
    shutil.rmtree(partial, ignore_errors=True)


def epoch_checkpoints(folder: str | Path | None) -> tuple[list[pl.Callback], str | None]:
    """What makes a fit resumable in `folder`: a `ModelCheckpoint` that keeps the last finished epoch there (each
    epoch, atomically) and the checkpoint to resume from when one is there (else None); no folder, neither."""
    if folder is None:
        return [], None
    last = Path(folder) / "last.ckpt"
    return [ModelCheckpoint(dirpath=folder, filename="last", enable_version_counter=False)], str(last) if last.exists() else None


def check_attacks(scenario: UnlearningScenario, evaluation: Evaluation | None) -> None:
    """A one-line error before any work when a split of `scenario` is too small for an attack `evaluation` asks for, or
    when the split relearning is measured on is not one of its splits."""
    evaluation = evaluation or Evaluation()
    if evaluation.relearn and evaluation.relearn_split != "forget":
        scenario.setup()
        if evaluation.relearn_split not in scenario.eval_split_names:
            raise UnlearnBenchError(f"evaluation.relearn_split = {evaluation.relearn_split!r} is not a split of this scenario "
                                    f"({', '.join(scenario.eval_split_names)}); test_forget exists in class scenarios (WholeClasses)")
    if evaluation.mia:
        scenario.setup()
        check_split_sizes(attack_classes(evaluation.mia_attacks), {name: len(scenario.splits[name]) for name in scenario.eval_split_names})


def attach(method: pl.LightningModule, scenario: UnlearningScenario, pretrained: Pretrained, evaluation: Evaluation | None = None, progress: bool = True) -> None:
    """Give `method` the original model, its data view of `scenario` and the evaluator of the scenario's splits."""
    check_attacks(scenario, evaluation)
    attach_model(method, obtain_original(scenario, pretrained, progress), scenario, pretrained, evaluation)


def attach_model(method: pl.LightningModule, model: torch.nn.Module, scenario: UnlearningScenario, pretrained: Pretrained,
                 evaluation: Evaluation | None = None) -> None:
    """`attach` with `model` as the original (U-LiRA's shadow originals, the pretraining); the split sizes are
    the caller's to check (`check_attacks`)."""
    scenario.setup()
    view = scenario.view(type(method).__name__, method.data_access, getattr(method, "retain_subset_size", None))
    method.attach(model, view, pretrained, Evaluator(scenario.eval_split_names, scenario.info.num_classes, evaluation or Evaluation()))


def fit(method: pl.LightningModule, scenario: UnlearningScenario, trainer: pl.Trainer, ckpt_path: str | None = None) -> None:
    """`trainer.fit` for the method's epochs; from the Lightning checkpoint `ckpt_path` (weights only) when given."""
    trainer.fit_loop.max_epochs = method.num_epochs()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")  # (the last epoch to resume from)
        trainer.fit(method, datamodule=scenario, ckpt_path=ckpt_path, weights_only=True)


def check_world(trainer: pl.Trainer) -> None:
    """A one-line error when the launcher started several processes (`WORLD_SIZE`: torchrun; `SLURM_NTASKS`: srun) but
    the trainer's world is one process: each would be a run of its own, and each would write the record."""
    started = {name: int(os.environ[name]) for name in ("WORLD_SIZE", "SLURM_NTASKS") if os.environ.get(name, "").strip().isdigit()}
    name, count = max(started.items(), key=lambda item: item[1], default=("", 1))
    if count > 1 and trainer.world_size == 1:
        raise UnlearnBenchError(f"{name}={count} processes were started but the trainer's world is 1 process (--trainer.num_nodes {trainer.num_nodes} "
                                f"x --trainer.devices {trainer.num_devices}, strategy {type(trainer.strategy).__name__}): each would be a run of its own; "
                                f"give --trainer.strategy ddp --trainer.num_nodes N --trainer.devices G with N x G = {count} (or start 1 process)")


@contextmanager
def weights_checkpoint(method: pl.LightningModule) -> Iterator[str]:
    """A Lightning checkpoint of the weights `method` holds now, in this process's memory (fsspec `memory://`: each
    process has its own, as nodes may share no file system), for `trainer.test(…, ckpt_path=…)`; removed afterwards."""
    path = f"memory://unlearnbench/weights-{os.getpid()}-{id(method)}.ckpt"
    filesystem = get_filesystem(path)
    with filesystem.open(path, "wb") as file:
        torch.save({"state_dict": method.state_dict(), "pytorch-lightning_version": pl.__version__}, file)
    try:
        yield path
    finally:
        filesystem.rm(path)


def run_test(method: pl.LightningModule, scenario: UnlearningScenario, trainer: pl.Trainer, ckpt_path: str | None = None, **test_kwargs) -> None:
    """`trainer.test` of the weights `method` holds (or those of a Lightning checkpoint `ckpt_path`).

    Never `ckpt_path=None`: on SLURM, Lightning's `trainer.test(model)` then loads the newest `hpc_ckpt_*.ckpt` in the
    trainer's `default_root_dir` (left by a requeue; `_CheckpointConnector._parse_ckpt_path`, Lightning 2.6), not the
    weights the fit just made, so the weights are handed over as a checkpoint of their own (`weights_checkpoint`)."""
    with nullcontext(ckpt_path) if ckpt_path is not None else weights_checkpoint(method) as path:
        trainer.test(method, datamodule=scenario, ckpt_path=path, **test_kwargs)
