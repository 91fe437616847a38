"""A fit whose process stopped resumes from the checkpoint of its last finished epoch (`runner.run(checkpoints=…)`,
what a sweep's retried run does) and ends where the uninterrupted fit ends: the same weights, measures, curves, stop
and cost counts.

One method per mechanism a resumed fit must restore (`MECHANISMS`), to keep the suite short. `UNLEARNBENCH_RESUME_ALL=1`
runs every registered method that trains: all 29 passed on 2026-12-03 (112 s on 2 cores)."""

from __future__ import annotations

import os

import lightning.pytorch as pl
import pytest
import torch

from benchmark.experiment.runner import run
from benchmark.metrics.evaluator import Evaluation
from benchmark.models.pretraining import Pretrained
from datamodules.scenarios import RandomInstances, WholeClasses
from methods import METHODS, NegGrad
from methods.original import Original
from methods.retrain import Retrain
from tests.methods.test_methods import ARCH, SMALL

EVALUATION = Evaluation(mia=False, curves=True)
SHORT = {"budget": {"max_epochs": 3, "stop": "none"}}
"""Epochs enough to stop after one and resume for two (no early stop: Adv would reach its goal within its first epoch;
the stop's resume has its own test)."""
LONGER = {"Neutralized": {"neutralize_epochs": 1, "budget": {"max_epochs": 2, "stop": "none"}},
          "UNSIR": {"noise_batch": 32, "budget": {"max_epochs": 2, "stop": "none"}},
          "FewShotInversion": {**SMALL["FewShotInversion"], "scrub_epochs": 1, "budget": {"max_epochs": 2, "stop": "none"}}}
"""Methods with phases: one epoch of each, so the resumed fit starts in a later phase."""


class Stopped(Exception):
    """The process "died"."""


class StopAt(pl.Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            raise Stopped


def settings(name: str) -> dict:
    return LONGER.get(name) or {**SMALL.get(name, {}), **SHORT}


def scenario_for(method):
    if "relabel" in method.train_splits:
        return RandomInstances(k=16, relabel=True)
    return WholeClasses(classes=[4], **({"retain_per_class": 20} if method.data_access.retain == "request" else {}))


MECHANISMS = {
    "NegGrad": "weights, the optimizer's momentum, the global generators (the shuffle)",
    "Oracle": "the best-state choice's history and weights (BestState)",
    "SalUn": "the saliency mask computed in `prepare` from the original; the method's own label generator (RL's)",
    "SCRUB": "max / min passes, loaders remade every epoch",
    "UNSIR": "phases: a fresh optimizer per phase, per-phase costs",
    "BE": "a module `prepare` adds to the model (the extra neuron)",
}
TRAINING = [n for n in METHODS.names() if not METHODS.get(n).one_shot and not issubclass(METHODS.get(n), (Original, Retrain))]


@pytest.mark.parametrize("name", TRAINING if os.environ.get("UNLEARNBENCH_RESUME_ALL") else list(MECHANISMS))
def test_a_resumed_fit_ends_where_the_uninterrupted_fit_ends(name, tmp_path):
    def fitted(folder: str, **options) -> dict:
        method = METHODS.get(name)(**settings(name))
        return run(method, scenario_for(method), Pretrained(arch=ARCH.get(name, "small_cnn")), results_dir=str(tmp_path / folder),
                   progress=False, evaluation=EVALUATION, **options)

    with pytest.raises(Stopped):
        fitted("resumed", checkpoints=tmp_path / "checkpoints", callbacks=[StopAt(1)])
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()
    uninterrupted = fitted("uninterrupted")
    resumed = fitted("resumed", checkpoints=tmp_path / "checkpoints")
    assert not (tmp_path / "checkpoints").exists()  # removed with the record written
    assert resumed["metrics"] == uninterrupted["metrics"] and resumed["curves"] == uninterrupted["curves"]
    assert (resumed["stopped_at"], resumed["diverged"]) == (uninterrupted["stopped_at"], uninterrupted["diverged"])
    cost = {k: v for k, v in resumed["timings"].items() if not k.endswith(("seconds", "memory_mb"))}
    assert cost == {**{k: v for k, v in uninterrupted["timings"].items() if not k.endswith(("seconds", "memory_mb"))}, "cost/resumes": 1.0}
    weights, reference = (torch.load(r["weights"], weights_only=True)["state_dict"] for r in (resumed, uninterrupted))
    assert weights.keys() == reference.keys() and all(torch.equal(weights[k], reference[k]) for k in reference)


class StopAtTest(pl.Callback):
    def on_test_start(self, trainer, pl_module) -> None:
        raise Stopped


def test_a_run_that_stopped_early_and_died_in_its_evaluation_resumes_to_no_more_training(tmp_path):
    """The checkpoint of the epoch where the stop criterion held: the resumed fit trains nothing more and the record is
    the uninterrupted run's (the stop, the epochs, the measures)."""
    def fitted(folder: str, **options) -> dict:
        method = NegGrad(optimizer={"class_path": "torch.optim.SGD", "init_args": {"lr": 0.01, "momentum": 0.9}}, budget={"max_epochs": 100, "batch_size": 4})
        return run(method, RandomInstances(k=8, seed=2), Pretrained(), results_dir=str(tmp_path / folder),
                   progress=False, evaluation=Evaluation(mia=False), **options)

    with pytest.raises(Stopped):
        fitted("resumed", checkpoints=tmp_path / "checkpoints", callbacks=[StopAtTest()])
    resumed, uninterrupted = fitted("resumed", checkpoints=tmp_path / "checkpoints"), fitted("uninterrupted")
    assert uninterrupted["stopped_at"] is not None and uninterrupted["timings"]["cost/epochs"] < 100
    assert resumed["stopped_at"] == uninterrupted["stopped_at"] and resumed["timings"]["cost/epochs"] == uninterrupted["timings"]["cost/epochs"]
    assert resumed["metrics"] == uninterrupted["metrics"]
