"""SCRUB (Kurmanji et al. 2023) on digits with a BatchNorm model: KL_T and both steps' losses by hand, max and min
passes alternating as configured, the frozen teacher (buffers included), the lr milestones, the declared access."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from benchmark.core.errors import DataAccessError
from benchmark.core.validation import SettingError
from benchmark.experiment.runner import attach, run
from benchmark.metrics.evaluator import Evaluation
from benchmark.models.pretraining import Pretrained
from datamodules.access import FORGET_AND_RETAIN
from datamodules.scenarios import WholeClasses
from methods.scrub import MAX, MIN, SCRUB, decay_factor, kl_t

Y_F = 4
"""D_f: every training 4 of digits."""
BN = Pretrained(arch="narrow_cnn_bn")
pytestmark = pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")  # (steps called outside a trainer)
"""A model with BatchNorm: a teacher left in train mode would change its running statistics."""
LR = 0.05


def attached(**kwargs) -> SCRUB:
    method = SCRUB(**kwargs)
    attach(method, WholeClasses(classes=[Y_F]), BN, Evaluation(mia=False), progress=False)
    return method


class Recording(SCRUB):
    """Records, per optimizer step: the epoch, the step, the batch's labels, the lr, the student's and teacher's modes."""

    def on_train_start(self) -> None:
        self.steps: list[tuple] = []
        self.teacher_before = copy.deepcopy(self.original.state_dict())
        self.student_before = copy.deepcopy(self.model.state_dict())
        self.original.train()  # (as Lightning < 2.2's `model.train()` left it: the step itself must evaluate the teacher)

    def training_step(self, batch, batch_idx):
        ((step, (_, y)),) = batch.items()
        loss = super().training_step(batch, batch_idx)
        lr = self.trainer.optimizers[0].param_groups[0]["lr"]
        self.steps.append((self.current_epoch, step, y.cpu(), lr, self.model.training, self.original.training))
        return loss


def test_kl_t_is_t_squared_times_the_kl_summed_over_the_batch_and_divided_by_its_size():
    student, teacher = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]]), torch.tensor([[1.0, 1.0, 0.0], [0.0, 3.0, 1.0]])
    for temperature in (1.0, 4.0):
        total = 0.0
        for s, t in zip(student.tolist(), teacher.tolist()):
            p = [math.exp(v / temperature) for v in t]
            q = [math.exp(v / temperature) for v in s]
            p, q = [v / sum(p) for v in p], [v / sum(q) for v in q]
            total += sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))
        assert kl_t(student, teacher, temperature).item() == pytest.approx(temperature**2 * total / 2, rel=1e-5)
    assert kl_t(teacher, teacher, 4.0).item() == pytest.approx(0.0, abs=1e-7)


def test_the_lr_factor_counts_the_milestones_before_each_1_based_epoch():
    assert [decay_factor(epoch, (3, 5, 9), 0.1) for epoch in range(10)] == pytest.approx([1, 1, 1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.01, 0.001])


def test_the_max_step_ascends_kl_t_on_d_f_and_the_min_step_descends_gamma_ce_plus_alpha_kl_t_on_d_r():
    method = attached(gamma=0.7, alpha=0.2, temperature=3.0)
    with torch.no_grad():
        for p in method.model.parameters():
            p.add_(0.05 * torch.randn_like(p))  # (a student that differs from its teacher)
    method.model.eval()  # (deterministic outputs; the teacher is put in eval mode by the step itself)
    method.original.train()
    x, y = next(iter(method.data.loader("forget", 32)))
    with torch.no_grad():
        student, teacher = method.model(x), method.original.eval()(x)
    divergence = kl_t(student, teacher, 3.0)
    assert divergence > 0
    assert method.training_step({MAX: (x, y)}, 0).item() == pytest.approx(-divergence.item(), rel=1e-5)
    expected = 0.7 * F.cross_entropy(student, y) + 0.2 * divergence
    assert method.training_step({MIN: (x, y)}, 0).item() == pytest.approx(expected.item(), rel=1e-5)


def test_max_and_min_passes_alternate_the_teacher_never_changes_and_the_lr_decays_at_the_milestones(tmp_path):
    method = Recording(msteps=2, lr_decay_epochs=[1, 2], lr_decay_rate=0.1, forget_batch_size=64, optimizer={"init_args": {"lr": LR}},
                       budget={"max_epochs": 3, "batch_size": 512})
    record = run(method, WholeClasses(classes=[Y_F]), BN, results_dir=str(tmp_path), progress=False, evaluation=Evaluation(mia=False))
    n_f, n_r = len(method.data["forget"]), len(method.data["retain"])
    f, r = math.ceil(n_f / 64), math.ceil(n_r / 512)
    assert [(epoch, step) for epoch, step, *_ in method.steps] == (
        [(0, MAX)] * f + [(0, MIN)] * r + [(1, MAX)] * f + [(1, MIN)] * r + [(2, MIN)] * r)  # F, R, F, R, R
    assert record["timings"]["cost/steps"] == len(method.steps) and record["timings"]["cost/epochs"] == 3
    for kind, split, size in ((MAX, "forget", 64), (MIN, "retain", 512)):  # each pass covers its split, in its batch size
        labels = [y for epoch, step, y, *_ in method.steps if step == kind and epoch == 0]
        assert max(len(y) for y in labels) == size and sum(len(y) for y in labels) == len(method.data[split])
    assert all((y == Y_F).all() if step == MAX else (y != Y_F).all() for _, step, y, *_ in method.steps)
    lrs = {epoch: {lr for e, _, _, lr, *_ in method.steps if e == epoch} for epoch in range(3)}  # lr · 0.1^#{m < e}, e = epoch + 1
    assert [len(lrs[epoch]) for epoch in range(3)] == [1, 1, 1] and [lrs[epoch].pop() for epoch in range(3)] == pytest.approx([LR, LR * 0.1, LR * 0.01])
    assert all(student and not teacher for *_, student, teacher in method.steps)  # the student trains, the teacher evaluates
    after = method.original.state_dict()
    assert all(torch.equal(value, after[name]) for name, value in method.teacher_before.items())  # running statistics too
    assert not all(torch.equal(value, method.model.state_dict()[name]) for name, value in method.student_before.items())


def test_augment_has_the_scenario_augment_both_steps():
    """The authors' loaders do not augment; `augment=True` lists both steps' keys for the scenario's augmentation."""
    assert attached().augmented_keys == () and attached(augment=True).augmented_keys == (MAX, MIN)


def test_scrub_reads_the_forget_set_and_the_full_retain_set_only():
    method = attached()
    assert method.data_access == FORGET_AND_RETAIN and method.data.names == ("forget", "retain")
    with pytest.raises(DataAccessError, match="SCRUB declared access to forget set \\+ the full retain set and cannot read the 'test' split"):
        method.data["test"]


@pytest.mark.parametrize(("setting", "message"), [({"lr_decay_epochs": [3, 0]}, "SCRUB.lr_decay_epochs = 0 is not allowed"),
                                                  ({"msteps": -1}, "SCRUB.msteps = -1 is not allowed"),
                                                  ({"temperature": 0}, "SCRUB.temperature = 0 is not allowed")])
def test_bad_settings_fail_in_one_line(setting, message):
    with pytest.raises(SettingError, match=message):
        SCRUB(**setting)
