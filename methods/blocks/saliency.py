"""SalUn's weight saliency (Fan et al., ICLR 2024, *SalUn: Empowering Machine Unlearning via Gradient-based Weight
Saliency*, §4: the saliency map m_S and θ_u = m_S ⊙ (Δθ + θ_o) + (1 − m_S) ⊙ θ_o), as the authors' code computes and
applies it (OPTML-Group/Unlearn-Saliency @ Classification/generate_mask.py, Classification/unlearn/RL.py, HEAD a6e89fd)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from methods.blocks.gradients import accumulated_gradients
from methods.blocks.masking import top_fraction


def forget_gradient_magnitudes(model: nn.Module, batches: Iterable, device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
    """|Σ_b ∇_θ (−L_CE(f_θ(x_b), y_b))| per parameter (named as in `named_parameters`), L_CE the mean over batch b, the
    gradients summed over `batches` of (x, y) before the absolute value (`generate_mask.py`'s `save_gradient_ratio`),
    the model in evaluation mode (BatchNorm's running statistics, not updated; `accumulated_gradients`)."""
    names = [name for name, _ in model.named_parameters()]
    total, _ = accumulated_gradients(model, batches, lambda out, y: -F.cross_entropy(out, y), names, device=device)
    return {name: g.abs() for name, g in total.items()}


def saliency_mask(model: nn.Module, batches: Iterable, ratio: float, device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
    """m_S: True for the round(ratio · N) parameter entries of largest `forget_gradient_magnitudes`, ranked globally
    over all N entries of all parameters (weights, biases, normalisation layers and head alike), on the CPU."""
    return top_fraction(forget_gradient_magnitudes(model, batches, device), ratio)


def mask_gradients_(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Zero the gradient of every entry outside the mask (`_apply_mask_to_grads`)."""
    for name, p in model.named_parameters():
        if p.grad is not None and name in masks:
            p.grad.masked_fill_(~masks[name], 0.0)


def restore_outside_mask_(model: nn.Module, masks: dict[str, torch.Tensor], anchor: dict[str, torch.Tensor],
                          optimizer: torch.optim.Optimizer) -> None:
    """Put every entry outside the mask back to its `anchor` value and zero its entries in the optimizer's per-parameter
    state tensors (SGD's momentum buffer; Adam's moments): what Unlearn-Saliency #33 (`_restore_masked_params`) does
    after every `optimizer.step()`, so that weight decay and momentum cannot move a frozen entry. Exact (a copy, not the
    code's `p · m + θ₀ · (1 − m)`, which is the same for finite values)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name not in anchor:
                continue
            keep = masks[name]
            p.copy_(torch.where(keep, p, anchor[name]))
            for key, value in optimizer.state.get(p, {}).items():
                if key != "step" and torch.is_tensor(value) and value.shape == p.shape:
                    value.masked_fill_(~keep, 0.0)
