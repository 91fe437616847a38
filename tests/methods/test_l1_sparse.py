"""L1Sparse (OPTML's ℓ1-sparse unlearning) on digits: the α_t schedule, the loss CE + α_t ‖θ‖₁ at every step of a run,
and the declared access."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from benchmark.core.errors import DataAccessError, UnlearnBenchError
from benchmark.experiment.runner import attach, run
from benchmark.metrics.evaluator import Evaluation
from benchmark.models.pretraining import Pretrained
from datamodules.access import RETAIN_FULL
from datamodules.scenarios import WholeClasses
from methods.l1_sparse import L1Sparse, decayed_alpha

STEPS: list[tuple[int, float, float, float]] = []
"""Per training step of `Recording`: epoch, loss, CE by hand, ‖θ‖₁ by hand (before the step)."""


class Recording(L1Sparse):
    def training_step(self, batch, batch_idx):
        x, y = batch["retain"]
        with torch.no_grad():  # (small_cnn: no BatchNorm, no dropout)
            ce = F.cross_entropy(self.model(x), y).item()
            l1 = sum(p.abs().sum().item() for p in self.model.parameters())
        loss = super().training_step(batch, batch_idx)
        STEPS.append((self.current_epoch, loss.item(), ce, l1))
        return loss


def test_alpha_decays_linearly_per_epoch_and_is_zero_in_the_last_no_l1_epochs():
    assert [decayed_alpha(1.0, t, 10) for t in range(10)] == pytest.approx([1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
    assert [decayed_alpha(3e-4, t, 5, no_l1_epochs=2) for t in range(5)] == pytest.approx([3e-4, 2e-4, 1e-4, 0.0, 0.0])


def test_the_loss_is_ce_plus_alpha_t_times_the_l1_norm_of_all_parameters_at_every_step(tmp_path):
    STEPS.clear()
    method = Recording(alpha=0.01, no_l1_epochs=1, budget={"max_epochs": 3, "batch_size": 256})
    record = run(method, WholeClasses(classes=[4]), Pretrained(), results_dir=str(tmp_path), progress=False, evaluation=Evaluation(mia=False))
    alpha_t = {0: 0.01, 1: 0.005, 2: 0.0}
    assert {epoch for epoch, *_ in STEPS} == {0, 1, 2} and record["timings"]["cost/steps"] == len(STEPS)
    for epoch, loss, ce, l1 in STEPS:
        assert loss == pytest.approx(ce + alpha_t[epoch] * l1, rel=1e-5)
    assert all(alpha_t[epoch] * l1 > ce for epoch, _, ce, l1 in STEPS if epoch == 0)  # (the penalty is no rounding error here)


def test_l1_sparse_reads_the_full_retain_set_only_and_needs_an_epoch_with_the_penalty():
    method = L1Sparse()
    attach(method, WholeClasses(classes=[4]), Pretrained(), Evaluation(mia=False), progress=False)
    assert method.data_access == RETAIN_FULL and method.data.names == ("retain",)
    with pytest.raises(DataAccessError, match="L1Sparse declared access to the full retain set and cannot read the 'forget' split"):
        method.data["forget"]
    with pytest.raises(UnlearnBenchError, match="L1Sparse.no_l1_epochs = 3 leaves no epoch of the 3"):
        L1Sparse(no_l1_epochs=3, budget={"max_epochs": 3})
