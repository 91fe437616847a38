"""Training-time augmentations applied to whole batches on the device (in-memory datasets).

A dataset names its augmentation in `DatasetInfo.train_augment`; the scenario applies it to training
batches only, never to evaluation.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from benchmark.core.registry import Registry

AUGMENTATIONS: Registry[Callable[[torch.Tensor], torch.Tensor]] = Registry("augmentation")


def shift(x: torch.Tensor, padding: int) -> torch.Tensor:
    """Random crop after zero padding by `padding` pixels: each image shifted by up to `padding` pixels each way."""
    n, c, h, w = x.shape
    padded = F.pad(x, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (n,), device=x.device)
    dx = torch.randint(0, 2 * padding + 1, (n,), device=x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device)[None])[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device)[None])[:, None, None, :]
    return padded[torch.arange(n, device=x.device)[:, None, None, None], torch.arange(c, device=x.device)[None, :, None, None], rows, cols]


@AUGMENTATIONS.register("crop_flip")
def crop_flip(x: torch.Tensor, padding: int = 4) -> torch.Tensor:
    """Random crop after zero padding by `padding` pixels, and random horizontal flip (the CIFAR recipe
    of He et al. 2016, used by the papers' CIFAR models)."""
    return flip(shift(x, padding))


@AUGMENTATIONS.register("crop")
def crop(x: torch.Tensor) -> torch.Tensor:
    """Random crop after zero padding by p = max(1, round(H / 8)) pixels, no flip (digits and clothes are not
    mirror-symmetric): p = 4 at 32 × 32 (seed 004's authors' `RandomCrop(32, padding=4)`) and at 28 × 28, 1 at 8 × 8.
    Seed 004's Φ and the training augmentation of its CPU originals."""
    return shift(x, max(1, round(x.shape[-2] / 8)))


@AUGMENTATIONS.register("flip")
def flip(x: torch.Tensor) -> torch.Tensor:
    """Random horizontal flip."""
    return torch.where((torch.rand(len(x), device=x.device) < 0.5)[:, None, None, None], x.flip(-1), x)
