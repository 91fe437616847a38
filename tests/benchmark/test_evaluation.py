"""The evaluation on `digits` with a forgotten class: the sanity every unlearning benchmark must show."""

import pytest

from benchmark.audits.measures import model_measure_names
from benchmark.experiment.runner import run
from benchmark.metrics.evaluator import Evaluation
from benchmark.models.pretraining import Pretrained
from datamodules.scenarios import WholeClasses
from methods import Original, Retrain


@pytest.fixture(scope="module")
def class_records(tmp_path_factory):
    folder = tmp_path_factory.mktemp("records")
    evaluation = Evaluation(relearn=True, representations=True, figures=True)
    return {cls.__name__: run(cls(), WholeClasses(classes=[3]), Pretrained(), evaluation=evaluation, results_dir=str(folder), progress=False)
            for cls in (Original, Retrain)}


def test_original_relearns_in_zero_epochs(class_records):
    assert class_records["Original"]["metrics"]["rt/epochs"] == 0.0


def test_retrain_needs_longer_to_relearn_a_forgotten_class(class_records):
    assert class_records["Retrain"]["metrics"]["rt/epochs"] > class_records["Original"]["metrics"]["rt/epochs"]


def test_retrain_leaks_less_membership_than_original(class_records):
    assert class_records["Retrain"]["metrics"]["mia/svm_asr"] < class_records["Original"]["metrics"]["mia/svm_asr"]


def test_whole_model_measures_and_figures_are_recorded(class_records):
    for record in class_records.values():
        assert set(model_measure_names(Evaluation(relearn=True, representations=True))) <= set(record["metrics"])
        assert {"dist/weights", "forget/feature_norm", "retain/feature_norm", "forget/pattern", "rt/epochs", "rt/reached"} <= set(record["metrics"])
        assert len(record["figures"]) == 7 and any(f.endswith("gradcam_test_forget.png") for f in record["figures"])  # (class scenario: Grad-CAM too)
    assert class_records["Original"]["metrics"]["dist/weights"] == 0.0


def test_updating_the_evaluator_never_waits_for_the_device(monkeypatch):
    """A batch's update (accuracy, the non-finite count, every attack's features) reads no value back to the host: on
    a GPU each read would stall the evaluation loop until the device caught up (issue 21)."""
    import torch

    from benchmark.metrics.evaluator import Evaluator

    evaluator = Evaluator(["forget", "retain", "test"], 4, Evaluation(mia=True))
    batches = {split: (torch.randn(8, 4), torch.randint(0, 4, (8,)), torch.arange(8)) for split in evaluator.splits}

    def read_back(*args, **kwargs):
        raise AssertionError("a value was read back to the host during an update")

    with monkeypatch.context() as patched:
        for name in ("__bool__", "item", "tolist", "__int__", "__float__", "__index__"):
            patched.setattr(torch.Tensor, name, read_back)
        for split, (logits, labels, indices) in batches.items():
            evaluator.update(split, logits, labels, indices)
    assert 0.0 <= evaluator.compute()["forget/acc"] <= 1.0
