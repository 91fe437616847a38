"""Parameter importances shared by methods: MAS (seed 000 eq. 2; Aljundi et al. 2018) and its penalty (eq. 7)."""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

_PER_SAMPLE_BUDGET = 1 << 24  # elements of per-sample gradients (and patches) materialised at once


def _mas_vmap(model: nn.Module, x: torch.Tensor, batch_size: int) -> dict[str, torch.Tensor]:
    """Σ_n |per-sample gradient| by torch.func (vmap of grad, one sample per call): any model, ~25× a pass."""
    params = {name: p.detach() for name, p in model.named_parameters()}
    buffers = dict(model.named_buffers())

    def squared_norm(p: dict[str, torch.Tensor], xi: torch.Tensor) -> torch.Tensor:
        return functional_call(model, (p, buffers), (xi.unsqueeze(0),)).pow(2).sum()

    per_sample = vmap(grad(squared_norm), in_dims=(None, 0))
    total = {name: torch.zeros_like(p) for name, p in params.items()}
    device = next(iter(params.values())).device
    for chunk in x.split(batch_size):
        for name, g in per_sample(params, chunk.to(device)).items():
            total[name] += g.abs().sum(0)
    return total


def _supported(module: nn.Module) -> bool:
    """Whether `_add_abs_per_sample` knows the per-sample gradients of `module`'s own parameters."""
    if {name for name, _ in module.named_parameters(recurse=False)} - {"weight", "bias"}:
        return False
    if isinstance(module, nn.Linear):
        return type(module).forward is nn.Linear.forward
    if isinstance(module, nn.Conv2d):
        return type(module).forward is nn.Conv2d.forward
    if isinstance(module, nn.modules.batchnorm._BatchNorm):  # eval mode with running statistics: per-channel affine
        return (type(module).forward is nn.modules.batchnorm._BatchNorm.forward
                and module.running_mean is not None and module.running_var is not None)
    return False


def _conv_padding(conv: nn.Conv2d) -> list[int]:
    """[left, right, top, bottom] (nn.functional.pad's order) of `conv`'s padding; an even 'same' is asymmetric."""
    if conv.padding == "valid":
        return [0, 0, 0, 0]
    if conv.padding == "same":
        pads = []
        for d, k in zip(reversed(conv.dilation), reversed(conv.kernel_size)):
            pads += [d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2]
        return pads
    return [conv.padding[1], conv.padding[1], conv.padding[0], conv.padding[0]]


