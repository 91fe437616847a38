"""CT (Deep Unlearn's kgltop5) on digits: every conv kernel transposed in place (and a non-square one refused), the
fine-tuning starting from the transposed weights under a cosine schedule, and the declared access (D_r only)."""

from __future__ import annotations

import copy
import math

import lightning.pytorch as pl
import pytest
import torch
from torch import nn

from benchmark.core.errors import UnlearnBenchError
from datamodules.access import RETAIN_FULL
from datamodules.scenarios import WholeClasses
from methods.ct import CT
from tests.methods import fixtures
from methods.blocks.schedules import cosine

Y_F = 4


def attached(method: CT) -> CT:
    return fixtures.attached(method, WholeClasses(classes=[Y_F]))


def fitted(method: CT, batches: int, *callbacks: pl.Callback) -> CT:
    return fixtures.fitted(method, WholeClasses(classes=[Y_F]), batches, *callbacks)


def test_prepare_transposes_every_conv_kernel_in_place_and_changes_nothing_else():
    method = attached(CT())
    before = {name: p for name, p in method.model.named_parameters()}
    method.prepare(method.data)
    original = dict(method.original.named_parameters())
    convs = [name for name, m in method.model.named_modules() if isinstance(m, nn.Conv2d)]
    assert convs == ["backbone.0", "backbone.2", "backbone.5", "backbone.7"] and method.cost["cost/transposed"] == 4
    for name, p in method.model.named_parameters():
        assert p is before[name]  # the same Parameter objects: the optimizer holds the transposed weights
        if name.removesuffix(".weight") in convs:
            assert torch.equal(p, original[name].transpose(-1, -2)) and not torch.equal(p, original[name])
        else:
            assert torch.equal(p, original[name])  # conv biases, the FC layer and the head


def test_a_non_square_kernel_is_refused_in_one_line():
    method = attached(CT())
    method.model = copy.deepcopy(method.model)
    method.model.backbone[2] = nn.Conv2d(32, 32, (3, 5), padding=(1, 2))
    with pytest.raises(UnlearnBenchError, match=r"CT transposes square convolution kernels only; the model has non-square ones: backbone\.2 \(3×5\)"):
        method.prepare(method.data)
    with pytest.raises(UnlearnBenchError, match="CT works on convolution kernels and Sequential has no nn.Conv2d layer"):
        method.model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
        method.prepare(method.data)


def test_fine_tuning_starts_from_the_transposed_kernels():
    method = fitted(CT(), 4)
    for name, p in method.model.named_parameters():
        if name.endswith("weight") and p.dim() == 4:
            original = method.original.get_submodule(name.removesuffix(".weight")).weight
            assert (p - original.transpose(-1, -2)).norm() < 0.1 * (p - original).norm()


@pytest.mark.parametrize("schedule", ["epoch", "step"])
def test_the_learning_rate_follows_a_cosine_over_the_epochs(schedule):
    rates = fixtures.LearningRates()
    fitted(CT(schedule=schedule), 2, rates)
    lr = 1e-3
    assert [e for e, _ in rates.seen] == [0, 0, 1, 1, 2, 2]
    if schedule == "epoch":  # CosineAnnealingLR(T_max=3) stepped per epoch: 1, 0.75, 0.25
        expected = [lr * f for f in (1.0, 0.75, 0.25) for _ in range(2)]
    else:
        expected = [lr * (1 + math.cos(math.pi * s / 6)) / 2 for s in range(6)]
        assert expected == pytest.approx([lr * cosine(3)(s / 2) for s in range(6)])
    assert [r for _, r in rates.seen] == pytest.approx(expected)


def test_ct_reads_the_retain_set_only(monkeypatch):
    read = fixtures.recorded_reads(monkeypatch)
    method = fitted(CT(budget={"max_epochs": 1}), 2)
    assert method.data_access == RETAIN_FULL and set(read) == {"retain"}
    fixtures.assert_reads_only(method, ("retain",))
