import pytest

from benchmark.experiment.runner import run
from benchmark.metrics.curves import volatility
from benchmark.metrics.evaluator import Evaluation
from benchmark.models.pretraining import Pretrained
from datamodules.scenarios import RandomInstances
from methods import FineTune


def test_volatility_is_the_mean_absolute_change_between_epochs():
    assert volatility([1.0, 0.0, 1.0, 0.0]) == pytest.approx(1.0)
    assert volatility([1.0, 0.8, 0.6]) == pytest.approx(0.2)
    assert volatility([0.5]) == 0.0
    assert volatility([0.2, 0.9, 0.2]) > volatility([0.2, 0.5, 0.9])  # fluctuation, not net change


def test_curves_start_at_the_original_and_give_volatility():
    record = run(FineTune(budget={"max_epochs": 3}), RandomInstances(k=20), Pretrained(), evaluation=Evaluation(curves=True, mia=False), progress=False)
    curves = record["curves"]
    assert set(curves) == {"forget/acc", "retain/acc", "test/acc"}
    assert all(len(curve) == 4 for curve in curves.values())  # before unlearning + 3 epochs
    assert curves["forget/acc"][0] == 1.0 and curves["retain/acc"][-1] == record["metrics"]["retain/acc"]
    for split in ("forget", "retain", "test"):
        assert record["metrics"][f"{split}/volatility"] == pytest.approx(volatility(curves[f"{split}/acc"]))
