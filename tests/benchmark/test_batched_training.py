"""Batched shadow training: the same models as training them one after another, in one vmapped step."""

import pytest
import torch
from torch import nn

from benchmark.audits.batched_training import data_orders, train_models
from benchmark.models.pretraining import Recipe, build_model
from datamodules.datasets import load_dataset


@pytest.fixture(scope="module")
def digits():
    data = load_dataset("digits")
    return type(data)(data.train.subset(range(400)), data.test, data.info)


def _max_difference(a: nn.Module, b: nn.Module) -> float:
    return max((p - q).abs().max().item() for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


@pytest.mark.parametrize("recipe", [
    Recipe(epochs=2, batch_size=128, optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=5e-4, schedule="cosine"),
    Recipe(epochs=1, batch_size=200, optimizer="adam", lr=1e-3, schedule="constant"),
], ids=["sgd", "adam"])
def test_batched_equals_one_after_another(digits, recipe):
    seeds = [3, 7]
    batched = train_models("small_cnn", digits.info, digits.train, recipe, seeds, batched=True)
    sequential = train_models("small_cnn", digits.info, digits.train, recipe, seeds, batched=False)
    for a, b, seed in zip(batched, sequential, seeds, strict=True):
        assert _max_difference(a, b) < 1e-4
        assert _max_difference(a, build_model("small_cnn", digits.info, seed)) > 1e-3  # it trained


def test_each_model_has_its_own_initialisation_and_data_order(digits):
    orders = data_orders(10, [1, 2], epochs=2)
    assert sorted(orders[0, 0].tolist()) == list(range(10))
    assert not torch.equal(orders[0, 0], orders[1, 0]) and not torch.equal(orders[0, 0], orders[0, 1])
    assert torch.equal(orders, data_orders(10, [1, 2], epochs=2))
    recipe = Recipe(epochs=1, batch_size=512, optimizer="sgd", lr=0.0)
    untouched = train_models("small_cnn", digits.info, digits.train, recipe, [1, 2])
    assert _max_difference(untouched[0], build_model("small_cnn", digits.info, 1)) == 0.0
    assert _max_difference(untouched[0], untouched[1]) > 0.0


def test_batch_norm_models_train_batched_as_one_after_another(digits):
    """Each model's BatchNorm normalises by its own batch and keeps its own running statistics (the peers' tracks'
    models have BatchNorm: U-LiRA's shadows are those models)."""
    recipe = Recipe(epochs=2, batch_size=128, optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=5e-4, schedule="cosine")
    seeds = [3, 7]
    batched = train_models("narrow_cnn_bn", digits.info, digits.train, recipe, seeds, batched=True)
    sequential = train_models("narrow_cnn_bn", digits.info, digits.train, recipe, seeds, batched=False)
    for a, b, seed in zip(batched, sequential, seeds, strict=True):
        assert _max_difference(a, b) < 1e-4
        fresh = build_model("narrow_cnn_bn", digits.info, seed).state_dict()
        stats = {k: v for k, v in a.state_dict().items() if "running_" in k}
        assert stats and all((v - fresh[k]).abs().max() > 1e-3 for k, v in stats.items())  # updated, per model
        assert all(int(v) == 2 * 4 for k, v in a.state_dict().items() if k.endswith("num_batches_tracked"))  # 2 epochs of 4 batches
    assert _max_difference(batched[0], batched[1]) > 1e-3
