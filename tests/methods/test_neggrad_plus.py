"""NegGradPlus (Kurmanji et al. 2023) on digits: the loss by hand on a batch, α = 1 is FineTune's loss, the L2 term
to the original, an epoch as one pass over D_r with D_f cycled, the declared access."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from benchmark.core.errors import DataAccessError
from benchmark.experiment.runner import attach
from benchmark.metrics.evaluator import Evaluation
from benchmark.models.pretraining import Pretrained
from datamodules.access import FORGET_AND_RETAIN
from datamodules.scenarios import WholeClasses
from methods.finetune import FineTune
from methods.neggrad_plus import ASCENT, DESCENT, NegGradPlus, RetainCyclingForget, neggrad_plus_loss

Y_F = 4
"""D_f: every training 4 of digits."""

pytestmark = pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")  # (steps called outside a trainer)


def attached(method):
    attach(method, WholeClasses(classes=[Y_F]), Pretrained(), Evaluation(mia=False), progress=False)
    return method


def batches(method: NegGradPlus) -> dict:
    return next(iter(method.train_loader(method.data)))


def test_the_loss_is_alpha_ce_on_d_r_minus_one_minus_alpha_ce_on_d_f_by_hand():
    retain, y_r = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]]), torch.tensor([0, 2])
    forget, y_f = torch.tensor([[1.0, 3.0, 0.0]]), torch.tensor([1])

    def ce(rows, labels):
        return sum(math.log(sum(math.exp(v) for v in row)) - row[label] for row, label in zip(rows.tolist(), labels.tolist())) / len(rows)

    for alpha in (0.95, 0.5, 1.0, 0.0):
        expected = alpha * ce(retain, y_r) - (1 - alpha) * ce(forget, y_f)
        assert neggrad_plus_loss(retain, y_r, forget, y_f, alpha).item() == pytest.approx(expected, rel=1e-5)


def test_a_step_trains_on_one_d_r_and_one_d_f_batch_with_the_loss_by_hand_and_alpha_1_is_finetunes_loss():
    method = attached(NegGradPlus(alpha=0.9, budget={"batch_size": 32}))
    batch = batches(method)
    (x_r, y_r), (x_f, y_f) = batch[DESCENT], batch[ASCENT]
    assert len(x_r) == len(x_f) == 32 and (y_f == Y_F).all() and (y_r != Y_F).all()
    with torch.no_grad():
        expected = 0.9 * F.cross_entropy(method.model(x_r), y_r) - 0.1 * F.cross_entropy(method.model(x_f), y_f)
    assert method.training_step(batch, 0).item() == pytest.approx(expected.item(), rel=1e-5)

    plus, finetune = attached(NegGradPlus(alpha=1.0)), attached(FineTune())
    assert plus.training_step(batch, 0).item() == pytest.approx(finetune.training_step({"retain": (x_r, y_r)}, 0).item(), rel=1e-6)


def test_l2_to_original_adds_alpha_lambda_half_the_squared_distance_to_the_original_weights():
    plain, anchored = attached(NegGradPlus(alpha=0.8)), attached(NegGradPlus(alpha=0.8, l2_to_original=0.1))
    batch = batches(plain)
    assert anchored.training_step(batch, 0).item() == pytest.approx(plain.training_step(batch, 0).item(), rel=1e-6)  # at θ₀: 0
    with torch.no_grad():
        for p, q in zip(plain.model.parameters(), anchored.model.parameters()):
            p.add_(0.01)
            q.add_(0.01)
    n = sum(p.numel() for p in plain.model.parameters())
    gap = anchored.training_step(batch, 0).item() - plain.training_step(batch, 0).item()
    assert gap == pytest.approx(0.8 * 0.1 / 2 * n * 0.01**2, rel=1e-3)


def test_an_epoch_is_one_pass_over_d_r_with_d_f_restarted_whenever_it_runs_out():
    retain = DataLoader(TensorDataset(torch.arange(10.0), torch.zeros(10, dtype=torch.long)), batch_size=2, shuffle=True)
    forget = DataLoader(TensorDataset(torch.arange(100.0, 104.0), torch.ones(4, dtype=torch.long)), batch_size=3, shuffle=True)
    epoch = RetainCyclingForget(retain, forget, lambda: 0)
    steps = list(epoch)
    assert len(epoch) == len(steps) == 5 and sorted(torch.cat([s[DESCENT][0] for s in steps]).tolist()) == list(range(10))
    seen = torch.cat([s[ASCENT][0] for s in steps])
    assert [len(s[ASCENT][0]) for s in steps] == [3, 1, 3, 1, 3]  # passes of 3 + 1 rows, restarted
    assert sorted(seen[:4].tolist()) == sorted(seen[4:8].tolist()) == [100.0, 101.0, 102.0, 103.0]
    longer = RetainCyclingForget(forget, retain, lambda: 0)  # a longer D_f is not gone through: D_r defines the epoch
    assert len(list(longer)) == len(longer) == 2


def test_under_ddp_both_loaders_are_reshuffled_every_epoch():
    dataset = TensorDataset(torch.arange(40.0), torch.zeros(40, dtype=torch.long))
    samplers = [DistributedSampler(dataset, num_replicas=2, rank=0, shuffle=True) for _ in range(2)]
    retain, forget = (DataLoader(dataset, batch_size=20, sampler=s) for s in samplers)
    now = {"epoch": 0}
    epochs = RetainCyclingForget(retain, forget, lambda: now["epoch"])
    first = next(iter(epochs))
    now["epoch"] = 1
    second = next(iter(epochs))
    assert [s.epoch for s in samplers] == [1, 1] and not torch.equal(first[DESCENT][0], second[DESCENT][0])
    assert not torch.equal(first[ASCENT][0], second[ASCENT][0])


def test_forget_batch_size_sets_the_d_f_batches():
    method = attached(NegGradPlus(forget_batch_size=8, budget={"batch_size": 32}))
    batch = batches(method)
    assert len(batch[DESCENT][0]) == 32 and len(batch[ASCENT][0]) == 8


def test_augment_has_the_scenario_augment_both_batches():
    assert attached(NegGradPlus()).augmented_keys == () and attached(NegGradPlus(augment=True)).augmented_keys == (DESCENT, ASCENT)


def test_neggrad_plus_reads_the_forget_set_and_the_full_retain_set_only():
    method = attached(NegGradPlus())
    assert method.data_access == FORGET_AND_RETAIN and method.data.names == ("forget", "retain")
    with pytest.raises(DataAccessError, match="NegGradPlus declared access to forget set \\+ the full retain set and cannot read the 'test' split"):
        method.data["test"]
