"""Gradients of a batch loss accumulated over batches, the pass several methods make once before unlearning: SalUn's
saliency (Σ ∇(−CE) on D_f), SSD's importances (mean (∇CE)² per batch), MSG's snip gradients (Σ ±∇CE), IU's gradient sums."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""loss(outputs, labels) of one batch."""


def accumulated_gradients(model: nn.Module, batches: Iterable, loss: Loss, names: list[str], *,
                          transform: Callable[[torch.Tensor], torch.Tensor] | None = None, train: bool = False,
                          frozen_batchnorm: bool = False, device: torch.device | str | None = None) -> tuple[dict[str, torch.Tensor], int]:
    """Σ over `batches` of (x, y, ...) of transform(∇ loss(model(x), y)) for the parameters `names` (as named in
    `named_parameters`), and the number of batches. The model runs in evaluation mode, or with `train` in training
    mode (its BatchNorms in evaluation mode with `frozen_batchnorm`); afterwards its modes, buffers (running
    statistics a training-mode pass updates), `requires_grad` flags and `.grad`s are as they were."""
    parameters = dict(model.named_parameters())
    chosen = [parameters[name] for name in names]
    total = {name: torch.zeros_like(parameters[name]) for name in names}
    modes = {module: module.training for module in model.modules()}
    flags = {name: p.requires_grad for name, p in parameters.items()}
    buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
    model.train(train)
    if frozen_batchnorm:
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
    for p in chosen:
        p.requires_grad_(True)
    count = 0
    try:
        with torch.enable_grad():
            for x, y, *_ in batches:
                value = loss(model(x.to(device)), y.to(device))
                for name, g in zip(names, torch.autograd.grad(value, chosen, allow_unused=True)):
                    if g is not None:
                        total[name] += transform(g) if transform is not None else g
                count += 1
    finally:
        for module, training in modes.items():
            module.train(training)
        for name, p in parameters.items():
            p.requires_grad_(flags[name])
        with torch.no_grad():
            for name, b in model.named_buffers():
                b.copy_(buffers[name])
    return total, count
