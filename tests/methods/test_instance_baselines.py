"""The instance-wise baselines of seed 000 (Correct, Oracle, RAWP) on digits: targets, stops, checkpoints."""

import pytest
import torch.nn.functional as F

from benchmark.core.errors import UnlearnBenchError
from benchmark.experiment.runner import run
from benchmark.metrics.accuracy import evaluate_accuracy
from benchmark.metrics.mia import MIA_METRICS
from benchmark.models.pretraining import Pretrained
from datamodules.scenarios import RandomInstances
from methods.correct import Correct
from methods.oracle import Oracle
from methods.rawp import RAWP


def assert_stable_names(record: dict, relabel: bool = False) -> None:
    splits = ("forget", "retain", "test") + (("relabel",) if relabel else ())
    assert set(record["metrics"]) == {f"{s}/acc" for s in splits} | set(MIA_METRICS)
    assert {"cost/seconds", "cost/epochs", "cost/steps"} <= set(record["timings"])


def test_correct_relabels_the_forget_set_and_stops_there(tmp_path):
    method = Correct(budget={"batch_size": 8})
    record = run(method, RandomInstances(k=8, relabel=True), Pretrained(), results_dir=str(tmp_path), progress=False)
    assert record["metrics"]["relabel/acc"] == 1.0 and record["metrics"]["forget/acc"] == 0.0
    assert record["stopped_at"] is not None
    assert record["timings"]["cost/steps"] == record["stopped_at"]["step"] == record["stopped_at"]["epoch"] + 1 < 100
    assert_stable_names(record, relabel=True)


@pytest.mark.parametrize("method", [Correct(), Oracle(goal="relabel")], ids=["Correct", "Oracle"])
def test_relabeling_needs_new_labels(method, tmp_path):
    with pytest.raises(UnlearnBenchError, match="needs a request with new labels"):
        run(method, RandomInstances(k=8), Pretrained(), results_dir=str(tmp_path), progress=False)
    assert not list(tmp_path.rglob("*.json"))


@pytest.mark.parametrize("kwargs", [{"gamma": 0.0}, {"steps": 0}])
def test_rawp_rejects_bad_arguments(kwargs):
    with pytest.raises(UnlearnBenchError, match=r"RAWP\.(gamma = 0\.0|steps = 0) is not allowed; (a number|an integer) > 0"):
        RAWP(**kwargs)


class Relapsing(Oracle):
    """Learns wrong labels for D_f in its first epoch, the true ones after: its last epoch is not its best."""

    def __init__(self) -> None:
        super().__init__(budget={"max_epochs": 3, "stop": "none"})

    def training_step(self, batch, batch_idx):
        x, y = batch["forget"]
        return F.cross_entropy(self.model(x), (y + 1) % 10 if self.current_epoch == 0 else y)


def test_oracle_returns_its_lowest_forget_accuracy_checkpoint(tmp_path):
    method = Relapsing()
    scenario = RandomInstances(k=8)
    record = run(method, scenario, Pretrained(), results_dir=str(tmp_path), progress=False)
    history = method.best.history
    best = min(history)
    assert len(history) == 3 and history.index(best) == method.best.best_epoch == 0
    assert history[-1] > best
    assert record["metrics"]["forget/acc"] == best
    assert evaluate_accuracy(method.model, scenario.eval_loader("forget"), 10, method.device) == best
    assert record["stopped_at"] is None
    assert_stable_names(record)


def test_oracle_stops_at_its_goal(tmp_path):
    method = Oracle(goal="relabel")
    record = run(method, RandomInstances(k=8, relabel=True), Pretrained(), results_dir=str(tmp_path), progress=False)
    assert record["metrics"]["relabel/acc"] == 1.0 and method.best.history[-1] == 1.0
    assert record["stopped_at"]["epoch"] == len(method.best.history) - 1 < 10
    assert_stable_names(record, relabel=True)


def test_rawp_misclassifies_the_forget_set_and_stops(tmp_path):
    method = RAWP(budget={"stop_check": "step"})
    record = run(method, RandomInstances(k=8), Pretrained(), results_dir=str(tmp_path), progress=False)
    assert record["metrics"]["forget/acc"] == 0.0
    assert record["stopped_at"] is not None and record["timings"]["cost/steps"] == record["stopped_at"]["step"] < 100
    changed = [not p.equal(q) for p, q in zip(method.model.parameters(), method.original.parameters())]
    assert changed == [p.ndim > 1 for p in method.model.parameters()]
    assert_stable_names(record)
