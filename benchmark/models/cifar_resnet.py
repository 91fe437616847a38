"""ResNet-18/50 (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016) with the CIFAR stem.

The unlearning papers use the kuangliu/pytorch-cifar variant: a 3×3 stride-1 first conv and no max-pool, so
32×32 inputs keep their resolution into the first stage. Built on timm's `resnet18`/`resnet50`.
"""

from __future__ import annotations

import timm
from torch import nn

from benchmark.models import register_model


def _cifar_resnet(arch: str, in_chans: int) -> tuple[nn.Module, int]:
    model = timm.create_model(arch, pretrained=False, num_classes=0, in_chans=in_chans)
    model.conv1 = nn.Conv2d(in_chans, 64, kernel_size=3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    model.maxpool = nn.Identity()
    return model, model.num_features


@register_model("cifar_resnet18")
def cifar_resnet18(*, num_classes: int, in_chans: int, image_size: int) -> tuple[nn.Module, int]:
    """CIFAR-stem ResNet-18, 512-d features."""
    return _cifar_resnet("resnet18", in_chans)


@register_model("cifar_resnet50")
def cifar_resnet50(*, num_classes: int, in_chans: int, image_size: int) -> tuple[nn.Module, int]:
    """CIFAR-stem ResNet-50, 2048-d features."""
    return _cifar_resnet("resnet50", in_chans)
