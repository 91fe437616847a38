"""Model registry: a backbone factory per name, wrapped in a `Classifier` that normalises [0, 1] pixels itself.

Names not registered here fall back to timm (Wightman, "PyTorch Image Models", 2019), built from scratch.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Protocol

import timm
import torch
from torch import nn

from benchmark.core.errors import UnknownNameError, UnlearnBenchError
from benchmark.core.registry import Registry


class ModelFactory(Protocol):
    def __call__(self, *, num_classes: int, in_chans: int, image_size: int) -> tuple[nn.Module, int]:
        """Return (backbone mapping images to penultimate features [B, D], D)."""
        ...


MODELS = Registry[ModelFactory]("model")


def register_model(name: str):
    """Decorator registering a `ModelFactory` under `name`."""
    return MODELS.register(name)


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style `pattern` (timm names are accepted too)."""
    return MODELS.names(pattern)


class Normalize(nn.Module):
    """Per-channel (x - mean) / std, with mean and std as buffers so they travel with the checkpoint."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        if len(mean) != len(std):
            raise ValueError(f"mean has {len(mean)} channels but std has {len(std)}")
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(-1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class Classifier(nn.Module):
    """normalize → backbone (penultimate features) → linear head; inputs are pixels in [0, 1]."""

    def __init__(
        self, backbone: nn.Module, feature_dim: int, num_classes: int, arch: str, normalize: Normalize
    ) -> None:
        super().__init__()
        self.arch = arch
        self.num_classes = num_classes
        self.feature_dim = feature_dim
        self.normalize = normalize
        self.backbone = backbone
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.normalize(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _timm_backbone(name: str, *, num_classes: int, in_chans: int, image_size: int) -> tuple[nn.Module, int]:
    model = timm.create_model(name, pretrained=False, num_classes=0, in_chans=in_chans)
    return model, model.num_features


def create_model(
    name: str,
    *,
    num_classes: int,
    in_chans: int,
    image_size: int,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> Classifier:
    """Build `Classifier` for a registered name or, failing that, any timm model name."""
    try:
        factory: ModelFactory = MODELS.get(name)
    except UnknownNameError as err:
        if not timm.is_model(name):
            raise UnknownNameError(f"{err}; any timm model name is accepted too") from None
        factory = functools.partial(_timm_backbone, name)
    mean = (0.0,) * in_chans if mean is None else tuple(mean)
    std = (1.0,) * in_chans if std is None else tuple(std)
    if len(mean) != in_chans or len(std) != in_chans:
        raise UnlearnBenchError(f"mean/std need {in_chans} values (one per channel), got {len(mean)}/{len(std)}")
    backbone, feature_dim = factory(num_classes=num_classes, in_chans=in_chans, image_size=image_size)
    return Classifier(backbone, feature_dim, num_classes, name, Normalize(mean, std))


from benchmark.models import allcnn, cifar_resnet, other_backbones, small_cnn  # noqa: E402,F401  (registers the models)

__all__ = ["MODELS", "Classifier", "ModelFactory", "Normalize", "create_model", "list_models", "register_model"]
