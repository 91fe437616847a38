"""Seed 004's model inversion (§4.1, Apps. A and F): each loss against a hand computation, the hooks' statistics,
the generator's outputs, and a few steps of `invert` on a tiny BatchNorm classifier."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.core.errors import UnlearnBenchError
from benchmark.models import create_model
from methods.blocks.inversion import (
    ConditionalGenerator,
    FeatureHooks,
    InversionSettings,
    augmentation_loss,
    bn_loss,
    diversity_loss,
    entropy_loss,
    invert,
    layer_statistics,
    running_statistics,
    target_loss,
    tv_loss,
)


def bn_classifier():
    """`narrow_cnn_bn` on 8×8 grey images (BatchNorm2d, BatchNorm1d, a linear head) fitted in 20 Adam steps to three
    classes of noisy images (bright left half, right half, top half), left in training mode (`invert` must restore
    it), with D_e: six images of class 1."""
    torch.manual_seed(0)
    model = create_model("narrow_cnn_bn", num_classes=3, in_chans=1, image_size=8)
    y = torch.arange(96) % 3
    patterns = torch.zeros(3, 1, 8, 8)
    patterns[0, ..., :4], patterns[1, ..., 4:], patterns[2, ..., :4, :] = 1.0, 1.0, 1.0
    x = 0.6 * patterns[y] + 0.4 * torch.rand(96, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(20):
        optimizer.zero_grad()
        F.cross_entropy(model.train()(x), y).backward()
        optimizer.step()
    model.zero_grad(set_to_none=True)
    return model, x[y == 1][:6]


def test_tv_is_zero_on_a_constant_image_and_the_hand_sum_on_2x2():
    assert tv_loss(torch.full((2, 3, 5, 5), 0.7)).item() == 0.0
    image = torch.tensor([[[[0.0, 1.0], [2.0, 4.0]]]])
    # right neighbours (0,1), (2,4): 1 + 4; lower neighbours (0,2), (1,4): 4 + 9
    assert tv_loss(image).item() == 18.0
    two = torch.cat([image, torch.zeros_like(image)])
    assert tv_loss(two).item() == 9.0 and tv_loss(two, reduction="sum").item() == 18.0
    rgb = image.expand(1, 3, 2, 2)  # ‖·‖²₂ over the channels: three times the grey value
    assert tv_loss(rgb).item() == 54.0


def test_augmentation_loss_is_zero_for_identity_and_the_hand_value_for_a_swap():
    model = nn.Flatten()  # logits = the input's two values
    x = torch.tensor([[1.0, 0.0]])
    assert augmentation_loss(model, x, [lambda t: t]).item() == 0.0
    swap = lambda t: t.flip(-1)  # noqa: E731  changes the prediction from class 0 to class 1
    p = torch.softmax(torch.tensor([1.0, 0.0]), 0)
    hand = 2 * (p[0] - p[1]).item() ** 2
    assert augmentation_loss(model, x, [swap]).item() == pytest.approx(hand, rel=1e-6)
    assert augmentation_loss(model, x, [swap, lambda t: t]).item() == pytest.approx(hand, rel=1e-6)
    assert augmentation_loss(model, x, []).item() == 0.0


def test_target_loss_is_zero_for_the_targets_themselves_and_channel_differs_from_full():
    model, d_e = bn_classifier()
    with FeatureHooks(model) as hooks, torch.no_grad():
        target = hooks.capture(d_e).stats
        same = hooks.capture(torch.cat([torch.rand(5, 1, 8, 8), d_e]), subset=torch.arange(11) >= 5).subset_stats
        other = hooks.capture(torch.rand(6, 1, 8, 8)).stats
    assert set(target) == {"backbone.1", "backbone.4", "backbone.8"}
    for reduce in ("channel", "full"):
        assert target_loss(same, target, reduce).item() == pytest.approx(0.0, abs=1e-10)
        assert target_loss(other, target, reduce).item() > 1e-4
    # one layer, one channel, inputs [0, 2] against [1, 1]: equal channel means, different sample means
    generated, wanted = layer_statistics(torch.tensor([[[0.0, 2.0]]])), layer_statistics(torch.tensor([[[1.0, 1.0]]]))
    assert target_loss({"l": generated}, {"l": wanted}, "channel").item() == 0.0
    assert target_loss({"l": generated}, {"l": wanted}, "full").item() == 2.0


def test_bn_loss_is_zero_on_a_batch_matching_the_running_statistics_and_the_hand_value_otherwise():
    bn = nn.BatchNorm2d(2)
    bn.running_mean.copy_(torch.tensor([0.5, -1.0]))
    bn.running_var.copy_(torch.tensor([4.0, 0.25]))
    running = running_statistics(nn.Sequential(bn))
    # channel c: m_c ± s_c, twice each → mean m_c, biased variance s_c² (the unbiased one would be 4/3 s_c²)
    signs = torch.tensor([1.0, -1.0, 1.0, -1.0]).view(4, 1, 1, 1)
    exact = torch.tensor([0.5, -1.0]).view(1, 2, 1, 1) + signs * torch.tensor([2.0, 0.5]).view(1, 2, 1, 1)
    assert bn_loss({"0": layer_statistics(exact)}, running).item() == 0.0
    shifted = exact + torch.tensor([1.0, 0.0]).view(1, 2, 1, 1)  # channel 0 mean 1.5 (off by 1), variances equal
    scaled = exact * torch.tensor([1.0, 2.0]).view(1, 2, 1, 1)  # channel 1 mean −2 (off by 1), variance 1 (off by 0.75)
    assert bn_loss({"0": layer_statistics(shifted)}, running).item() == 1.0
    assert bn_loss({"0": layer_statistics(scaled)}, running).item() == pytest.approx(1.0 + 0.75**2)


def test_feature_hooks_record_biased_statistics_and_the_head_input_without_changing_the_model():
    model, _ = bn_classifier()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(7, 1, 8, 8)
    with FeatureHooks(model) as hooks, torch.no_grad():
        out = hooks.capture(x)
        assert not model.training
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with torch.no_grad():
        model.eval()
        conv = model.backbone[0](model.normalize(x))
        torch.testing.assert_close(out.features, model.features(x))
        torch.testing.assert_close(out.logits, model(x))
    torch.testing.assert_close(out.stats["backbone.1"].mean, conv.mean((0, 2, 3)))
    torch.testing.assert_close(out.stats["backbone.1"].var, conv.var((0, 2, 3), unbiased=False))


def test_statistics_of_layer_norm_inputs_are_per_embedding_channel():
    tokens = torch.arange(24.0).view(2, 3, 4)  # [N, L, D], LayerNorm over D
    model = nn.Sequential(nn.LayerNorm(4), nn.Flatten(), nn.Linear(12, 2))
    with FeatureHooks(model) as hooks, torch.no_grad():
        stats = hooks.capture(tokens).stats["0"]
    torch.testing.assert_close(stats.mean, tokens.mean((0, 1)))
    assert stats.sample_mean.shape == (3, 4)


def test_diversity_default_is_finite_where_the_printed_sum_underflows():
    g = torch.Generator().manual_seed(0)
    z, fe = torch.randn(128, 64, generator=g), torch.rand(128, 256, generator=g)
    y = torch.randint(0, 11, (128,), generator=g)
    assert diversity_loss(z, fe, y, reduce="sum").item() == 0.0
    default = diversity_loss(z, fe, y)
    assert 0.0 < default.item() < 1.0
    # hand: two pairs of the same condition (0, 1) and (2, 3) → the mean over the ordered pairs of each group
    z = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0], [0.0, 1.0]])
    fe = torch.tensor([[0.0, 0.0], [0.2, 0.4], [1.0, 1.0], [1.0, 1.0]])
    y = torch.tensor([0, 0, 5, 5])
    assert diversity_loss(z, fe, y).item() == pytest.approx(math.exp(-(5 * 0.3 + 5 * 0.3 + 0 + 0) / 4))
    assert diversity_loss(z, fe, y, reduce="sum").item() == pytest.approx(math.exp(-2 * 5 * 0.6))
    assert diversity_loss(z, fe, torch.arange(4)).item() == 1.0


def test_entropy_loss_scores_y_plus_against_the_target_label():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0], [0.0, 0.0, 3.0]])
    y = torch.tensor([0, 3, 2])  # 3 = y⁺ for three classes
    hand = -(torch.log_softmax(logits, 1)[torch.arange(3), torch.tensor([0, 1, 2])]).mean()
    assert entropy_loss(logits, y, y_plus_label=1).item() == pytest.approx(hand.item())
    assert entropy_loss(logits, y, y_plus_label=0).item() != pytest.approx(hand.item())


@pytest.mark.parametrize(("size", "channels"), [(8, 1), (28, 1), (32, 3), (30, 3)])
def test_generator_outputs_pixels_of_the_image_shape(size, channels):
    torch.manual_seed(0)
    g = ConditionalGenerator(z_dim=16, channels=channels, image_size=size, num_classes=4, width=8)
    y = torch.tensor([0, 1, 2, 3, g.y_plus])
    x = g(torch.randn(5, 16), y)
    assert x.shape == (5, channels, size, size)
    assert x.min().item() >= 0.0 and x.max().item() <= 1.0


def flip(x: torch.Tensor) -> torch.Tensor:
    return x.flip(-1)


def mean(key: str, history: list[dict[str, float]]) -> float:
    return sum(losses[key] for losses in history) / len(history)


def test_invert_lowers_the_loss_and_leaves_the_model_as_it_was():
    model, d_e = bn_classifier()
    model.head.weight.requires_grad_(False)  # a flag that must come back as it was, not as True
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    history: list[dict[str, float]] = []
    settings = InversionSettings(steps=30, batch_size=16, z_dim=8, width=8, lr=1e-2)
    g = invert(model, settings, d_e=d_e, y_e=1, transforms=[flip], generator=torch.Generator().manual_seed(0),
               on_step=lambda step, losses: history.append(losses))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert {name: p.requires_grad for name, p in model.named_parameters()} == flags
    assert model.training and all(m.training for m in model.modules())
    assert all(p.grad is None for p in model.parameters())
    assert len(history) == 30 and set(history[0]) == {"tv", "div", "ent", "aug", "tar", "bn", "total"}
    assert mean("total", history[-5:]) < 0.5 * mean("total", history[:5])
    assert isinstance(g, ConditionalGenerator) and not g.training and g.num_classes == 3


def test_invert_on_cross_entropy_alone_lowers_it_and_is_reproducible():
    model, d_e = bn_classifier()
    settings = InversionSettings(steps=20, batch_size=16, z_dim=8, width=8, lr=1e-2, w_tv=0, w_div=0, w_aug=0, w_tar=0, w_bn=0)
    history: list[dict[str, float]] = []
    g = invert(model, settings, d_e=d_e, y_e=1, transforms=[], generator=torch.Generator().manual_seed(0),
               on_step=lambda step, losses: history.append(losses))
    assert set(history[0]) == {"ent", "total"}
    assert mean("ent", history[-5:]) < 0.5 * mean("ent", history[:5])
    state = torch.get_rng_state()
    again = invert(model, settings, d_e=d_e, y_e=1, transforms=[], generator=torch.Generator().manual_seed(0))
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is forked, not advanced
    z, y = torch.randn(4, 8), torch.tensor([0, 1, 2, 3])
    with torch.no_grad():
        torch.testing.assert_close(again(z, y), g(z, y))
        assert (model.eval()(g(z, y)).argmax(1) == torch.tensor([0, 1, 2, 1])).all()  # y⁺ (3) looks like y_e = 1


def test_invert_errors_are_one_line():
    model, d_e = bn_classifier()
    d_e[0, 0, 0, 0] = float("nan")
    with pytest.raises(UnlearnBenchError, match=r"^NaN generator loss at step 0 \(") as error:
        invert(model, InversionSettings(steps=3, batch_size=8, z_dim=8, width=8), d_e=d_e, y_e=1, transforms=[],
               generator=torch.Generator().manual_seed(0))
    assert "\n" not in str(error.value)
    d_e = d_e.nan_to_num()
    group_norm = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.GroupNorm(1, 4), nn.ReLU(), nn.Flatten(), nn.Linear(256, 3))
    with pytest.raises(UnlearnBenchError, match=r"^ℓ_bn \(w_bn = 0.1\) needs BatchNorm") as error:
        invert(group_norm, InversionSettings(steps=2, batch_size=8, z_dim=8, width=8, w_bn=0.1), d_e=d_e, y_e=1, transforms=[])
    assert "\n" not in str(error.value)
    # ℓ_bn unset is off without BatchNorm; ℓ_tar runs on the GroupNorm's input (Table 6's models without BatchNorm)
    for w_bn in (0.0, None):
        history: list[dict[str, float]] = []
        invert(group_norm, InversionSettings(steps=2, batch_size=8, z_dim=8, width=8, w_bn=w_bn), d_e=d_e, y_e=1, transforms=[],
               on_step=lambda step, losses: history.append(losses))
        assert history[-1]["tar"] > 0 and history[-1].get("bn", 0.0) == 0.0


def test_settings_are_checked():
    with pytest.raises(UnlearnBenchError, match="inversion.plus_share"):
        InversionSettings(plus_share=1.0)
    with pytest.raises(UnlearnBenchError, match="inversion.betas"):
        InversionSettings(betas=(0.5, 1.0))
    with pytest.raises(UnlearnBenchError, match="every loss weight is 0"):
        InversionSettings(w_tv=0, w_div=0, w_ent=0, w_aug=0, w_tar=0, w_bn=0)
