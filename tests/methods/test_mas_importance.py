"""MAS importance (seed 000 eq. 2) from one forward+backward per chunk equals the per-sample torch.func reference."""

import statistics
import time

import pytest
import torch
from torch import nn
from torch.func import functional_call, grad, vmap

import methods.blocks.importance as adv_imp
from benchmark.models import create_model
from methods.blocks.importance import mas_importance

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")


def reference(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """(1/N) Σ_n |∂‖g_θ(x_n)‖² / ∂θ|, one sample per grad call (the former implementation), eval mode."""
    was_training = model.training
    model.eval()
    params = {name: p.detach() for name, p in model.named_parameters()}
    buffers = dict(model.named_buffers())

    def squared_norm(p, xi):
        return functional_call(model, (p, buffers), (xi[None],)).pow(2).sum()

    per_sample = vmap(grad(squared_norm), in_dims=(None, 0))(params, x)
    model.train(was_training)
    return {name: g.abs().mean(0) for name, g in per_sample.items()}


class LinearOnTokens(nn.Module):
    """A conv stem, then a Linear on [N, T, C] tokens (several positions per sample), then a Linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(2, 6, 3, stride=2, padding=1, bias=False)
        self.mix = nn.Linear(6, 5)
        self.head = nn.Linear(5 * 9, 4)

    def forward(self, x):
        tokens = self.stem(x).flatten(2).transpose(1, 2)  # [N, 9, 6]
        return self.head(torch.tanh(self.mix(tokens)).flatten(1))


class ReusedInput(nn.Module):
    """The input of `second` is modified in place after use, which breaks its weight gradient."""

    def __init__(self) -> None:
        super().__init__()
        self.first, self.second = nn.Linear(4, 6), nn.Linear(6, 3)

    def forward(self, x):
        h = self.first(x.flatten(1))
        out = self.second(h)
        return out + h.mul_(2).sum(1, keepdim=True)


def conv_zoo() -> nn.Module:
    """Strides, paddings (numeric, 'same' with an even kernel, reflect), dilation, groups, no bias, BatchNorm."""
    torch.manual_seed(1)
    model = nn.Sequential(
        nn.Conv2d(2, 6, 3, stride=2, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(inplace=True),
        nn.Conv2d(6, 6, 4, padding="same", bias=False),
        nn.ReLU(inplace=True),
        nn.Conv2d(6, 8, 3, stride=(2, 1), padding=(2, 1), dilation=2, groups=2),
        nn.Tanh(),
        nn.Conv2d(8, 4, 3, padding=1, padding_mode="reflect"),
        nn.Flatten(),
        nn.LazyLinear(5),
        nn.BatchNorm1d(5),
        nn.Linear(5, 3, bias=False),
    )
    model(torch.rand(2, 2, 9, 9))  # materialise the lazy layer
    for bn in (model[1], model[10]):  # non-trivial running statistics and affine parameters
        bn.running_mean.uniform_(-0.5, 0.5), bn.running_var.uniform_(0.5, 2.0)
        nn.init.uniform_(bn.weight, 0.5, 1.5), nn.init.uniform_(bn.bias, -0.5, 0.5)
    return model


SUPPORTED = {
    "small_cnn": (lambda: create_model("small_cnn", num_classes=10, in_chans=1, image_size=8), (1, 8, 8)),
    "narrow_cnn": (lambda: create_model("narrow_cnn", num_classes=10, in_chans=1, image_size=28), (1, 28, 28)),
    "strided_conv": (lambda: nn.Sequential(nn.Conv2d(3, 5, 3, stride=2, padding=1), nn.ReLU(inplace=True),
                                           nn.Flatten(), nn.Linear(5 * 4 * 4, 6)), (3, 7, 7)),
    "conv_zoo": (conv_zoo, (2, 9, 9)),
    "linear_on_tokens": (LinearOnTokens, (2, 6, 6)),
}
FALLBACK = {
    "layer_norm": (lambda: nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.Flatten(), nn.LayerNorm(36),
                                         nn.Linear(36, 3)), (1, 6, 6)),
    "batch_norm_without_running_stats": (lambda: nn.Sequential(nn.Conv2d(1, 4, 3, padding=1),
                                                               nn.BatchNorm2d(4, track_running_stats=False),
                                                               nn.Flatten(), nn.Linear(4 * 25, 3)), (1, 5, 5)),
    "shared_module": (lambda: (lambda lin: nn.Sequential(nn.Flatten(), lin, nn.ReLU(), lin))(nn.Linear(4, 4)),
                      (1, 2, 2)),
}


def build(factory, shape, n=7):
    torch.manual_seed(0)
    return factory(), torch.rand(n, *shape)


def assert_matches(importance, expected):
    assert importance.keys() == expected.keys()
    for name, value in expected.items():
        torch.testing.assert_close(importance[name], value, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("name", SUPPORTED)
def test_hooked_path_equals_per_sample_gradients(name, monkeypatch):
    model, x = build(*SUPPORTED[name])
    expected = reference(model, x)
    monkeypatch.setattr(adv_imp, "_mas_vmap", lambda *args: pytest.fail("fell back to torch.func"))
    assert_matches(mas_importance(model, x, batch_size=3), expected)  # several chunks, a ragged last one


@pytest.mark.parametrize("name", FALLBACK)
def test_unsupported_models_fall_back_to_torch_func(name, monkeypatch):
    model, x = build(*FALLBACK[name])
    expected = reference(model, x)
    calls = []
    vmap_path = adv_imp._mas_vmap
    monkeypatch.setattr(adv_imp, "_mas_vmap", lambda *args: calls.append(1) or vmap_path(*args))
    assert_matches(mas_importance(model, x, batch_size=4), expected)
    assert calls


def test_an_input_modified_in_place_is_noticed_not_used(monkeypatch):
    """With frozen weights autograd saves no inputs, so the hooked path would read the modified one silently; it
    hands over to torch.func instead, which raises, as any weight gradient of this model does."""
    model, x = build(ReusedInput, (1, 2, 2))
    model.requires_grad_(False)
    calls = []
    vmap_path = adv_imp._mas_vmap
    monkeypatch.setattr(adv_imp, "_mas_vmap", lambda *args: calls.append(1) or vmap_path(*args))
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        mas_importance(model, x)
    assert calls


@pytest.mark.parametrize("name", ["narrow_cnn", "conv_zoo", "layer_norm"])
@pytest.mark.parametrize("training", [True, False])
def test_leaves_training_flag_grads_and_requires_grad_alone(name, training):
    model, x = build(*{**SUPPORTED, **FALLBACK}[name])
    params = list(model.parameters())
    for i, p in enumerate(params):
        p.requires_grad_(i % 2 == 0)
    params[0].grad = torch.ones_like(params[0])
    model.train(training)
    mas_importance(model, x, batch_size=4)
    assert model.training == training and all(m.training == training for m in model.modules())
    assert [p.requires_grad for p in params] == [i % 2 == 0 for i in range(len(params))]
    assert torch.equal(params[0].grad, torch.ones_like(params[0])) and all(p.grad is None for p in params[1:])
    assert not any(m._forward_hooks for m in model.modules())


def test_timing_against_one_forward_backward():
    """Printed, not asserted: the hooked path should cost a few forward+backward passes, torch.func ~10-25."""
    model, x = build(*SUPPORTED["narrow_cnn"], n=64)

    def median(f, k=3):
        f()
        times = []
        for _ in range(k):
            start = time.perf_counter()
            f()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    def forward_backward():
        model.zero_grad(set_to_none=True)
        model(x).logsumexp(1).sum().backward()

    passes = median(forward_backward)
    model.zero_grad(set_to_none=True)
    hooked = median(lambda: mas_importance(model, x))
    vmapped = median(lambda: adv_imp._mas_vmap(model.eval(), x, 32), k=1)
    model.train()
    print(f"\nnarrow_cnn, 64 samples: forward+backward {passes * 1e3:.1f} ms; mas_importance {hooked * 1e3:.1f} ms "
          f"({hooked / passes:.1f}×); torch.func fallback {vmapped * 1e3:.1f} ms ({vmapped / passes:.1f}×)")
