"""ResNet-18/50 (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016) with the CIFAR stem.

The unlearning papers use the kuangliu/pytorch-cifar variant: a 3×3 stride-1 first conv and no max-pool, so
32×32 inputs keep their resolution into the first stage. Built on timm's `resnet18`/`resnet50`.
"""

from __future__ import annotations

import timm
from timm.models.resnet import BasicBlock, ResNet
from torch import nn

from benchmark.models import register_model

NARROW_CHANNELS = (16, 32, 64, 128)


def _cifar_stem(model: nn.Module, in_chans: int, width: int, stride: int) -> nn.Module:
    model.conv1 = nn.Conv2d(in_chans, width, kernel_size=3, stride=stride, padding=1, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    model.maxpool = nn.Identity()
    return model


def _cifar_resnet(arch: str, in_chans: int) -> tuple[nn.Module, int]:
    model = _cifar_stem(timm.create_model(arch, pretrained=False, num_classes=0, in_chans=in_chans), in_chans, 64, stride=1)
    return model, model.num_features


@register_model("cifar_resnet18")
def cifar_resnet18(*, num_classes: int, in_chans: int, image_size: int) -> tuple[nn.Module, int]:
    """CIFAR-stem ResNet-18, 512-d features."""
    return _cifar_resnet("resnet18", in_chans)


@register_model("cifar_resnet50")
def cifar_resnet50(*, num_classes: int, in_chans: int, image_size: int) -> tuple[nn.Module, int]:
    """CIFAR-stem ResNet-50, 2048-d features."""
    return _cifar_resnet("resnet50", in_chans)


@register_model("narrow_resnet18")
def narrow_resnet18(*, num_classes: int, in_chans: int, image_size: int) -> tuple[nn.Module, int]:
    """The paper-like CPU original of the Fashion-MNIST suites: ResNet-18's blocks and BatchNorm (2-2-2-2 basic
    blocks) at a quarter of the width (16-32-64-128 channels, 0.7 M parameters), 128-d features.

    One CPU concession: the 3×3 stem has stride 2 (28×28 → 14×14 into the first stage; no max-pool), which makes a
    training step 4.7× cheaper than the CIFAR stem's stride 1 (0.16 vs 0.76 s per batch of 128 on one thread).
    Measured fit on Fashion-MNIST: 94.49 % train / 92.77 % test after `fashion_mnist_sgd` (30 epochs), 96.20 / 94.14 %
    after `fashion_mnist_sgd_long` (100)."""
    return _strided_resnet18(in_chans, NARROW_CHANNELS)


@register_model("half_resnet18")
def half_resnet18(*, num_classes: int, in_chans: int, image_size: int) -> tuple[nn.Module, int]:
    """`narrow_resnet18` at twice its width, half ResNet-18's (32-64-128-256 channels, 2.8 M parameters), 256-d
    features: more capacity to fit Fashion-MNIST's training set under the paper's augmentation and weight decay than
    the quarter width has (94.5 % train after `fashion_mnist_sgd`; seed 000's CIFAR-10 ResNet-18 fit 99.6 %). Measured:
    95.5 % train, 93.6 % test after `fashion_mnist_sgd` (2026-12-03), one point more. 0.37 s per batch of 128 on one
    thread (`narrow_resnet18`: 0.13 s)."""
    return _strided_resnet18(in_chans, tuple(2 * c for c in NARROW_CHANNELS))


def _strided_resnet18(in_chans: int, channels: tuple[int, ...]) -> tuple[nn.Module, int]:
    model = ResNet(BasicBlock, (2, 2, 2, 2), num_classes=0, in_chans=in_chans, channels=channels,
                   stem_type="deep", stem_width=channels[0] // 2)  # (a deep stem's width sets the first stage's input)
    return _cifar_stem(model, in_chans, channels[0], stride=2), model.num_features
