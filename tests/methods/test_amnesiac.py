"""Amnesiac (relabel-and-retrain, as the SSD and Bad Teaching repositories run it) on digits: every D_f image trained
on with one wrong label, the same in every epoch, with D_r in one shuffled set; the run-seeded draw; the request's own
new labels left aside; the declared access."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from benchmark.core.errors import DataAccessError
from benchmark.experiment.runner import attach, run
from benchmark.metrics.evaluator import Evaluation
from benchmark.models.pretraining import Pretrained
from datamodules.access import FORGET_AND_RETAIN
from datamodules.scenarios import RandomInstances
from methods.amnesiac import UNLEARN, Amnesiac
from methods.blocks.adversarial import other_labels

SCENARIO = {"k": 60, "seed": 1}
"""60 random training images of digits, of every class."""


class Recording(Amnesiac):
    """Records every step's epoch, images and labels, and checks its loss is the plain cross-entropy on them."""

    def on_train_start(self) -> None:
        self.steps: list[tuple[int, torch.Tensor, torch.Tensor]] = []

    def training_step(self, batch, batch_idx):
        x, y = batch[UNLEARN]
        loss = super().training_step(batch, batch_idx)
        with torch.no_grad():  # (small_cnn: no BatchNorm, no dropout; the step comes after training_step)
            assert loss.item() == pytest.approx(F.cross_entropy(self.model(x), y).item(), rel=1e-5)
        self.steps.append((self.current_epoch, x.cpu(), y.cpu()))
        return loss


def attached(method: Amnesiac, **scenario) -> Amnesiac:
    attach(method, RandomInstances(**(SCENARIO | scenario)), Pretrained(), Evaluation(mia=False), progress=False)
    return method


def test_every_forget_image_is_trained_on_with_one_wrong_label_fixed_across_epochs_among_all_of_d_r(tmp_path):
    method = Recording(budget={"max_epochs": 2, "batch_size": 64})
    record = run(method, RandomInstances(**SCENARIO), Pretrained(), results_dir=str(tmp_path), progress=False, evaluation=Evaluation(mia=False))
    forget, retain = method.data["forget"], method.data["retain"]
    wrong = method.relabelled.targets
    assert len(wrong) == len(forget) and not (wrong == forget.targets).any() and len(set(forget.targets.tolist())) > 5
    assert record["timings"]["cost/steps"] == len(method.steps) == 2 * math.ceil((len(forget) + len(retain)) / 64)
    images = {x.numpy().tobytes(): i for i, x in enumerate(forget.images)}
    assert len(images) == len(forget)
    for epoch in (0, 1):  # each epoch: every D_f image once, with its wrong label, and all of D_r with its labels
        x = torch.cat([x for e, x, _ in method.steps if e == epoch])
        y = torch.cat([y for e, _, y in method.steps if e == epoch])
        rows = {images[row.numpy().tobytes()]: label for row, label in zip(x, y.tolist()) if row.numpy().tobytes() in images}
        assert len(x) == len(forget) + len(retain) and sorted(rows) == list(range(len(forget)))
        assert [rows[i] for i in range(len(forget))] == wrong.tolist()
        assert torch.equal(torch.bincount(y, minlength=10), torch.bincount(torch.cat([retain.targets, wrong]), minlength=10))
    first = [y for e, _, y in method.steps if e == 0]
    assert not torch.equal(first[0], method.steps[len(first)][2])  # reshuffled, not replayed


def test_the_wrong_labels_come_from_the_run_seed_or_the_seed_setting():
    def labels(run_seed: int, **settings) -> torch.Tensor:
        method = attached(Amnesiac(**settings))
        torch.manual_seed(run_seed)
        method.prepare(method.data)
        return method.relabelled.targets

    assert torch.equal(labels(3), labels(3)) and not torch.equal(labels(3), labels(4))
    assert torch.equal(labels(3, seed=7), labels(4, seed=7))
    method = attached(Amnesiac())
    assert torch.equal(labels(5), other_labels(method.data["forget"].targets, 10, torch.Generator().manual_seed(5)))


def test_a_request_with_its_own_new_labels_does_not_change_the_draw():
    plain, relabelling = attached(Amnesiac(seed=0)), attached(Amnesiac(seed=0), relabel=True)
    assert relabelling.data.names == ("forget", "relabel", "retain") and plain.data.names == ("forget", "retain")
    for method in (plain, relabelling):
        method.prepare(method.data)
    assert torch.equal(plain.relabelled.targets, relabelling.relabelled.targets)
    assert not torch.equal(relabelling.relabelled.targets, relabelling.data["relabel"].targets)


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")
def test_augment_has_the_scenario_augment_the_joined_set():
    assert attached(Amnesiac()).augmented_keys == () and attached(Amnesiac(augment=True)).augmented_keys == (UNLEARN,)


def test_amnesiac_reads_the_forget_set_and_the_full_retain_set_only():
    method = attached(Amnesiac())
    assert method.data_access == FORGET_AND_RETAIN and method.data.names == ("forget", "retain")
    with pytest.raises(DataAccessError, match="Amnesiac declared access to forget set \\+ the full retain set and cannot read the 'test' split"):
        method.data["test"]
