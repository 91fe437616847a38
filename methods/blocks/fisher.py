"""Fisher forgetting's pieces (Golatkar, Achille & Soatto, CVPR 2020): the diagonal Fisher of a classifier on a
dataset, true or empirical (seed 003 §3.1's estimate, the labelled classes only), and the Gaussian weight noise it
prescribes. Used by the `Fisher` method (seed 002's "Fisher forgetting [9]", seed 003's FisherNoise)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from jsonargparse.typing import PositiveFloat
from torch import nn
from torch.func import functional_call, jacrev, vmap

from benchmark.core.errors import UnlearnBenchError
from benchmark.core.validation import check_fields
from benchmark.models import Classifier

FisherKind = Literal["true", "empirical"]
Reduction = Literal["sum", "mean"]
EPS = 1e-8
"""Added to the Fisher before inverting it (the notebook's `1/(grad2_acc + 1e-8)`)."""
_PER_SAMPLE_BUDGET = 1 << 23  # elements of per-sample, per-class gradients at once (larger chunks were slower on a CPU)

Gradients = Callable[[nn.Module, dict, dict, torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]


def last_layer_names(model: nn.Module) -> tuple[str, ...]:
    """Parameter names of the classifier's last layer: a `Classifier`'s `head`, else the last `nn.Linear` module
    (in registration order)."""
    if isinstance(model, Classifier):
        prefix = "head"
    else:
        linears = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
        if not linears:
            raise UnlearnBenchError(f"{type(model).__name__} has no nn.Linear module to take as its last layer")
        prefix = linears[-1]
    own = model.get_submodule(prefix).named_parameters(recurse=False)
    return tuple(f"{prefix}.{name}" if prefix else name for name, _ in own)


def vmapped_gradients(model: nn.Module, params: dict, buffers: dict, x: torch.Tensor, classes: torch.Tensor) -> dict[str, torch.Tensor]:
    """∇_θ −log p(c|x_n) for every class c in row n of `classes`: [n, m, *shape] per parameter, by torch.func."""
    def nll(p: dict, xi: torch.Tensor, ci: torch.Tensor) -> torch.Tensor:
        logits = functional_call(model, (p, buffers), (xi.unsqueeze(0),))
        return -F.log_softmax(logits, dim=-1)[0].gather(0, ci)

    return vmap(jacrev(nll), in_dims=(None, 0, 0))(params, x, classes)


def looped_gradients(model: nn.Module, params: dict, buffers: dict, x: torch.Tensor, classes: torch.Tensor) -> dict[str, torch.Tensor]:
    """`vmapped_gradients` one sample and one class at a time with autograd (the notebook's batch size 1), for models vmap cannot run."""
    leaves = {name: p.detach().requires_grad_(True) for name, p in params.items()}
    rows = []
    for xi, ci in zip(x, classes):
        logp = F.log_softmax(functional_call(model, (leaves, buffers), (xi.unsqueeze(0),)), dim=-1)[0]
        per_class = []
        for j, c in enumerate(ci.tolist()):
            grads = torch.autograd.grad(-logp[c], list(leaves.values()), retain_graph=j < len(ci) - 1, allow_unused=True)
            per_class.append([torch.zeros_like(p) if g is None else g for p, g in zip(leaves.values(), grads)])
        rows.append([torch.stack(g) for g in zip(*per_class)])
    return {name: torch.stack(g) for name, g in zip(leaves, zip(*rows))}


def _supported(module: nn.Module) -> bool:
    """Modules whose per-sample gradients `_layer_squares` computes from the module's input and output gradient."""
    if isinstance(module, nn.Conv2d):
        return module.groups == 1 and module.padding_mode == "zeros" and not isinstance(module.padding, str)
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return module.track_running_stats  # (in evaluation mode: the running statistics, no coupling between samples)
    return isinstance(module, nn.Linear)


def _hooked_layers(model: nn.Module) -> dict[str, nn.Module] | None:
    """The modules owning parameters, by name, when every one is `_supported`; else None."""
    owners = {name: module for name, module in model.named_modules() if next(module.parameters(recurse=False), None) is not None}
    return owners if all(map(_supported, owners.values())) else None


def _layer_squares(module: nn.Module, a: torch.Tensor, g: torch.Tensor) -> dict[str, torch.Tensor]:
    """Σ_n (per-sample gradient of each of `module`'s parameters)², from its input `a` and output gradient `g` of a loss
    summed over samples: a linear layer on vectors in closed form, (g²)ᵀ(a²); else per-sample gradients, layer by layer."""
    squares = {}
    if isinstance(module, nn.Linear):
        if a.ndim == 2:
            squares["weight"] = g.pow(2).T @ a.pow(2)
        else:
            squares["weight"] = torch.einsum("n...o,n...i->noi", g, a).pow(2).sum(0)
        bias = g.flatten(1, -2).sum(1) if g.ndim > 2 else g
    elif isinstance(module, nn.Conv2d):
        columns = F.unfold(a, module.kernel_size, dilation=module.dilation, padding=module.padding, stride=module.stride)
        squares["weight"] = torch.einsum("nop,nkp->nok", g.flatten(2), columns).pow(2).sum(0).view_as(module.weight)
        bias = g.flatten(2).sum(2)
    else:  # BatchNorm in evaluation mode: y = γ x̂ + β
        shape = (1, -1) + (1,) * (a.ndim - 2)
        normalised = (a - module.running_mean.view(shape)) * torch.rsqrt(module.running_var.view(shape) + module.eps)
        if module.weight is not None:
            squares["weight"] = (g * normalised).flatten(2).sum(2).pow(2).sum(0) if a.ndim > 2 else (g * normalised).pow(2).sum(0)
        bias = g.flatten(2).sum(2) if g.ndim > 2 else g
    if getattr(module, "bias", None) is not None:
        squares["bias"] = bias.pow(2).sum(0)
    return squares


def _hooked(model: nn.Module, layers: dict[str, nn.Module], x: torch.Tensor, classes: torch.Tensor, weights: torch.Tensor) -> dict[str, torch.Tensor] | None:
    """Σ_n Σ_j w_nj (∇_θ −log p(c_nj|x_n))² by one forward and one backward per class column: each sample's loss scaled by
    √w_nj, per-sample gradients from the layers' inputs and output gradients. None when a layer runs more than once."""
    inputs: dict[str, list] = {name: [] for name in layers}
    outputs: dict[str, list] = {name: [] for name in layers}

    def keep(name: str):
        def hook(module, args, output):
            inputs[name].append(args[0].detach())
            outputs[name].append(output)
            return output.clone()  # what the next layer may change in place (ReLU(inplace=True)), not the output kept here
        return hook

    handles = [module.register_forward_hook(keep(name)) for name, module in layers.items()]
    try:
        logp = F.log_softmax(model(x), dim=-1)
    finally:
        for handle in handles:
            handle.remove()
    if any(len(kept) != 1 for kept in inputs.values()):
        return None
    names = list(layers)
    total: dict[str, torch.Tensor] = {}
    for j in range(classes.shape[1]):
        loss = -(weights[:, j].sqrt().to(logp.dtype) * logp.gather(1, classes[:, j : j + 1]).squeeze(1)).sum()
        grads = torch.autograd.grad(loss, [outputs[name][0] for name in names], retain_graph=j < classes.shape[1] - 1)
        for name, g in zip(names, grads):
            for local, square in _layer_squares(layers[name], inputs[name][0], g).items():
                key = f"{name}.{local}" if name else local
                total[key] = total[key] + square if key in total else square
    return total


def diagonal_fisher(model: nn.Module, batches: Iterable, *, kind: FisherKind = "true", reduction: Reduction = "mean") -> dict[str, torch.Tensor]:
    """The diagonal Fisher of `model` (evaluation mode) over the (x, y, ...) batches, one tensor per named parameter.

    `true`: Σ_n Σ_y p(y|x_n) (∇_θ CE(f(x_n), y))², the expectation over the model's own predictive distribution
    (Golatkar et al.'s `hessian`, Forgetting.ipynb cell 73); `empirical`: Σ_n (∇_θ CE(f(x_n), y_n))², the labelled
    class only. `mean` divides by the number of samples (cell 73 does). Per-sample gradients come from the layers'
    inputs and output gradients when every parameter is a linear, convolution or (running-statistics) BatchNorm
    layer's, one backward per class (as Opacus / BackPACK do, which refuse BatchNorm); else from torch.func (vmap of
    jacrev over the classes), or a per-sample autograd loop where vmap cannot run the model: all exact, as with batch
    size 1. None touches `.grad` or the buffers; every module's training flag is restored.
    """
    params = {name: p.detach() for name, p in model.named_parameters()}
    buffers = dict(model.named_buffers())
    total = {name: torch.zeros_like(p) for name, p in params.items()}
    size = sum(p.numel() for p in params.values())
    device = next(iter(params.values())).device
    layers = _hooked_layers(model)
    gradients: Gradients = vmapped_gradients
    count, modes = 0, {module: module.training for module in model.modules()}
    model.eval()
    try:
        with torch.enable_grad():
            for x, y, *_ in batches:
                x, y = x.to(device), y.to(device)
                if kind == "true":
                    with torch.no_grad():
                        weights = F.softmax(model(x), dim=-1)
                    classes = torch.arange(weights.shape[1], device=device).expand(len(x), -1)
                else:
                    classes, weights = y.view(-1, 1), torch.ones(len(x), 1, dtype=next(iter(params.values())).dtype, device=device)
                squares = None
                if layers is not None:
                    widest = max(p.numel() for p in params.values())
                    step = max(1, _PER_SAMPLE_BUDGET // widest)
                    parts = [_hooked(model, layers, xs, cs, ws) for xs, cs, ws in zip(x.split(step), classes.split(step), weights.split(step))]
                    if all(part is not None for part in parts):
                        squares = {name: sum(part[name] for part in parts) for name in params}
                    else:
                        layers = None
                if squares is None:
                    step = max(1, _PER_SAMPLE_BUDGET // (classes.shape[1] * size))
                    squares = dict.fromkeys(params, 0.0)
                    for xs, cs, ws in zip(x.split(step), classes.split(step), weights.split(step)):
                        try:
                            grads = gradients(model, params, buffers, xs, cs)
                        except (RuntimeError, NotImplementedError):
                            if gradients is looped_gradients:
                                raise
                            gradients = looped_gradients
                            grads = gradients(model, params, buffers, xs, cs)
                        for name, g in grads.items():
                            squares[name] = squares[name] + torch.einsum("nm,nm...->...", ws.to(g.dtype), g.pow(2))
                for name in total:
                    total[name] += squares[name]
                count += len(x)
    finally:
        for module, training in modes.items():
            module.train(training)
    if count == 0:
        raise UnlearnBenchError("the Fisher needs at least one sample; the data given has none")
    return {name: f / count for name, f in total.items()} if reduction == "mean" else total


@dataclass(frozen=True)
class NoiseRules:
    """How a diagonal Fisher F becomes the variance of the forgetting noise (Forgetting.ipynb cell 75, `get_mean_var`).

    var = α · min(1/(F + 1e-8), clamp), with `last_layer_clamp` as the bound for the last layer; for tensors of
    more than one dimension averaged over dim 1 and broadcast back; then multiplied by `scale` for the last layer
    and for 1-d tensors (BatchNorm, biases). The authors' notebook: all rules on, as the defaults; the SSD repo's
    random-instance variant (if-loops/selective-synaptic-dampening, forget_random_strategies.py): keeps the clamps
    and the 1-d scaling but `scale_last_layer=False` and `zero_forgotten_rows=False`.

    Args:
        clamp: largest 1/(F + 1e-8) before the factor α (so var ≤ α · clamp before scaling).
        last_layer_clamp: the same bound for the last layer's tensors (the notebook's 1e2 for `size(0) == K`).
        scale: the variance factor of the last layer and 1-d tensors.
        scale_last_layer: apply `scale` to the last layer's weight (its bias is 1-d and follows `scale_vectors`).
        scale_vectors: apply `scale` to every 1-d tensor (BatchNorm weights and biases, layer biases).
        zero_forgotten_rows: for class forgetting, the forgotten classes' last-layer rows (weight rows and bias
            entries) get mean 0 and variance `forgotten_row_var` (before `scale`, as in the notebook).
        forgotten_row_var: that variance.
    """

    clamp: PositiveFloat = 1e3
    last_layer_clamp: PositiveFloat = 1e2
    scale: PositiveFloat = 10.0
    scale_last_layer: bool = True
    scale_vectors: bool = True
    zero_forgotten_rows: bool = True
    forgotten_row_var: PositiveFloat = 1e-4

    def __post_init__(self) -> None:
        check_fields(self, "noise")  # one line naming the setting, the value and its range


def forgetting_distribution(theta: torch.Tensor, fisher: torch.Tensor, *, alpha: float, rules: NoiseRules = NoiseRules(),
                            last_layer: bool = False, forget_classes: Sequence[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, variance) of the forgetting noise of one parameter tensor θ₀ with diagonal Fisher F (`NoiseRules`)."""
    var = (1.0 / (fisher + EPS)).clamp(max=rules.clamp)
    if last_layer:
        var = var.clamp(max=rules.last_layer_clamp)
    var = alpha * var
    if theta.ndim > 1:
        var = var.mean(dim=1, keepdim=True).expand_as(theta).clone()
    mean = theta.detach().clone()
    if last_layer and forget_classes and rules.zero_forgotten_rows:
        rows = torch.as_tensor(list(forget_classes), dtype=torch.long, device=theta.device)
        mean[rows], var[rows] = 0.0, rules.forgotten_row_var
    if (last_layer and rules.scale_last_layer) or (theta.ndim == 1 and rules.scale_vectors):
        var = var * rules.scale
    return mean, var


def add_fisher_noise_(model: nn.Module, fisher: dict[str, torch.Tensor], *, alpha: float, generator: torch.Generator,
                      rules: NoiseRules = NoiseRules(), forget_classes: Sequence[int] | None = None,
                      last_layer: Collection[str] | None = None) -> dict[str, torch.Tensor]:
    """θ ← μ + √var ⊙ n, n ~ N(0, I), for every named parameter of `model`, in place (Forgetting.ipynb cell 78);
    returns the variances. The noise is drawn on the CPU from `generator`, parameter by parameter in
    `named_parameters` order, so a seed gives the same weights on every device. Buffers are left as they are.
    `last_layer`: its parameter names (default `last_layer_names(model)`)."""
    last = set(last_layer_names(model) if last_layer is None else last_layer)
    variances = {}
    with torch.no_grad():
        for name, p in model.named_parameters():
            mean, var = forgetting_distribution(p, fisher[name], alpha=alpha, rules=rules, last_layer=name in last, forget_classes=forget_classes)
            noise = torch.randn(p.shape, generator=generator, dtype=p.dtype).to(p.device)
            p.copy_(mean + var.sqrt() * noise)
            variances[name] = var
    return variances
