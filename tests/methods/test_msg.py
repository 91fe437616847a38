"""MSG (Deep Unlearn's kgltop2) on digits: the re-initialised weights (round(0.3 · n) per conv layer, those of smallest
|gradient| of CE on a forget-sized retain subset − CE on D_f, by hand), their Kaiming draws, the ×0.1 gradient of the
other conv weights in one real SGD step, the warm-up-then-decay schedule, and the declared access."""

from __future__ import annotations

import copy
import math

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from benchmark.core.errors import UnlearnBenchError
from benchmark.core.validation import SettingError
from datamodules.access import FORGET_AND_RETAIN, DataView
from datamodules.scenarios import WholeClasses
from methods.blocks.layers import conv_layers
from methods.blocks.schedules import warmup_then_decay
from tests.methods import fixtures
from methods.msg import MSG

Y_F = 4
PLAIN_SGD = {"class_path": "torch.optim.SGD", "init_args": {"lr": 0.1, "momentum": 0.0, "weight_decay": 0.0}}


def attached(method: MSG) -> MSG:
    return fixtures.attached(method, WholeClasses(classes=[Y_F]))


def fitted(method: MSG, batches: int, *callbacks: pl.Callback) -> MSG:
    return fixtures.fitted(method, WholeClasses(classes=[Y_F]), batches, *callbacks)


def snip_gradients(model: nn.Module, data: DataView, batch_size: int) -> dict[str, torch.Tensor]:
    """kgltop2 `get_grads_for_snip` written out: `.grad` after CE on |D_f| retain rows and −CE on D_f, batch by batch."""
    model = model.train()
    model.zero_grad()
    forget = data["forget"]
    for dataset, sign in ((data.retain_subset(len(forget)), 1.0), (forget, -1.0)):
        for x, y in DataLoader(dataset, batch_size=batch_size, collate_fn=getattr(dataset, "collate_fn", None)):
            (sign * F.cross_entropy(model(x), y)).backward()
    return {f"{name}.weight": conv.weight.grad.clone() for name, conv in conv_layers(model, "test")}


def test_each_conv_layer_reinitialises_exactly_round_ratio_n_weights_those_of_smallest_gradient():
    method = attached(MSG(budget={"batch_size": 64}))
    gradients = snip_gradients(copy.deepcopy(method.original).requires_grad_(True), method.data, 64)
    method.prepare(method.data)
    original, model = dict(method.original.named_parameters()), dict(method.model.named_parameters())
    assert set(method.masks) == set(gradients) == {f"backbone.{i}.weight" for i in (0, 2, 5, 7)}  # small_cnn's four convs
    for name, mask in method.masks.items():
        assert int(mask.sum()) == round(0.3 * mask.numel())
        assert torch.equal(model[name] != original[name], mask)  # exactly the masked entries got new values
        magnitude = gradients[name].abs()
        assert magnitude[mask].max() <= magnitude[~mask].min() * (1 + 1e-5)  # the smallest |g| of this layer
    assert all(torch.equal(model[n], original[n]) for n in model if n not in method.masks)  # conv biases kept, head untouched
    forget = method.data["forget"]
    assert method.cost["cost/reinitialised"] == sum(round(0.3 * m.numel()) for m in method.masks.values())
    assert method.cost["cost/mask_retain_samples"] == len(forget) < len(method.data["retain"])


@pytest.mark.parametrize("init", ["kaiming_normal", "reset_parameters"])
def test_new_weights_are_drawn_from_the_chosen_kaiming_init_seeded_by_the_run(init):
    method, again = attached(MSG(init=init)), attached(MSG(init=init))
    for m in (method, again):
        torch.manual_seed(3)
        m.prepare(m.data)
    conv = method.model.backbone[7]  # 64 → 64, 3 × 3: fan_in = fan_out = 576
    values = conv.weight[method.masks["backbone.7.weight"]]
    assert torch.equal(values, again.model.backbone[7].weight[again.masks["backbone.7.weight"]])
    if init == "kaiming_normal":
        assert values.std().item() == pytest.approx(math.sqrt(2 / 576), rel=0.05)  # N(0, 2 / fan_out), kgltop2's
    else:
        bound = 1 / math.sqrt(576)  # nn.Conv2d.reset_parameters: U(±1 / √fan_in)
        assert values.abs().max() <= bound and values.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)
    assert abs(values.mean().item()) < 0.1 * values.std().item()


