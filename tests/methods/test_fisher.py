"""Fisher forgetting (Golatkar et al. 2020): the diagonal Fisher against a per-sample loop, the noise rules of the
authors' notebook, the method's settings, and a class-forgetting run on digits."""

from __future__ import annotations

from copy import deepcopy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.core.errors import UnlearnBenchError
from benchmark.experiment.runner import run
from benchmark.metrics.evaluator import Evaluation
from benchmark.models import create_model
from benchmark.models.pretraining import Pretrained
from datamodules.access import RETAIN_FULL, RETAIN_SUBSET
from datamodules.scenarios import WholeClasses
from methods import METHODS
from methods.blocks import fisher as fisher_block
from methods.blocks.fisher import NoiseRules, add_fisher_noise_, diagonal_fisher, last_layer_names


class ItemGate(nn.Module):
    """Multiplies by a Python number read off the input: vmap cannot run `.item()`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (1.0 if x.abs().max().item() >= 0 else 0.0)


def tiny(*extra: nn.Module) -> nn.Sequential:
    """conv → BatchNorm (running statistics from one training pass) → ReLU → linear, 4 classes, float64."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), *extra, nn.Flatten(), nn.Linear(27, 4)).double()
    model.train()(torch.rand(16, 1, 5, 5, dtype=torch.float64))
    return model


def data(n: int = 9) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return torch.rand(n, 1, 5, 5, generator=generator, dtype=torch.float64), torch.randint(0, 4, (n,), generator=generator)


def direct_fisher(model: nn.Module, x: torch.Tensor, y: torch.Tensor, kind: str) -> dict[str, torch.Tensor]:
    """Σ_n Σ_c w_nc (∇_θ CE(f(x_n), c))², one sample and one class at a time (the notebook's loop)."""
    model.eval()
    total = {name: torch.zeros_like(p) for name, p in model.named_parameters()}
    for xi, yi in zip(x, y):
        logits = model(xi[None])
        probs = logits.softmax(-1)[0].detach()
        for c in range(logits.shape[1]) if kind == "true" else [int(yi)]:
            model.zero_grad()
            F.cross_entropy(logits, torch.tensor([c])).backward(retain_graph=True)
            weight = probs[c] if kind == "true" else 1.0
            for name, p in model.named_parameters():
                total[name] += weight * p.grad.pow(2)
    model.zero_grad(set_to_none=True)
    return total


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-6, atol=1e-6, msg=name)


