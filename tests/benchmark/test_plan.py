"""`--plan`'s estimate (`benchmark/experiment/plan.py`): the images each run will push through the network, at the
throughput measured on this machine, before anything runs."""

from __future__ import annotations

import pytest
import yaml

from benchmark.experiment.plan import measure_throughput, run_work
from benchmark.experiment.sweep import run_sweep
from benchmark.metrics.evaluator import Evaluation
from benchmark.models.pretraining import RECIPES, Pretrained
from datamodules.scenarios import RandomInstances
from methods import NegGrad, Oracle
from methods.original import Original
from methods.retrain import Retrain


@pytest.fixture
def scenario(tmp_path, monkeypatch) -> RandomInstances:
    monkeypatch.setenv("UNLEARNBENCH_HOME", str(tmp_path))  # (nothing cached)
    scenario = RandomInstances(k=12)
    scenario.setup()
    return scenario


def test_a_runs_work_is_its_epochs_over_its_training_splits_an_evaluation_pass_and_the_originals_pretraining(scenario):
    sizes = {name: len(split) for name, split in scenario.splits.items()}
    evaluated = sum(sizes.values())
    pretraining = RECIPES.get("digits").epochs * (sizes["retain"] + sizes["forget"])
    original = Pretrained("small_cnn")

    work = run_work(NegGrad(budget={"max_epochs": 3}), scenario, original, Evaluation(mia=False))
    assert (work.train, work.evaluate, work.pretrain, work.relearn) == (3 * 12, evaluated, pretraining, 0)
    oracle = run_work(Oracle(budget={"max_epochs": 2}), scenario, original, Evaluation(mia=False))
    assert oracle.train == 2 * 2 * sizes["retain"]  # (retain and forget batches cycled to the longer)
    assert run_work(Retrain(), scenario, original, Evaluation(mia=False)).train == RECIPES.get("digits").epochs * sizes["retain"]
    assert run_work(Original(), scenario, original, Evaluation(mia=False)).train == 0


def test_relearning_is_counted_apart_as_its_most_and_a_committed_original_needs_no_pretraining(scenario, tmp_path):
    committed = Pretrained("small_cnn", checkpoint=str(tmp_path / "original.pt"))
    work = run_work(NegGrad(budget={"max_epochs": 1}), scenario, committed, Evaluation(mia=False, relearn=True, relearn_cap=7, relearn_samples=50))
    assert (work.train, work.relearn, work.pretrain) == (12, 7 * 50, 0)


def test_throughput_is_measured_on_this_machine():
    scenario = RandomInstances(k=12)
    scenario.setup()
    rate = measure_throughput("small_cnn", scenario.info, batch_size=32, steps=2, warmup=1)
    assert rate.train > 0 and rate.evaluate > rate.train and rate.device.startswith("cpu")


def test_a_plan_estimates_every_pending_run_counts_an_original_once_and_runs_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("UNLEARNBENCH_HOME", str(tmp_path / "home"))
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"base": {"data": {"class_path": "RandomInstances", "init_args": {"dataset": "digits", "k": 12}},
                                             "trainer": {"accelerator": "cpu"}, "evaluation": {"mia": False}},
                                    "methods": [{"class_path": "NegGrad", "init_args": {"budget": {"max_epochs": 2}}}], "seeds": [0, 1]}))
    planned = run_sweep(path, folder=tmp_path / "out", plan=True)
    estimate, printed = planned["estimate"], capsys.readouterr().out
    assert planned["ran"] == 0 and not (tmp_path / "out" / "results").exists() and not (tmp_path / "home" / "checkpoints").exists()
    assert len(estimate.seconds) == 2 and all(seconds > 0 for seconds in estimate.seconds.values())
    assert estimate.originals == 1 and estimate.work.pretrain == RECIPES.get("digits").epochs * 1437 and estimate.work.train == 2 * 2 * 12  # (digits: 1,437 training images)
    assert "estimate: 48 images trained" in printed and "measured throughput" in printed and printed.count("to run") == 2
