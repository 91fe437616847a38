"""RL (OPTML's random labelling) on digits: a pass over D_f with labels redrawn per batch, then a pass over D_r with
its labels, every epoch; the run-seeded labels; the `mixed` set; DDP's reshuffle per epoch; the declared access."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from benchmark.core.errors import DataAccessError
from benchmark.experiment.runner import attach, run
from benchmark.metrics.evaluator import Evaluation
from benchmark.models.pretraining import Pretrained
from datamodules.access import FORGET_AND_RETAIN
from datamodules.scenarios import WholeClasses
from methods.rl import MIXED, RL, Passes

Y_F = 4
STEPS: list[tuple[int, str, torch.Tensor, torch.Tensor, float, float]] = []
"""Per training step of `Recording`: epoch, batch key, the batch's labels, the labels trained on, loss, CE by hand."""


class Recording(RL):
    def random_labels(self, count):
        self.drawn = super().random_labels(count)
        return self.drawn

    def training_step(self, batch, batch_idx):
        ((key, (x, y)),) = batch.items()
        loss = super().training_step(batch, batch_idx)
        used = self.drawn.to(y.device) if key == "forget" else y
        with torch.no_grad():  # (small_cnn: no BatchNorm, no dropout; the step comes after training_step)
            by_hand = F.cross_entropy(self.model(x), used).item()
        STEPS.append((self.current_epoch, key, y.cpu(), used.cpu(), loss.item(), by_hand))
        return loss


def attached(method: RL) -> RL:
    attach(method, WholeClasses(classes=[Y_F]), Pretrained(), Evaluation(mia=False), progress=False)
    return method


def test_each_epoch_is_a_forget_pass_with_labels_redrawn_per_batch_then_a_retain_pass_with_true_labels(tmp_path):
    STEPS.clear()
    method = Recording(budget={"max_epochs": 2, "batch_size": 64})
    record = run(method, WholeClasses(classes=[Y_F]), Pretrained(), results_dir=str(tmp_path), progress=False, evaluation=Evaluation(mia=False))
    n_f, n_r = len(method.data["forget"]), len(method.data["retain"])
    per_epoch = [math.ceil(n_f / 64) * ["forget"] + math.ceil(n_r / 64) * ["retain"]]
    assert [[key for epoch, key, *_ in STEPS if epoch == e] for e in (0, 1)] == 2 * per_epoch  # in sequence, never mixed
    assert record["timings"]["cost/steps"] == len(STEPS) == 2 * len(per_epoch[0])
    assert all(loss == pytest.approx(by_hand, rel=1e-5) for *_, loss, by_hand in STEPS)  # plain CE on the labels below
    forget = [(y, used) for _, key, y, used, *_ in STEPS if key == "forget"]
    assert sum(len(y) for y, _ in forget) == 2 * n_f and all((y == Y_F).all() for y, _ in forget)
    drawn = torch.cat([used for _, used in forget])
    generator = torch.Generator().manual_seed(0)  # (the run's seed): one draw of [0, K) per row, batch after batch
    assert torch.equal(drawn, torch.cat([torch.randint(10, (len(y),), generator=generator) for y, _ in forget]))
    assert set(drawn.tolist()) == set(range(10))  # all K classes, the true one included
    retain = [(y, used) for _, key, y, used, *_ in STEPS if key == "retain"]
    assert sum(len(y) for y, _ in retain) == 2 * n_r and all(torch.equal(y, used) for y, used in retain)


def test_the_random_labels_come_from_the_run_seed():
    def labels(seed: int) -> torch.Tensor:
        method = attached(RL())
        torch.manual_seed(seed)
        method.prepare(method.data)
        torch.rand(5)  # (draws from the global RNG do not change them)
        return method.random_labels(200)

    assert torch.equal(labels(3), labels(3)) and not torch.equal(labels(3), labels(4))


def test_mixed_joins_d_f_relabelled_once_per_epoch_with_d_r_into_one_shuffled_set(tmp_path):
    method = attached(RL(mode="mixed", budget={"batch_size": 64}))
    method.prepare(method.data)
    forget, retain = method.data["forget"], method.data["retain"]
    first, second, again = method.mixed_set(method.data, 0), method.mixed_set(method.data, 1), method.mixed_set(method.data, 0)
    assert torch.equal(first.datasets[0].images, forget.images) and first.datasets[1] is retain
    labels = first.datasets[0].targets
    assert len(labels) == len(forget) and labels.min() >= 0 and labels.max() < 10 and (labels != Y_F).any()
    assert torch.equal(again.datasets[0].targets, labels) and not torch.equal(second.datasets[0].targets, labels)

    STEPS.clear()
    recording = Recording(mode="mixed", budget={"max_epochs": 2, "batch_size": 64})
    record = run(recording, WholeClasses(classes=[Y_F]), Pretrained(), results_dir=str(tmp_path), progress=False, evaluation=Evaluation(mia=False))
    assert {key for _, key, *_ in STEPS} == {MIXED}
    assert record["timings"]["cost/steps"] == len(STEPS) == 2 * math.ceil((len(forget) + len(retain)) / 64)
    assert all(loss == pytest.approx(by_hand, rel=1e-5) for *_, loss, by_hand in STEPS)
    for epoch in (0, 1):  # each epoch trains on D_r's labels and that epoch's draw for D_f, each row once
        trained = torch.cat([y for e, _, y, *_ in STEPS if e == epoch])
        expected = torch.cat([retain.targets, recording.epoch_labels[epoch]])
        assert torch.equal(torch.bincount(trained, minlength=10), torch.bincount(expected, minlength=10))
    assert not torch.equal(recording.epoch_labels[0], recording.epoch_labels[1])


def test_under_ddp_each_pass_is_reshuffled_every_epoch():
    dataset = TensorDataset(torch.arange(40.0), torch.zeros(40, dtype=torch.long))
    sampler = DistributedSampler(dataset, num_replicas=2, rank=0, shuffle=True)
    loader = DataLoader(dataset, batch_size=40, sampler=sampler)
    epoch = {"now": 0}
    passes = Passes(lambda e: [("retain", loader)], 1, lambda: epoch["now"])
    orders = []
    for now in (0, 1):
        epoch["now"] = now
        orders.append(next(iter(passes))["retain"][0])
    sampler.set_epoch(1)
    assert sampler.epoch == 1 and torch.equal(orders[1], next(iter(loader))[0]) and not torch.equal(orders[0], orders[1])


def test_rl_reads_the_forget_set_and_the_full_retain_set_only():
    method = attached(RL())
    assert method.data_access == FORGET_AND_RETAIN and method.data.names == ("forget", "retain")
    with pytest.raises(DataAccessError, match="RL declared access to forget set \\+ the full retain set and cannot read the 'test' split"):
        method.data["test"]