class Scale(nn.Module):
    """A learnt scalar factor: a parameter outside a linear, convolution or BatchNorm layer (per-sample gradients by torch.func)."""

    def __init__(self) -> None:
        super().__init__()
        self.factor = nn.Parameter(torch.tensor(1.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


class Residual(nn.Module):
    """conv → BatchNorm, plus the input in place, → in-place ReLU (torchvision's BasicBlock's ending)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn, self.relu = nn.Conv2d(3, 3, 3, padding=1, bias=False), nn.BatchNorm2d(3), nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn(self.conv(x))
        out += x
        return self.relu(out)


class Twice(nn.Module):
    """The same layer applied twice (shared weights)."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(self.layer(x))


MODELS = {  # name: (model's extra modules, the per-sample gradients' path)
    "layers": (lambda: (), fisher_block._hooked),
    "residual_in_place": (lambda: (Residual(),), fisher_block._hooked),
    "linear_on_rows": (lambda: (nn.Linear(3, 3),), fisher_block._hooked),
    "shared_layer": (lambda: (Twice(nn.Linear(3, 3)),), fisher_block.vmapped_gradients),
    "other_parameter": (lambda: (Scale(),), fisher_block.vmapped_gradients),
    "vmap_fails": (lambda: (ItemGate(), Scale()), fisher_block.looped_gradients),
}


@pytest.mark.parametrize("kind", ["true", "empirical"])
@pytest.mark.parametrize("case", MODELS)
def test_the_fisher_is_the_per_sample_sum_of_squared_class_gradients(kind, case, monkeypatch):
    """`true`: Σ_y p(y|x) (∇CE(x, y))² over every class; `empirical`: the labelled class only, weight 1 — whichever way
    the per-sample gradients are computed (from the layers' inputs and output gradients, torch.func, or a loop)."""
    extra, path = MODELS[case]
    model, (x, y) = tiny(*extra()), data()
    expected = direct_fisher(model, x, y, kind)
    used = []
    for name in ("_hooked", "vmapped_gradients", "looped_gradients"):
        original = getattr(fisher_block, name)
        monkeypatch.setattr(fisher_block, name, lambda *args, _f=original, _n=name: used.append(_n) or _f(*args))
    summed = diagonal_fisher(model, [(x[:4], y[:4]), (x[4:], y[4:])], kind=kind, reduction="sum")
    assert_same(summed, expected)
    assert used[-1] == path.__name__
    assert_same(diagonal_fisher(model, [(x, y)], kind=kind), {name: f / len(x) for name, f in expected.items()})


def test_the_true_and_empirical_fishers_differ():
    model, (x, y) = tiny(), data()
    true, empirical = diagonal_fisher(model, [(x, y)]), diagonal_fisher(model, [(x, y)], kind="empirical")
    assert not torch.allclose(true["4.weight"], empirical["4.weight"])


def test_the_fisher_leaves_the_model_as_it_was():
    model, (x, y) = tiny(), data()
    model.train()[1].eval()  # BatchNorm frozen, the rest training
    state = {name: t.clone() for name, t in model.state_dict().items()}
    diagonal_fisher(model, [(x, y)])
    assert model.training and not model[1].training and all(p.grad is None for p in model.parameters())
    assert all(torch.equal(state[name], t) for name, t in model.state_dict().items())


def test_the_fisher_of_no_samples_is_refused():
    with pytest.raises(UnlearnBenchError, match="at least one sample"):
        diagonal_fisher(tiny(), [])


def test_the_last_layer_is_the_classifier_head_or_the_last_linear_module():
    assert last_layer_names(create_model("small_cnn", num_classes=10, in_chans=1, image_size=8)) == ("head.weight", "head.bias")
    assert last_layer_names(tiny()) == ("4.weight", "4.bias")
    with pytest.raises(UnlearnBenchError, match="no nn.Linear"):
        last_layer_names(nn.Sequential(nn.Conv2d(1, 2, 3)))


def noised(model: nn.Module, fisher: dict, seed: int = 0, **kwargs) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(the noised parameters, their variances) of a copy of `model`."""
    copy = deepcopy(model)
    variances = add_fisher_noise_(copy, fisher, generator=torch.Generator().manual_seed(seed), **{"alpha": 1e-6, **kwargs})
    return {name: p.detach().clone() for name, p in copy.named_parameters()}, variances


def fixed_fisher(model: nn.Module, value: float) -> dict[str, torch.Tensor]:
    return {name: torch.full_like(p, value) for name, p in model.named_parameters()}


def shift(model: nn.Module, weights: dict[str, torch.Tensor]) -> float:
    return sum((weights[name] - p).pow(2).sum() for name, p in model.named_parameters()).sqrt().item()


def test_a_larger_alpha_perturbs_the_weights_more():
    model = tiny()
    fisher = diagonal_fisher(model, [data()])
    small, large = shift(model, noised(model, fisher, alpha=1e-8)[0]), shift(model, noised(model, fisher, alpha=1e-6)[0])
    assert 0 < small < large and large == pytest.approx(10 * small, rel=1e-6)  # the same draw, √100 × the scale


def test_the_same_seed_gives_the_same_weights_and_another_seed_others():
    model = tiny()
    fisher = diagonal_fisher(model, [data()])
    a, b, c = (noised(model, fisher, seed)[0] for seed in (3, 3, 4))
    assert all(torch.equal(a[name], b[name]) for name in a)
    assert all(not torch.equal(a[name], c[name]) for name in a)


def test_the_noise_leaves_the_batchnorm_statistics():
    model = tiny()
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    add_fisher_noise_(model, diagonal_fisher(model, [data()]), alpha=1e-4, generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(buffers[name], b) for name, b in model.named_buffers())


def test_the_notebooks_variance_rules():
    """α · min(1/(F + 1e-8), 1e3) (1e2 for the last layer), averaged over dim 1, × 10 for the last layer and 1-d tensors."""
    model = tiny()
    _, var = noised(model, fixed_fisher(model, 0.0))  # every 1/(F + ε) is clamped
    assert torch.allclose(var["0.weight"], torch.full_like(var["0.weight"], 1e-3))
    assert torch.allclose(var["0.bias"], torch.full_like(var["0.bias"], 1e-2))  # 1-d: × 10
    assert torch.allclose(var["1.weight"], torch.full_like(var["1.weight"], 1e-2))  # BatchNorm
    assert torch.allclose(var["4.weight"], torch.full_like(var["4.weight"], 1e-3))  # last layer: 1e2 · α · 10
    assert torch.allclose(var["4.bias"], torch.full_like(var["4.bias"], 1e-3))
    fisher = {name: torch.rand_like(p) for name, p in model.named_parameters()}
    _, var = noised(model, fisher)
    conv = 1e-6 / (fisher["0.weight"] + 1e-8)
    assert torch.allclose(var["0.weight"], conv.mean(dim=1, keepdim=True).expand_as(conv))  # per output unit (and kernel position)


def test_the_ssd_variant_drops_the_last_layer_scaling_and_the_class_rows():
    model = tiny()
    rules = NoiseRules(scale_last_layer=False, zero_forgotten_rows=False)
    weights, var = noised(model, fixed_fisher(model, 0.0), rules=rules, forget_classes=[1])
    assert torch.allclose(var["4.weight"], torch.full_like(var["4.weight"], 1e-4))  # no × 10
    assert torch.allclose(var["4.bias"], torch.full_like(var["4.bias"], 1e-3))  # 1-d: still × 10, as in the SSD repo
    assert (weights["4.weight"][1] - model[4].weight[1]).abs().max() < 0.05  # row 1 kept its mean


def test_the_forgotten_classes_rows_become_zero():
    """Class forgetting: mean 0, variance 1e-4 for the forgotten rows of the last layer (× 10 after, as the notebook)."""
    model = create_model("small_cnn", num_classes=10, in_chans=1, image_size=8)
    fisher = fixed_fisher(model, 1e3)  # the other weights barely move
    weights, var = noised(model, fisher, forget_classes=[0, 7])
    for row in (0, 7):
        assert torch.allclose(var["head.weight"][row], torch.full_like(var["head.weight"][row], 1e-3))
        assert weights["head.weight"][row].mean().abs() < 1e-2 and weights["head.bias"][row].abs() < 0.15
    assert torch.allclose(weights["head.weight"][1:7], model.head.weight[1:7], atol=1e-3)
    weights, _ = noised(model, fisher, forget_classes=[0], rules=NoiseRules(scale_last_layer=False))
    assert weights["head.weight"][0].abs().mean() < 1e-2  # 0 ± 1e-2
    weights, _ = noised(model, fisher, forget_classes=None)
    assert torch.allclose(weights["head.weight"][0], model.head.weight[0], atol=1e-3)


def test_a_non_positive_alpha_is_refused_in_one_line():
    with pytest.raises(UnlearnBenchError) as error:
        METHODS.get("Fisher")(alpha=-1)
    assert str(error.value).startswith("Fisher.alpha = -1 is not allowed; a number > 0") and "\n" not in str(error.value)
    with pytest.raises(UnlearnBenchError, match=r"^noise.clamp = 0 is not allowed"):
        NoiseRules(clamp=0)


def test_retain_samples_asks_for_a_retain_subset():
    fisher = METHODS.get("Fisher")
    assert fisher().data_access == RETAIN_FULL and fisher().num_epochs() == 0
    subset = fisher(retain_samples=50)
    assert subset.data_access == RETAIN_SUBSET and subset.retain_subset_size == 50


def test_fisher_forgets_a_class_on_digits(tmp_path):
    scenario = WholeClasses(classes=[0])
    original = run(METHODS.get("Original")(), scenario, Pretrained(), results_dir=str(tmp_path), progress=False)
    method = METHODS.get("Fisher")(retain_samples=100)
    record = run(method, scenario, Pretrained(), results_dir=str(tmp_path), progress=False)
    assert record["metrics"]["test_forget/acc"] < original["metrics"]["test_forget/acc"]
    assert record["timings"]["cost/epochs"] == 0 and record["timings"]["cost/fisher_samples"] == 100


def test_the_noise_follows_the_run_seed_unless_its_own_is_given(tmp_path):
    def head(run_seed: int, **kwargs) -> torch.Tensor:
        method = METHODS.get("Fisher")(retain_samples=20, **kwargs)
        run(method, WholeClasses(classes=[0]), Pretrained(), seed=run_seed, results_dir=str(tmp_path), progress=False, evaluation=Evaluation(mia=False))
        return method.model.head.weight.detach()

    assert not torch.equal(head(0), head(1))
    assert torch.equal(head(0, seed=5), head(1, seed=5))
