"""Incompetent (Chundawat et al.'s bad teaching, a seed 004 baseline) on digits: the loss by hand, the teachers, the
one shuffled set of D_f and a seeded 30 % of D_r, the declared access, and where the student goes."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from benchmark.experiment.runner import attach, run
from benchmark.metrics.evaluator import Evaluation
from benchmark.models.pretraining import Pretrained, build_model
from datamodules.access import FORGET_AND_RETAIN, DataAccess
from datamodules.scenarios import WholeClasses
from methods.incompetent import FORGET, RETAIN, Incompetent, bad_teaching_loss
from tests.methods import fixtures

Y_F = 9
"""D_f: every training 9 of digits."""
FAST = {"optimizer": {"init_args": {"lr": 1e-3}}, "budget": {"max_epochs": 3, "batch_size": 64}, "teacher_seed": 1}
"""Adam at 1e-3 for 3 epochs of batch 64 (the paper's 1 epoch at 1e-4 is 3 steps on digits and moves nothing)."""


def attached(**kwargs) -> Incompetent:
    method = Incompetent(**kwargs)
    attach(method, WholeClasses(classes=[Y_F]), Pretrained(), progress=False)
    return method


def probabilities(model: torch.nn.Module, dataset) -> torch.Tensor:
    loader = DataLoader(dataset, batch_size=512, collate_fn=getattr(dataset, "collate_fn", None))
    with torch.no_grad():
        return torch.cat([F.softmax(model.eval()(x), dim=-1) for x, _ in loader])


def kl(p: torch.Tensor, q: torch.Tensor) -> float:
    """Mean over rows of KL(p ‖ q)."""
    return (p * (p.log() - q.log())).sum(-1).mean().item()


@pytest.mark.parametrize(("temperature", "reduction"), [(1.0, "mean"), (2.0, "mean"), (1.0, "batchmean")])
def test_the_loss_is_the_kl_to_the_teacher_each_row_names_by_hand(temperature, reduction):
    student = torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.5, 2.0]])
    competent = torch.tensor([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0]])
    incompetent = torch.tensor([[0.0, 0.0, 3.0], [1.0, 1.0, 1.0]])
    forget = torch.tensor([False, True])  # row 0 retain (competent teacher), row 1 forget (incompetent teacher)

    def softmax(row):
        e = [math.exp(v / temperature) for v in row]
        return [v / sum(e) for v in e]

    total = 0.0
    for s, t in ((student[0].tolist(), competent[0].tolist()), (student[1].tolist(), incompetent[1].tolist())):
        p, q = softmax(t), softmax(s)
        total += sum(pi * (math.log(pi) - math.log(qi)) for pi, qi in zip(p, q))
    expected = total / (2 * 3 if reduction == "mean" else 2)
    got = bad_teaching_loss(student, competent, incompetent, forget, temperature, reduction)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    assert bad_teaching_loss(competent, competent, incompetent, torch.tensor([False, False])).item() == pytest.approx(0.0, abs=1e-7)


def test_d_f_and_a_seeded_30_percent_of_d_r_form_one_shuffled_set_with_unlearning_labels():
    method = attached(budget={"batch_size": 64})
    assert method.data_access == FORGET_AND_RETAIN and method.data.names == ("forget", "retain")
    method.prepare(method.data)
    forget, retain = method.data["forget"], method.data["retain"]
    subset_size = int(0.3 * len(retain))
    labels = torch.cat([part.targets for part in method.unlearning_set.datasets])
    assert len(method.unlearning_set) == len(forget) + subset_size and method.cost["cost/retain_samples"] == subset_size
    assert (labels == FORGET).sum() == len(forget) and (labels == RETAIN).sum() == subset_size
    assert torch.equal(method.unlearning_set.datasets[0].images, forget.images)

    same = attached(retain_samples=subset_size)  # the view's seeded subset of that size: the same images
    assert torch.equal(method.unlearning_set.datasets[1].images, same.data["retain"].images)
    x, label = next(iter(method.train_loader(method.data)))[0]["unlearn"]
    assert len(x) == 64 and set(label.tolist()) == {FORGET, RETAIN}  # batches mix both, as one shuffled set


def test_retain_samples_declares_a_retain_subset_and_a_split_outside_the_access_cannot_be_read(tmp_path):
    method = attached(retain_samples=50)
    assert method.data_access == DataAccess(forget=True, retain="subset") and len(method.data["retain"]) == 50
    fixtures.assert_reads_only(method, ("forget", "retain"))

    class Snooping(Incompetent):
        def prepare(self, data):
            data["test"]

    fixtures.assert_a_snooping_run_writes_nothing(Snooping(), WholeClasses(classes=[Y_F]), Pretrained(), "test", tmp_path)


def test_the_incompetent_teacher_is_a_seeded_frozen_random_model_of_the_same_architecture():
    a, b, c = attached(teacher_seed=3), attached(teacher_seed=3), attached(teacher_seed=4)
    for method in (a, b, c):
        method.prepare(method.data)
    teacher = a.incompetent
    assert type(teacher) is type(a.original) and not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    same = [torch.equal(p, q) for p, q in zip(teacher.parameters(), b.incompetent.parameters())]
    other = [torch.equal(p, q) for p, q in zip(teacher.parameters(), c.incompetent.parameters())]
    assert all(same) and not all(other)
    assert not all(torch.equal(p, q) for p, q in zip(teacher.parameters(), a.original.parameters()))


def test_the_student_moves_to_the_random_teacher_on_forget_rows_and_stays_with_the_original_on_retain_rows(tmp_path):
    method = Incompetent(**FAST)
    record = run(method, WholeClasses(classes=[Y_F]), Pretrained(), results_dir=str(tmp_path), progress=False, evaluation=Evaluation(mia=False))
    forget, retain = method.data["forget"], method.retain_subset(method.data)
    incompetent, original, student = (probabilities(m, forget) for m in (method.incompetent, method.original, method.model))
    assert kl(incompetent, student) < 0.1 * kl(incompetent, original)  # forget rows: the student answers as the random teacher
    incompetent, original, student = (probabilities(m, retain) for m in (method.incompetent, method.original, method.model))
    assert kl(original, student) < 0.3 and kl(incompetent, student) > 10 * kl(original, student)  # retain rows: as f_o
    assert record["metrics"]["forget/acc"] < 0.5 and record["metrics"]["retain/acc"] > 0.95
    fresh = build_model("small_cnn", method.data.info, FAST["teacher_seed"])  # the teacher unchanged, buffers included
    assert all(torch.equal(p, q) for p, q in zip(method.incompetent.state_dict().values(), fresh.state_dict().values()))
    assert record["timings"]["cost/steps"] == 3 * math.ceil((len(forget) + len(retain)) / 64)
