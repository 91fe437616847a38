"""BS (boundary shrinking) on digits: FGSM by hand, the labels are the frozen original's prediction on FGSM(x, 0.1),
the original never changes, the declared access, and that D_f moves to those labels."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import methods.boundary_shrink as boundary_shrink
from benchmark.experiment.runner import run
from benchmark.metrics.evaluator import Evaluation
from benchmark.models.pretraining import Pretrained, build_model
from benchmark.training import TRAINER_DEFAULTS, fit
from datamodules.access import FORGET_ONLY
from datamodules.scenarios import WholeClasses
from methods.boundary_shrink import BS, fgsm, neighbour_labels
from tests.methods import fixtures

Y_F = 9


def attached(method: BS) -> BS:
    """`method` with an untrained small CNN as the original (no pretraining)."""
    return fixtures.attached(method, WholeClasses(classes=[Y_F]), fresh_seed=1)


@pytest.mark.parametrize("discretize", [True, False])
def test_fgsm_is_one_signed_gradient_step_clamped_to_pixels(discretize):
    model = nn.Linear(4, 3)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -2.0, 0.5, 0.0], [0.0, 1.0, -1.0, 2.0], [-1.0, 0.0, 1.0, 1.0]]))
        model.bias.zero_()
    x, y = torch.tensor([[0.95, 0.5, 0.02, 0.3], [0.2, 0.6, 0.7, 0.999]]), torch.tensor([0, 2])
    p = F.softmax(model(x), dim=-1).detach()
    grad = (p - F.one_hot(y, 3)) @ model.weight.detach() / len(x)  # ∂ mean CE / ∂x of a linear model
    expected = (x + 0.1 * grad.sign()).clamp(0, 1)
    expected = torch.round(expected * 255) / 255 if discretize else expected
    assert torch.allclose(fgsm(model, x, y, 0.1, discretize), expected, atol=1e-7)
    assert model.weight.grad is None


def test_the_labels_are_the_frozen_originals_prediction_on_fgsm_images_and_the_original_never_changes():
    method = attached(BS(optimizer={"init_args": {"lr": 0.01}}, budget={"max_epochs": 2, "batch_size": 64}))
    before = {name: value.clone() for name, value in method.original.state_dict().items()}
    seen = []

    def recording(original, x, y, bound, discretize):
        labels = neighbour_labels(original, x, y, bound, discretize)
        seen.append((x, y, labels))
        return labels

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(boundary_shrink, "neighbour_labels", recording)
        pl.seed_everything(0, verbose=False)
        fit(method, WholeClasses(classes=[Y_F]), pl.Trainer(**TRAINER_DEFAULTS, accelerator="cpu", devices=1, enable_progress_bar=False))
    assert len(seen) == 2 * 3  # every batch of D_f (180 images), every epoch
    reference = build_model("small_cnn", method.data.info, 1).eval()  # the original, rebuilt
    for x, y, labels in seen:
        x_adv = x.clone().requires_grad_(True)
        F.cross_entropy(reference(x_adv), y).backward()
        expected = reference((torch.round((x + 0.1 * x_adv.grad.sign()).clamp(0, 1) * 255) / 255)).argmax(1)
        assert torch.equal(labels, expected)
    assert any(bool((labels != y).any()) for _, y, labels in seen)
    assert all(torch.equal(value, before[name]) for name, value in method.original.state_dict().items())  # the original never changes
    assert not any(p.requires_grad or p.grad is not None for p in method.original.parameters())
    assert not all(torch.equal(p, q) for p, q in zip(method.model.parameters(), method.original.parameters()))


def test_bs_reads_the_forget_set_only():
    method = attached(BS())
    assert BS.data_access == FORGET_ONLY
    fixtures.assert_reads_only(method, ("forget",))


def test_the_forget_images_move_to_their_neighbour_class_and_the_retain_set_stays(tmp_path):
    method = BS(optimizer={"init_args": {"lr": 1e-4}}, budget={"max_epochs": 3, "batch_size": 64})
    record = run(method, WholeClasses(classes=[Y_F]), Pretrained(), results_dir=str(tmp_path), progress=False, evaluation=Evaluation(mia=False))
    x, y = next(iter(method.data.loader("forget", 1000, shuffle=False)))[:2]
    labels = neighbour_labels(method.original, x, y, 0.1)
    crossed = labels != y  # FGSM crossed a boundary (about half of the 9s at 0.1)
    with torch.no_grad():
        before, after = method.original(x).argmax(1), method.model.eval()(x).argmax(1)
    assert 0.2 < crossed.float().mean() < 0.8 and (before[crossed] == labels[crossed]).float().mean() == 0
    assert (after[crossed] == labels[crossed]).float().mean() > 0.5 and record["metrics"]["retain/acc"] > 0.95
