"""Seed 004's intention labels (`methods.blocks.objectives`) against hand computations: negative learning and an
untrained model's response."""

import math

import torch

from datamodules.datasets import load_dataset
from methods.blocks.objectives import negative_learning_loss, untrained_targets


def test_negative_learning_is_minus_log_one_minus_p_label_per_row():
    logits = torch.tensor([[0.5, -1.0, 2.0, 0.0], [1.0, 1.0, 1.0, 1.0], [-3.0, 4.0, 0.2, 1.5]])
    p = torch.softmax(logits.double(), dim=-1)
    for label in (0, 2):  # one label for every row
        naive = -torch.log(1 - p[:, label])
        assert torch.allclose(negative_learning_loss(logits, label).double(), naive, atol=1e-6)
    labels = torch.tensor([2, 0, 1])  # one per row
    naive = -torch.log(1 - p[torch.arange(3), labels])
    assert torch.allclose(negative_learning_loss(logits, labels).double(), naive, atol=1e-6)
    assert math.isclose(negative_learning_loss(logits[1:2], 3).item(), -math.log(3 / 4), rel_tol=1e-6)  # p = 1/4 each


def test_negative_learning_stays_finite_where_the_naive_form_is_infinite():
    logits = torch.tensor([[100.0, 0.0, 0.0]], requires_grad=True)
    naive = -torch.log(1 - torch.softmax(logits, dim=-1)[:, 0])
    assert torch.isinf(naive).all()  # p_0 rounds to 1 in float32
    loss = negative_learning_loss(logits, 0)
    assert math.isclose(loss.item(), 100 - math.log(2), rel_tol=1e-6)  # −log(2e⁻¹⁰⁰ / (1 + 2e⁻¹⁰⁰))
    loss.sum().backward()
    assert torch.isfinite(logits.grad).all() and logits.grad[0, 0] > 0  # pushes the label's logit down


def test_untrained_targets_are_a_seeded_models_softmax_or_its_arg_max():
    info = load_dataset("digits").info
    x = torch.rand(6, 1, 8, 8)
    soft = untrained_targets("small_cnn", info, 3, x)
    assert soft.shape == (6, 10) and torch.allclose(soft.sum(1), torch.ones(6)) and soft.max() < 0.9  # a model that learnt nothing
    assert torch.equal(untrained_targets("small_cnn", info, 3, x), soft)  # the seed fixes it
    assert not torch.allclose(untrained_targets("small_cnn", info, 4, x), soft)  # another seed, another model
    hard = untrained_targets("small_cnn", info, 3, x, soft=False)
    assert torch.equal(hard, torch.nn.functional.one_hot(soft.argmax(1), 10).float())
    before = torch.get_rng_state()
    untrained_targets("small_cnn", info, 5, x)
    assert torch.equal(torch.get_rng_state(), before)  # the global generator is left as it was
