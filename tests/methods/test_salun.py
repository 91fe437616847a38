"""SalUn on digits: the forget-gradient saliency by hand, the global top-ratio mask, the frozen entries held exactly under
SGD with momentum and weight decay (Unlearn-Saliency #33) or moved by them (`freeze="gradient"`), and the access."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from benchmark.core.errors import DataAccessError, UnlearnBenchError
from benchmark.experiment.runner import attach, run
from benchmark.metrics.evaluator import Evaluation
from benchmark.models.pretraining import Pretrained
from datamodules.access import FORGET_AND_RETAIN
from datamodules.scenarios import WholeClasses
from methods.blocks.saliency import forget_gradient_magnitudes, restore_outside_mask_
from methods.salun import SalUn

Y_F = 4
SGD = {"class_path": "torch.optim.SGD", "init_args": {"lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4}}


def attached(method: SalUn) -> SalUn:
    attach(method, WholeClasses(classes=[Y_F]), Pretrained(), Evaluation(mia=False), progress=False)
    return method


def test_the_saliency_is_the_magnitude_of_the_summed_forget_gradient_of_minus_ce_in_evaluation_mode():
    model = nn.Sequential(nn.BatchNorm1d(1), nn.Linear(1, 2, bias=False))
    nn.init.zeros_(model[1].weight)  # p = (½, ½) everywhere
    before = {name: b.clone() for name, b in model.state_dict().items()}
    batches = [(torch.tensor([[1.0]]), torch.tensor([0])), (torch.tensor([[2.0]]), torch.tensor([0]))]  # (1 row: train-mode BN fails)
    # ∂(−CE)/∂w = −(p − e_y) x̂ = (½, −½) x̂ with x̂ = x / √(1 + ε) (running mean 0, variance 1): summed (1.5, −1.5) / √(1 + ε)
    scale = 1.5 / math.sqrt(1 + model[0].eps)
    assert torch.allclose(forget_gradient_magnitudes(model, batches)["1.weight"], torch.tensor([[scale], [scale]]))
    opposite = [(torch.tensor([[1.0]]), torch.tensor([0])), (torch.tensor([[1.0]]), torch.tensor([1]))]
    assert torch.equal(forget_gradient_magnitudes(model, opposite)["1.weight"], torch.zeros(2, 1))  # |Σ g|, not Σ |g|
    assert model.training and all(torch.equal(b, before[name]) for name, b in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_the_mask_holds_round_ratio_n_entries_of_largest_saliency_over_all_parameters_together():
    method = attached(SalUn(ratio=0.3, budget={"batch_size": 64}))
    method.prepare(method.data)
    total = sum(p.numel() for p in method.model.parameters())
    assert method.cost["cost/salient"] == round(0.3 * total) == sum(int(m.sum()) for m in method.masks.values())
    assert method.cost["cost/mask_fraction"] == pytest.approx(0.3, abs=1 / total)
    assert set(method.masks) == {name for name, _ in method.model.named_parameters()}  # biases and head included
    forget = method.data["forget"]
    magnitudes = forget_gradient_magnitudes(method.model, DataLoader(forget, batch_size=64, collate_fn=getattr(forget, "collate_fn", None)))
    inside = torch.cat([magnitudes[name][mask] for name, mask in method.masks.items()])
    outside = torch.cat([magnitudes[name][~mask] for name, mask in method.masks.items()])
    assert inside.min() >= outside.max()  # one global ranking, not per tensor
    assert sum(bool(m.any()) for m in method.masks.values()) > 1 and not all(m.all() for m in method.masks.values())
    again = attached(SalUn(ratio=0.3, budget={"batch_size": 64}))
    again.prepare(again.data)
    assert again.mask_hash == method.mask_hash


@pytest.mark.parametrize("freeze", ["weights", "gradient"])
def test_entries_outside_the_mask_stay_bit_identical_under_momentum_and_weight_decay_unless_only_gradients_are_masked(freeze, tmp_path):
    method = SalUn(ratio=0.3, freeze=freeze, optimizer=SGD, budget={"max_epochs": 2, "batch_size": 64})
    run(method, WholeClasses(classes=[Y_F]), Pretrained(), results_dir=str(tmp_path), progress=False, evaluation=Evaluation(mia=False))
    original = dict(method.original.named_parameters())
    frozen_moved, salient_moved = [], []
    for name, p in method.model.named_parameters():
        moved = p.detach() != original[name]
        frozen_moved.append(moved[~method.masks[name]])
        salient_moved.append(moved[method.masks[name]])
    frozen, salient = torch.cat(frozen_moved).float().mean(), torch.cat(salient_moved).float().mean()
    assert salient > 0.99
    if freeze == "weights":
        assert frozen == 0  # bit-identical to the original
    else:
        assert frozen > 0.99  # weight decay (and the momentum it feeds) moves every non-zero entry


def test_restoring_puts_frozen_entries_back_and_clears_their_optimizer_state_only():
    model = nn.Linear(3, 1, bias=False)
    masks = {"weight": torch.tensor([[True, False, True]])}
    anchor = {"weight": model.weight.detach().clone()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    stepped = model.weight.detach().clone()
    restore_outside_mask_(model, masks, anchor, optimizer)
    buffer = optimizer.state[model.weight]["momentum_buffer"]
    assert torch.equal(model.weight[0, 1], anchor["weight"][0, 1]) and buffer[0, 1] == 0
    assert torch.equal(model.weight[0, [0, 2]], stepped[0, [0, 2]]) and (buffer[0, [0, 2]] != 0).all()


def test_salun_reads_the_forget_set_and_the_full_retain_set_only_and_refuses_an_empty_mask():
    method = attached(SalUn())
    assert method.data_access == FORGET_AND_RETAIN and method.data.names == ("forget", "retain")
    with pytest.raises(DataAccessError, match="SalUn declared access to forget set \\+ the full retain set and cannot read the 'test' split"):
        method.data["test"]
    with pytest.raises(UnlearnBenchError, match="SalUn.ratio = 0 is not allowed"):
        SalUn(ratio=0.0)
    with pytest.raises(UnlearnBenchError, match="SalUn.ratio"):
        SalUn(ratio=1.5)
