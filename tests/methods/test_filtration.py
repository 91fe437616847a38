"""Seed 004 §4.2's filtration: the entropy / consistency filter against a per-sample loop, κ against a NumPy
squared MMD, the Kneedle threshold on curves with a known knee, the one-line errors and their flags, and f_o left
as it was."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.core.errors import UnlearnBenchError
from benchmark.models import Classifier, Normalize
from datamodules.datasets.augment import crop_flip
from methods.blocks.filtration import confident, entropy, filtrate, knee_threshold, mmd_to_set


def classifier(backbone: nn.Module, feature_dim: int, num_classes: int) -> Classifier:
    return Classifier(backbone, feature_dim, num_classes, "tiny", Normalize([0.0], [1.0])).double()


def conv_net() -> Classifier:
    """conv → BatchNorm (running statistics from one training pass) → ReLU → linear: 8-d features, 3 classes, float64."""
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(64, 8))
    model = classifier(backbone, 8, 3)
    with torch.no_grad():
        model.head.weight.mul_(4.0)  # a spread of entropies over (0, ln 3)
    model.train()(torch.rand(16, 1, 6, 6, dtype=torch.float64))
    return model


class LeftMinusRight(nn.Module):
    """The mean of the left half of the image minus that of the right half: one feature, mirrored by a flip."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        return (x[..., :half].mean((1, 2, 3)) - x[..., half:].mean((1, 2, 3))).unsqueeze(1)


class Scalar(nn.Module):
    """The one pixel of a [N, 1, 1, 1] image as a one-dimensional feature."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


def scalar_net(weight: float = 1.0) -> Classifier:
    """Feature = the pixel v; logits (w·v, −w·v): class 0 for v > 0, entropy falling as v grows."""
    model = classifier(Scalar(), 1, 2)
    with torch.no_grad():
        model.head.weight.copy_(torch.tensor([[weight], [-weight]]))
        model.head.bias.zero_()
    return model


def pixels(values) -> torch.Tensor:
    return torch.as_tensor(values, dtype=torch.float64).view(-1, 1, 1, 1)


def at_kappa(kappa: np.ndarray, e: float = 1.0, sigma: float = 1.0) -> np.ndarray:
    """Scalar features v ≥ e with κ(v, {e}) = 2 − 2 exp(−(v − e)²/(2σ²)) equal to the given κ < 2."""
    return e + sigma * np.sqrt(-2 * np.log(1 - kappa / 2))


def loop_mask(model: nn.Module, x: torch.Tensor, transforms, t_ent: float) -> torch.Tensor:
    """§4.2's condition, one sample at a time."""
    model.eval()
    keep = []
    with torch.no_grad():
        for xi in x:
            p = F.softmax(model(xi[None]), dim=-1)[0]
            ok = -(p * p.log()).sum() < t_ent
            for phi in transforms:
                q = F.softmax(model(phi(xi[None])), dim=-1)[0]
                ok = ok and -(q * q.log()).sum() < t_ent and q.argmax() == p.argmax()
            keep.append(bool(ok))
    return torch.tensor(keep)


def test_entropy_is_in_nats():
    probs = torch.tensor([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.25, 0.25, 0.5]])
    assert torch.allclose(entropy(probs), torch.tensor([math.log(2), 0.0, 1.5 * math.log(2)]))


