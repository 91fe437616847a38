"""Fitting a method: the original model (pretrained and cached on a miss), a method's attachment to it and to its
data view of a scenario, and the fit. The pipeline (`benchmark.experiment.runner`) and U-LiRA's shadow runs use it."""

from __future__ import annotations

import sys

import lightning.pytorch as pl
import torch

from benchmark.core.errors import UnlearnBenchError
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
    full = NothingForgotten(scenario.dataset_name, scenario.request.corruption, scenario.data, data_root=scenario.data_root,
                            eval_batch_size=scenario.eval_batch_size, num_workers=scenario.num_workers, request_dir=scenario.request_dir)
    full.setup()
    path = cache_path(pretrained, scenario.info.name, full.request.training_set_hash)
    if not path.exists():
        recipe = pretrained.recipe_name(scenario.info.name)
        if RECIPES.get(recipe).init is not None:  # its pretrained body first
            dataset, source = init_source(pretrained, RECIPES.get(recipe))
            obtain_original(NothingForgotten(dataset, eval_batch_size=scenario.eval_batch_size, num_workers=scenario.num_workers), source, progress)
        print(f"pretraining the original {pretrained.arch} on {scenario.info.name} (recipe {recipe}, seed {pretrained.seed}) → {path}", file=sys.stderr)
        trainer_kwargs = {**TRAINER_DEFAULTS, "accelerator": "auto", "devices": 1, "enable_progress_bar": progress}
        with torch.random.fork_rng():
            pl.seed_everything(pretrained.seed, verbose=False)
            trainer = pl.Trainer(max_epochs=1, **trainer_kwargs)
            pretraining = Retrain()
            attach_model(pretraining, model, full, pretrained, Evaluation(mia=False))  # trained, never evaluated here
            fit(pretraining, full, trainer)
    load_checkpoint(path, model)
    return model


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


def fit(method: pl.LightningModule, scenario: UnlearningScenario, trainer: pl.Trainer) -> None:
    trainer.fit_loop.max_epochs = method.num_epochs()
    trainer.fit(method, datamodule=scenario)
