"""Neutralized (Kim & Woo's two-stage retraining, a seed 004 baseline) on digits: the neutral labels, the
distillation loss by hand, the stage boundaries, stage 1's effect on D_e, and the declared access."""

from __future__ import annotations

import math

import pytest
import torch

from benchmark.experiment.runner import attach, run
from benchmark.metrics.evaluator import Evaluation
from benchmark.models.pretraining import Pretrained
from datamodules.access import FORGET_AND_RETAIN
from datamodules.scenarios import WholeClasses
from methods.neutralized import Neutralized, distillation_loss, neutral_labels
from tests.methods import fixtures

Y_E = 9
"""D_e: every training 9 of digits."""
SMALL = {"budget": {"max_epochs": 1, "batch_size": 64}, "optimizer": {"init_args": {"lr": 0.003}}, "seed": 0}
"""One retraining epoch of batch 64 at lr 0.003 (the defaults' 10 + 10 epochs at 1e-3 take longer)."""
RUNS: dict = {}


class Recording(Neutralized):
    """Records the stage and the batch's keys of every step."""

    def training_step(self, batch, batch_idx):
        self.steps = [*getattr(self, "steps", []), (self.phase, tuple(batch))]
        return super().training_step(batch, batch_idx)


def unlearned(tmp_path_factory, neutralize_epochs: int) -> tuple[Recording, dict]:
    """One run per number of neutralisation epochs per session, with the accuracy curves."""
    if neutralize_epochs not in RUNS:
        method = Recording(**SMALL, neutralize_epochs=neutralize_epochs)
        record = run(method, WholeClasses(classes=[Y_E]), Pretrained(), results_dir=str(tmp_path_factory.mktemp("neutralized")),
                     progress=False, evaluation=Evaluation(mia=False, curves=True))
        RUNS[neutralize_epochs] = method, record
    return RUNS[neutralize_epochs]


def test_neutral_labels_are_one_random_other_class_or_any_class_per_row():
    y = torch.arange(10).repeat(200)
    other = neutral_labels(y, 10, "other", torch.Generator().manual_seed(0))
    assert not (other == y).any() and all(set(other[y == c].tolist()) == set(range(10)) - {c} for c in range(10))
    assert torch.equal(other, neutral_labels(y, 10, "other", torch.Generator().manual_seed(0)))  # seeded
    any_class = neutral_labels(y, 10, "any", torch.Generator().manual_seed(0))
    assert set(any_class.tolist()) == set(range(10)) and 0.05 < (any_class == y).float().mean() < 0.15  # ~1/K keep their own


@pytest.mark.parametrize(("weight", "temperature"), [(1.0, 1.0), (0.5, 2.0), (0.0, 1.0)])
def test_the_distillation_loss_by_hand(weight, temperature):
    student, teacher, y = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]]), torch.tensor([[1.0, 1.0, 0.0], [0.0, 3.0, 1.0]]), torch.tensor([0, 2])

    def softmax(row, t):
        e = [math.exp(v / t) for v in row]
        return [v / sum(e) for v in e]

    kd = ce = 0.0
    for s, t, label in zip(student.tolist(), teacher.tolist(), y.tolist()):
        p, q = softmax(t, temperature), softmax(s, temperature)
        kd += sum(pi * (math.log(pi) - math.log(qi)) for pi, qi in zip(p, q)) / 2
        ce += -math.log(softmax(s, 1.0)[label]) / 2
    expected = weight * temperature**2 * kd + (1 - weight) * ce
    assert distillation_loss(student, teacher, y, weight, temperature).item() == pytest.approx(expected, rel=1e-5)
    assert distillation_loss(student, None, y, 0.0, temperature).item() == pytest.approx(ce, rel=1e-5)  # w = 0 needs no teacher


def test_the_method_sees_d_e_and_d_r_only(tmp_path):
    method = Neutralized(**SMALL)
    attach(method, WholeClasses(classes=[Y_E]), Pretrained(), progress=False)
    assert method.data_access == FORGET_AND_RETAIN
    fixtures.assert_reads_only(method, ("forget", "retain"))

    class Snooping(Neutralized):
        def prepare(self, data):
            data["test_forget"]

    fixtures.assert_a_snooping_run_writes_nothing(Snooping(**SMALL), WholeClasses(classes=[Y_E]), Pretrained(), "test_forget", tmp_path)


@pytest.mark.parametrize("neutralize_epochs", [2, 0])
def test_the_stages_run_neutralize_epochs_on_d_e_then_the_budgets_epochs_on_d_r(tmp_path_factory, neutralize_epochs):
    method, record = unlearned(tmp_path_factory, neutralize_epochs)
    forget, retain = method.data["forget"], method.data["retain"]
    per_epoch = {"neutralize": math.ceil(len(forget) / 64), "retrain": math.ceil(len(retain) / 64)}
    expected = [("neutralize", ("forget",))] * (neutralize_epochs * per_epoch["neutralize"]) + [("retrain", ("retain",))] * per_epoch["retrain"]
    assert method.steps == expected
    assert record["timings"]["cost/epochs"] == neutralize_epochs + 1 and record["timings"]["cost/steps"] == len(expected)
    assert len(method.neutral_set) == len(forget) and not (method.neutral_set.targets == forget.targets).any()  # `other` labels


def test_stage_1_erases_d_e_and_stage_2_restores_d_r_without_bringing_d_e_back(tmp_path_factory):
    method, record = unlearned(tmp_path_factory, 2)
    forget, retain = method.curves["forget/acc"], method.curves["retain/acc"]  # before, after each epoch
    assert forget[0] > 0.95 and forget[2] < 0.2  # the 2 neutralisation epochs erase D_e ...
    assert retain[3] > 0.9 and retain[3] >= retain[2]  # ... stage 1 may hurt D_r (here 0.72), which distillation restores
    assert record["metrics"]["forget/acc"] < 0.2
    kept, _ = unlearned(tmp_path_factory, 0)  # distillation on D_r alone keeps f_o's answer on D_e (seed 004 App. D.3)
    assert kept.curves["forget/acc"][-1] > 0.9