def test_confident_matches_a_per_sample_loop_and_is_monotone_in_t_ent():
    model, x = conv_net(), torch.rand(40, 1, 6, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    fixed = [lambda b: b.flip(-1), lambda b: b.roll(1, dims=-2)]
    thresholds = [0.05, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2]
    for t_ent in thresholds:
        assert torch.equal(confident(model, x, fixed, t_ent), loop_mask(model, x, fixed, t_ent))
    masks = []
    for t_ent in thresholds:  # a random φ, drawn the same for every threshold
        torch.manual_seed(7)
        masks.append(confident(model, x, [crop_flip], t_ent))
    counts = [int(m.sum()) for m in masks]
    assert counts[0] < counts[-1], counts  # the thresholds do separate samples
    for lower, higher in zip(masks, masks[1:]):
        assert bool((lower <= higher).all())  # raising t_ent never drops a sample


def test_an_augmentation_that_flips_the_argmax_drops_the_sample_at_any_t_ent():
    model = classifier(LeftMinusRight(), 1, 2)
    with torch.no_grad():
        model.head.weight.copy_(torch.tensor([[50.0], [-50.0]]))
        model.head.bias.zero_()
    x = torch.rand(8, 1, 4, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 0.4
    x[::2, ..., :2] += 0.5  # even rows brighter on the left (class 0), odd rows on the right (class 1)
    x[1::2, ..., 2:] += 0.5
    assert bool(confident(model, x, [], 0.01).all())  # every prediction is confident
    assert not confident(model, x, [lambda b: b.flip(-1)], 1e9).any()
    flip_first_three = lambda b: torch.cat([b[:3].flip(-1), b[3:]])  # noqa: E731
    expected = torch.tensor([False] * 3 + [True] * 5)
    assert torch.equal(confident(model, x, [lambda b: b, flip_first_three], 1e9), expected)


def mmd_numpy(fx: np.ndarray, fe: np.ndarray, sigmas) -> np.ndarray:
    """The biased squared MMD between {x} and the rows of fe for each row x of fx, float64."""
    def k(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        return sum(np.exp(-d2 / (2 * s * s)) for s in sigmas)

    return np.array([k(x[None], x[None]).mean() - 2 * k(x[None], fe).mean() + k(fe, fe).mean() for x in fx])


def test_kappa_is_the_squared_mmd_of_numpy():
    rng = np.random.default_rng(3)
    fx, fe = rng.normal(size=(9, 5)), rng.normal(size=(4, 5)) + 0.5
    pooled = np.concatenate([fe, fx])
    distances = np.sqrt(((pooled[:, None] - pooled[None]) ** 2).sum(-1))[np.triu_indices(len(pooled), 1)]
    for bandwidth, sigmas in [(1.7, [1.7]), ((0.5, 2.0), [0.5, 2.0]), (None, [np.median(distances)])]:
        kappa = mmd_to_set(torch.from_numpy(fx), torch.from_numpy(fe), bandwidth)
        assert kappa.dtype == torch.float64
        np.testing.assert_allclose(kappa.numpy(), mmd_numpy(fx, fe, sigmas), rtol=0, atol=1e-6)
    one = torch.from_numpy(fe[:1])
    assert abs(mmd_to_set(one, one, 1.0).item()) < 1e-12  # x = the only example of D_e


@pytest.mark.parametrize("curve, values, before_knee", [
    ("convex", np.where(np.arange(100) < 70, 0.01 * np.arange(100), 0.7 + (np.arange(100) - 70.0)), 70),
    ("concave", np.where(np.arange(100) < 30, np.arange(100.0), 30 + 0.01 * (np.arange(100) - 30)), 30),
    # D_e-like samples near 0, then the rest under the kernel's ceiling: kneed's first knee is the first sample
    ("concave", np.concatenate([0.05 + 0.001 * np.arange(10), 0.9 + 0.001 * np.arange(90)]), 10),
])
def test_knee_is_found_within_two_percent_of_the_breakpoint(curve, values, before_knee):
    shuffled = np.random.default_rng(4).permutation(values)
    t_f = knee_threshold(torch.from_numpy(shuffled), curve=curve)
    assert t_f is not None
    assert abs(int((values < t_f).sum()) - before_knee) <= 2  # 2 % of 100 points


def test_no_knee_on_a_straight_line_unless_a_fallback_quantile():
    line = 0.3 * np.arange(100.0) + 2
    assert knee_threshold(line) is None
    assert knee_threshold(line, curve="convex") is None
    assert knee_threshold([1.0, 1.0, 1.0, 1.0]) is None
    with pytest.warns(UserWarning, match="no knee"):
        assert knee_threshold(line, fallback_quantile=0.25) == pytest.approx(np.quantile(line, 0.25))


def knee_case() -> tuple[Classifier, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scalar net, D_e = {v = 1}; 5 samples near it (4 generated with y⁺ = 2), 45 far away."""
    near = np.array([1.0, 1.02, 1.04, 1.06, 1.08])
    far = at_kappa(np.linspace(1.90, 1.99, 45))
    x = pixels(np.concatenate([far[:20], near, far[20:]]))
    conditions = torch.tensor([0] * 20 + [2, 2, 1, 2, 2] + [1] * 25)
    return scalar_net(), x, conditions, pixels([1.0])


def test_filtrate_splits_at_the_knee():
    model, x, conditions, d_e = knee_case()
    result = filtrate(model, x, conditions, d_e, transforms=[lambda b: b * 1.1], t_ent=1.0, bandwidth=1.0)
    assert result.knee_found and result.issues == ()
    assert (result.n_generated, result.n_kept, result.n_erase) == (50, 50, 5)
    assert torch.equal(result.erase, torch.arange(50).ge(20) & torch.arange(50).lt(25))
    assert torch.equal(result.retain, ~result.erase)
    assert result.plus_share == pytest.approx(4 / 5)
    probs = torch.softmax(torch.cat([x.flatten(1), -x.flatten(1)], 1), dim=1)
    assert torch.allclose(result.soft_labels, probs)  # soft labels: f_o's softmax


def test_empty_d_tilde_raises_one_line_or_is_flagged():
    model, x, conditions, d_e = knee_case()
    lowest = entropy(torch.softmax(torch.tensor([x.max(), -x.max()]), 0)).item()  # ≈ 1.9e-3, at the largest pixel
    assert lowest > 1e-3
    with pytest.raises(UnlearnBenchError, match=r"^0 of 50 generated samples pass the entropy filter t_ent=0.001 ") as error:
        filtrate(model, x, conditions, d_e, transforms=[], t_ent=1e-3, bandwidth=1.0)
    assert "\n" not in str(error.value) and str(error.value).endswith("raise t_ent or generate more")
    result = filtrate(model, x, conditions, d_e, transforms=[], t_ent=1e-3, bandwidth=1.0, strict=False)
    assert (result.n_kept, result.n_erase, len(result.x), result.t_f) == (0, 0, 0, None)
    assert len(result.issues) == 1 and result.issues[0] == str(error.value)


def test_empty_d_tilde_e_raises_one_line_or_is_flagged():
    model, x, conditions, d_e = knee_case()  # κ ≥ 0 (= 0 for the copy of D_e's example)
    with pytest.raises(UnlearnBenchError, match=r"^0 of 50 samples of D̃ have κ < t_f=0 ") as error:
        filtrate(model, x, conditions, d_e, transforms=[], t_ent=1.0, t_f=0.0, bandwidth=1.0)
    assert "\n" not in str(error.value)
    result = filtrate(model, x, conditions, d_e, transforms=[], t_ent=1.0, t_f=0.0, bandwidth=1.0, strict=False)
    assert (result.n_kept, result.n_erase, result.t_f, result.knee_found, result.plus_share) == (50, 0, 0.0, False, None)
    assert result.issues == (str(error.value),)


def test_no_knee_raises_one_line_or_is_flagged_or_falls_back():
    kappa = np.linspace(0.02, 1.92, 40)  # a straight line of κ
    model, x, d_e = scalar_net(), pixels(at_kappa(kappa)), pixels([1.0])
    common = dict(transforms=[], t_ent=1.0, bandwidth=1.0)
    with pytest.raises(UnlearnBenchError, match=r"^no knee in the 40 sorted κ of D̃") as error:
        filtrate(model, x, None, d_e, **common)
    assert "\n" not in str(error.value) and "fallback_quantile" in str(error.value)
    result = filtrate(model, x, None, d_e, **common, strict=False)
    np.testing.assert_allclose(result.kappa.numpy(), kappa, atol=1e-9)
    assert (result.t_f, result.knee_found, result.n_erase, result.issues) == (None, False, 0, (str(error.value),))
    result = filtrate(model, x, None, d_e, **common, fallback_quantile=0.5)  # asked for: no error even when strict
    assert result.t_f == pytest.approx(np.quantile(kappa, 0.5)) and not result.knee_found
    assert result.n_erase == 20 and result.issues == ()


def test_confident_and_filtrate_leave_the_model_as_it_was():
    model = conv_net()
    model.train()
    model.backbone[1].eval()  # a mix of training flags
    before = {name: t.clone() for name, t in model.state_dict().items()}
    flags = {name: m.training for name, m in model.named_modules()}
    x = torch.rand(30, 1, 6, 6, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    confident(model, x, [crop_flip], 0.8)
    filtrate(model, x, None, x[:3], transforms=[crop_flip], t_ent=0.8, strict=False)
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert {name: m.training for name, m in model.named_modules()} == flags
    assert all(p.grad is None for p in model.parameters())