def test_conv_bias_reset_redraws_every_conv_bias_within_the_layers_default_bound():
    method = attached(MSG(conv_bias="reset"))
    method.prepare(method.data)
    for name, conv in conv_layers(method.model, "test"):
        old = method.original.get_submodule(name).bias
        assert (conv.bias != old).all() and conv.bias.abs().max() <= 1 / math.sqrt(conv.weight[0].numel())


def test_one_sgd_step_moves_kept_conv_weights_a_tenth_as_far_as_scale_one_and_everything_else_alike():
    tenth, full = (fitted(MSG(kept_scale=scale, optimizer=PLAIN_SGD, budget={"max_epochs": 1}), 1) for scale in (0.1, 1.0))
    assert all(torch.equal(tenth.masks[n], full.masks[n]) for n in tenth.masks)  # same data, same seed: same mask and draws
    original, a, b = (dict(m.named_parameters()) for m in (tenth.original, tenth.model, full.model))
    for name, p in a.items():
        step_a, step_b = p.detach() - original[name], b[name].detach() - original[name]
        if name in tenth.masks:
            kept = ~tenth.masks[name]
            assert (step_b[kept] != 0).float().mean() > 0.5  # (a unit that is off for the whole batch has no gradient)
            assert torch.allclose(step_a[kept], 0.1 * step_b[kept], rtol=1e-2, atol=1e-8)  # (float32 rounding of w + Δw)
            assert not torch.allclose(step_a[kept], step_b[kept], rtol=0.5)
            assert torch.allclose(p[~kept], b[name][~kept], rtol=1e-5, atol=1e-8)  # re-initialised entries: scale 1
        else:
            assert step_b.abs().max() > 0 and torch.allclose(step_a, step_b, rtol=1e-5, atol=1e-8)  # biases, head: unscaled


@pytest.mark.parametrize("schedule", ["epoch", "step"])
def test_the_learning_rate_warms_up_linearly_then_decays_as_kgltop2s_linear_annealing(schedule):
    rates = fixtures.LearningRates()
    fitted(MSG(schedule=schedule), 3, rates)
    lr = 1e-3
    assert len(rates.seen) == 15 and [e for e, _ in rates.seen] == [e for e in range(5) for _ in range(3)]
    if schedule == "epoch":  # LinearAnnealingLR(3, 6) stepped per epoch, from its first count
        expected = [lr * f for f in (1 / 3, 2 / 3, 1, 2 / 3, 1 / 3) for _ in range(3)]
    else:
        expected = [lr * warmup_then_decay(5)(s / 3) for s in range(15)]
        assert expected[0] == pytest.approx(lr / 3) and max(expected) == pytest.approx(lr) and expected[6] == pytest.approx(lr)
        assert all(x < y for x, y in zip(expected[:6], expected[1:7])) and all(x > y for x, y in zip(expected[6:], expected[7:]))
    assert [r for _, r in rates.seen] == pytest.approx(expected)


def test_msg_reads_the_forget_set_and_the_retain_set_only(monkeypatch):
    read = fixtures.recorded_reads(monkeypatch)
    method = fitted(MSG(budget={"max_epochs": 1}), 2)
    assert method.data_access == FORGET_AND_RETAIN and set(read) == {"forget", "retain"}
    fixtures.assert_reads_only(method, ("forget", "retain"))


def test_bad_settings_and_a_model_without_convolutions_are_refused_in_one_line():
    with pytest.raises(SettingError, match="ratio"):
        MSG(ratio=1.5)
    with pytest.raises(SettingError, match="kept_scale"):
        MSG(kept_scale=-0.1)
    with pytest.raises(UnlearnBenchError, match="MSG works on convolution kernels and Sequential has no nn.Conv2d layer"):
        conv_layers(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), "MSG")
