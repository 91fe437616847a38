import math

import pytest

from benchmark.experiment.runner import run
from benchmark.metrics.curves import mean_abs_delta, volatility, volatility_table1
from benchmark.metrics.evaluator import Evaluation
from benchmark.models.pretraining import Pretrained
from datamodules.scenarios import Outliers, RandomInstances
from methods import FineTune


def test_volatility_is_the_printed_sum_and_its_telescoped_form():
    curve = [0.9, 0.4, 0.6, 0.1]  # T = 3
    printed_remain = sum(curve[t] - curve[t - 1] for t in range(1, 4)) / (3 - 1)
    printed_forget = sum(curve[t] - curve[t + 1] for t in range(0, 3)) / (3 - 1)
    assert volatility(curve, forget=False) == pytest.approx(printed_remain) == pytest.approx((0.1 - 0.9) / 2)
    assert volatility(curve, forget=True) == pytest.approx(printed_forget) == pytest.approx((0.9 - 0.1) / 2)
    assert math.isnan(volatility([1.0, 0.5], forget=True))  # |T| − 1 = 0


def test_the_table1_variant_and_the_mean_absolute_change():
    curve = [0.9, 0.4, 0.6, 0.1]
    assert volatility_table1(curve, forget=False) == pytest.approx(0.1 - 0.9)
    assert volatility_table1(curve, forget=True) == pytest.approx(0.6 - 0.1)
    assert mean_abs_delta([1.0, 0.0, 1.0, 0.0]) == pytest.approx(1.0) and mean_abs_delta([0.5]) == 0.0
    assert mean_abs_delta([0.2, 0.9, 0.2]) > mean_abs_delta([0.2, 0.5, 0.9])  # fluctuation, not net change


def test_curves_start_at_the_original_and_give_volatility():
    record = run(FineTune(budget={"max_epochs": 3}), RandomInstances(k=20), Pretrained(), evaluation=Evaluation(curves=True, mia=False), progress=False)
    curves = record["curves"]
    assert set(curves) == {"forget/acc", "retain/acc", "test/acc"}
    assert all(len(curve) == 4 for curve in curves.values())  # before unlearning + 3 epochs
    assert curves["forget/acc"][0] == 1.0 and curves["retain/acc"][-1] == record["metrics"]["retain/acc"]
    for split in ("forget", "retain", "test"):
        assert record["metrics"][f"{split}/volatility"] == pytest.approx(volatility(curves[f"{split}/acc"], forget=split == "forget"))
        assert record["metrics"][f"{split}/mean_abs_delta"] == pytest.approx(mean_abs_delta(curves[f"{split}/acc"]))


def test_an_outlier_scenario_curves_the_noise_split_and_reads_the_best_epoch():
    """Seed 003 Table 2: the best test and noise (true-label) accuracy over epochs 0..T."""
    record = run(FineTune(budget={"max_epochs": 2}), Outliers(rho=0.1), Pretrained(), evaluation=Evaluation(curves=True, mia=False), progress=False)
    curves, metrics = record["curves"], record["metrics"]
    assert set(curves) == {"forget/acc", "retain/acc", "test/acc", "noise/acc"} and len(curves["noise/acc"]) == 3
    assert metrics["noise/best_acc"] == max(curves["noise/acc"]) and metrics["test/best_acc"] == max(curves["test/acc"])
    assert "forget/best_acc" not in metrics