def _add_abs_per_sample(module: nn.Module, a: torch.Tensor, g: torch.Tensor, weight: torch.Tensor,
                        bias: torch.Tensor | None) -> bool:
    """weight += Σ_n |∂L_n/∂W|, bias += Σ_n |∂L_n/∂b| from the module's input a and output gradient g.

    Returns False where the shapes are not [N, ...] with one sample per row (the caller then falls back).
    """
    n = len(a)
    if a.dim() < 2 or g.dim() < 2 or len(g) != n:
        return False
    if isinstance(module, nn.Linear):
        a, g = a.reshape(n, -1, a.shape[-1]), g.reshape(n, -1, g.shape[-1])
        if a.shape[1] != g.shape[1]:
            return False
        if a.shape[1] == 1:  # Σ_n |g_n a_nᵀ| = |G|ᵀ |A|
            weight += g[:, 0].abs().T @ a[:, 0].abs()
        else:  # Σ_t g_{n,t} a_{n,t}ᵀ per sample
            step = max(1, _PER_SAMPLE_BUDGET // weight.numel())
            for a_s, g_s in zip(a.split(step), g.split(step)):
                weight += torch.bmm(g_s.transpose(1, 2), a_s).abs().sum(0)
        if bias is not None:
            bias += g.sum(1).abs().sum(0)
        return True
    if isinstance(module, nn.Conv2d):
        if a.dim() != 4:
            return False
        mode = "constant" if module.padding_mode == "zeros" else module.padding_mode
        a = nn.functional.pad(a, _conv_padding(module), mode=mode)
        g = g.flatten(2)  # [N, C_out, P]
        groups, (c_out, c_in_group) = module.groups, weight.shape[:2]
        k = weight[0].numel()  # C_in/groups · kh · kw, the rows of a group's patches
        step = max(1, _PER_SAMPLE_BUDGET // (weight.numel() + module.in_channels * weight[0, 0].numel() * g.shape[2]))
        for a_s, g_s in zip(a.split(step), g.split(step)):
            patches = nn.functional.unfold(a_s, module.kernel_size, dilation=module.dilation, stride=module.stride)
            if patches.shape[2] != g_s.shape[2]:
                return False
            patches = patches.view(len(a_s), groups, k, -1)  # unfold orders rows channel-major, as the weight
            per_sample = torch.matmul(g_s.view(len(a_s), groups, c_out // groups, -1), patches.transpose(2, 3))
            weight += per_sample.abs().sum(0).view(c_out, c_in_group, *weight.shape[2:])
        if bias is not None:
            bias += g.sum(2).abs().sum(0)
        return True
    # BatchNorm in eval mode: y = x̂ w + b per channel, x̂ from the running statistics
    shape = (1, -1) + (1,) * (a.dim() - 2)
    x_hat = (a - module.running_mean.view(shape)) * torch.rsqrt(module.running_var.view(shape) + module.eps)
    weight += (g * x_hat).reshape(n, len(weight), -1).sum(2).abs().sum(0)
    if bias is not None:
        bias += g.reshape(n, len(bias), -1).sum(2).abs().sum(0)
    return True


def _mas_hooks(model: nn.Module, x: torch.Tensor, batch_size: int) -> dict[str, torch.Tensor] | None:
    """Σ_n |per-sample gradient| from one forward and one backward per chunk; None where unsupported.

    Forward hooks record every parameterised module's input and add a zero leaf to its output, whose
    gradient (torch.autograd.grad of Σ_n ‖g_θ(x_n)‖², so nothing lands in .grad) is the gradient w.r.t. that
    output even if a later in-place op (ReLU(inplace=True)) overwrites it. In eval mode the samples do not
    interact, so row n of that gradient is sample n's; the per-sample parameter gradients follow from it and
    the input in closed form (`_add_abs_per_sample`). Unsupported: a parameterised module other than
    nn.Linear, nn.Conv2d and BatchNorm with running statistics, shared parameters or modules, a module not
    run exactly once per forward, an input modified in place, batch-coupling BatchNorm (no running stats).
    Assumed: a module's parameters are used only in its own forward.
    """
    named = dict(model.named_parameters())
    if len(list(model.named_parameters(remove_duplicate=False))) != len(named):
        return None
    for module in model.modules():  # batch statistics would couple the samples of a chunk
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and (
                module.running_mean is None or module.running_var is None):
            return None
    owners = []  # (module, weight name, bias name or None)
    for prefix, module in model.named_modules():
        own = dict(module.named_parameters(recurse=False))
        if not own:
            continue
        if not _supported(module) or "weight" not in own:
            return None
        full = {name: f"{prefix}.{name}" if prefix else name for name in own}
        owners.append((module, full["weight"], full.get("bias")))
    if len(owners) != len(set(id(m) for m, _, _ in owners)):
        return None
    total = {name: torch.zeros_like(p) for name, p in named.items()}
    if not owners:
        return total
    device = next(iter(named.values())).device
    records: dict[nn.Module, list] = {}

    def record(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor | None:
        if not inputs or not isinstance(inputs[0], torch.Tensor):  # called with keywords: fall back
            records.setdefault(module, []).extend([None, None])
            return None
        a = inputs[0].detach()
        zero = torch.zeros_like(output, requires_grad=True)
        records.setdefault(module, []).append((a, a._version, zero))
        return output + zero

    handles = [module.register_forward_hook(record) for module, _, _ in owners]
    try:
        for chunk in x.split(batch_size):
            records.clear()
            with torch.enable_grad():
                loss = model(chunk.detach().to(device)).pow(2).sum()
            if any(len(records.get(module, ())) != 1 for module, _, _ in owners):
                return None
            zeros = [records[module][0][2] for module, _, _ in owners]
            grads = (torch.autograd.grad(loss, zeros, allow_unused=True) if loss.requires_grad
                     else [None] * len(zeros))
            with torch.no_grad():
                for (module, weight_name, bias_name), g in zip(owners, grads):
                    a, version, _ = records[module][0]
                    if a._version != version:
                        return None
                    if g is not None and not _add_abs_per_sample(
                            module, a, g, total[weight_name], total[bias_name] if bias_name else None):
                        return None
    finally:
        for handle in handles:
            handle.remove()
        records.clear()
    return total


def mas_importance(model: nn.Module, x: torch.Tensor, batch_size: int = 32) -> dict[str, torch.Tensor]:
    """Ω_i = (1/N) Σ_n |∂‖g_θ(x_n)‖²₂ / ∂θ_i| over the rows of x (seed 000 eq. 2; MAS, Aljundi et al. 2018).

    One tensor per named parameter, model in eval mode (BatchNorm with running statistics; the training
    flag is restored). Per-sample gradients as Opacus/BackPACK obtain them: one ordinary forward and
    backward per chunk of `batch_size` samples gives each nn.Linear / nn.Conv2d / BatchNorm its input and
    output gradient per sample, from which the per-sample parameter gradients follow in closed form
    (|G|ᵀ|A| for a linear layer on [N, in], unfolded patches for a convolution; `_mas_hooks`). Models with
    other parameterised modules fall back to torch.func (vmap of grad, ~25× slower; `_mas_vmap`). Neither
    touches .grad or requires_grad. The authors' code instead takes |∂ mean_n ‖g_θ(x_n)‖₂ / ∂θ| per batch
    (unsquared norm, absolute value after the batch mean, model in train mode); we follow eq. 2.
    """
    was_training = model.training
    model.eval()
    try:
        total = _mas_hooks(model, x, batch_size)
        if total is None:
            total = _mas_vmap(model, x, batch_size)
    finally:
        model.train(was_training)
    return {name: t / len(x) for name, t in total.items()}


def normalize_per_tensor(importance: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """(Ω^l − min Ω^l) / (max Ω^l − min Ω^l) per parameter tensor l (seed 001 Algorithm 2, line 5).

    A "layer" is read as one parameter tensor (a layer's weight and bias are scaled separately, as in the
    authors' code). A constant tensor (e.g. all zero: parameters without effect on D_f's outputs), where
    the formula divides by zero, maps to 0: no importance, so fully held in place (Ω̄ = 1).
    """
    def scale(t: torch.Tensor) -> torch.Tensor:
        low, high = t.min(), t.max()
        return (t - low) / (high - low) if high > low else torch.zeros_like(t)

    return {name: scale(t) for name, t in importance.items()}


def penalty_weights(model: nn.Module, x: torch.Tensor, batch_size: int = 32) -> dict[str, torch.Tensor]:
    """Ω̄ = 1 − Ω, Ω the per-tensor normalised MAS importance of `model` on x (seed 001 Algorithm 2)."""
    return {name: 1 - omega for name, omega in normalize_per_tensor(mas_importance(model, x, batch_size)).items()}


def importance_penalty(model: nn.Module, reference: nn.Module, weights: dict[str, torch.Tensor]) -> torch.Tensor:
    """R_Imp = Σ_i Ω̄_i (θ_i − θ̃_i)² over every parameter (seed 000 eq. 7), θ̃ the reference's weights."""
    anchors = dict(reference.named_parameters())
    return sum((weights[name] * (p - anchors[name]).pow(2)).sum() for name, p in model.named_parameters())
