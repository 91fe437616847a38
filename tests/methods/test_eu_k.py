"""EUk (exact unlearning of the last k blocks) on digits, from an untrained, shifted `narrow_cnn_bn` of seed 1 as the
original and `Pretrained(seed=0)`: the reset blocks are the seed-0 initialisation bit for bit, the others the original's."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch

from benchmark.core.errors import DataAccessError
from benchmark.metrics.evaluator import Evaluation
from benchmark.models.pretraining import RECIPES, Pretrained, build_model
from benchmark.training import TRAINER_DEFAULTS, attach_model, fit
from datamodules.access import RETAIN_FULL
from datamodules.scenarios import WholeClasses
from methods.eu_k import EUk

ARCH = "narrow_cnn_bn"
RESET = ("backbone.7.", "backbone.8.", "head.")
"""The last block (FC-256 + BatchNorm1d) and the head."""
PRETRAINED = Pretrained(arch=ARCH, seed=0)
ORIGINAL_SEED = 1
"""Not the pretraining seed: the original's weights are not the initialisation's."""


def attached(method: EUk) -> EUk:
    """`method` with an "original" every floating tensor of which (BatchNorm's constant initialisation and running
    statistics included) differs from any initialisation: a seed-1 `build_model` shifted by 0.5."""
    scenario = WholeClasses(classes=[9])
    scenario.setup()
    original = build_model(ARCH, scenario.info, ORIGINAL_SEED)
    with torch.no_grad():
        for value in original.state_dict().values():
            if value.is_floating_point():
                value.add_(0.5)
    attach_model(method, original, scenario, PRETRAINED, Evaluation(mia=False))
    return method


def state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.clone() for name, value in module.state_dict().items()}


def test_the_reset_blocks_are_the_originals_initialisation_and_the_others_the_original():
    method = attached(EUk())
    initial, original = state(build_model(ARCH, method.data.info, PRETRAINED.seed)), state(method.original)
    assert all(torch.equal(value, original[name]) for name, value in state(method.model).items())  # nothing reset before `prepare`
    method.prepare(method.data)
    after = state(method.model)
    for name, value in after.items():
        if name.startswith(RESET):
            assert torch.equal(value, initial[name]), name  # parameters and buffers (BatchNorm1d's statistics)
            assert not value.is_floating_point() or not torch.equal(value, original[name]), name
        else:
            assert torch.equal(value, original[name]), name


def test_training_moves_the_reset_blocks_and_nothing_else():
    method = attached(EUk(budget={"max_epochs": 1}))
    original = state(method.original)
    pl.seed_everything(0, verbose=False)
    fit(method, WholeClasses(classes=[9]), pl.Trainer(**TRAINER_DEFAULTS, accelerator="cpu", devices=1, enable_progress_bar=False))
    initial = state(build_model(ARCH, method.data.info, PRETRAINED.seed))
    for name, value in state(method.model).items():
        if name.startswith(RESET):
            assert not torch.equal(value, initial[name]), name
        else:
            assert torch.equal(value, original[name]), name
    assert int(method.model.backbone[1].num_batches_tracked) == 0  # the frozen blocks' BatchNorm in evaluation mode


def test_head_frozen_is_neither_reset_nor_trained():
    method = attached(EUk(head="frozen"))
    method.prepare(method.data)
    assert torch.equal(method.model.head.weight, method.original.head.weight) and not method.model.head.weight.requires_grad
    assert not torch.equal(method.model.backbone[7].weight, method.original.backbone[7].weight)


def test_recipe_epochs_trains_as_long_as_the_original():
    assert attached(EUk()).num_epochs() == 10 and EUk(recipe_epochs=True).num_epochs() == 10  # (not attached: the budget's)
    assert attached(EUk(recipe_epochs=True)).num_epochs() == RECIPES.get("digits").epochs == 30


def test_euk_reads_the_retain_set_only():
    method = attached(EUk())
    assert EUk.data_access == RETAIN_FULL and method.data.names == ("retain",)
    with pytest.raises(DataAccessError, match="EUk declared access to the full retain set and cannot read the 'forget' split"):
        method.data["forget"]
