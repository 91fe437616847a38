"""All-CNN-C (Springenberg et al., "Striving for Simplicity: The All Convolutional Net", ICLR 2015 workshop).

The CIFAR-10 model of Tarun et al., "Fast Yet Effective Machine Unlearning" (IEEE TNNLS 2023). Departures from
the paper: every 3×3 conv has padding 1 (so small inputs work), each conv is followed by BatchNorm + ReLU, there
is no dropout, and the final 1×1 class conv is replaced by the `Classifier`'s linear head after global pooling.
"""

from __future__ import annotations

from torch import nn

from benchmark.models import register_model

FEATURE_DIM = 192


def _conv_bn_relu(in_chans: int, out_chans: int, kernel_size: int = 3, stride: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(in_chans, out_chans, kernel_size, stride=stride, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_chans),
        nn.ReLU(inplace=True),
    ]


def _allcnn(in_chans: int, width: int) -> nn.Sequential:
    wide = 2 * width
    return nn.Sequential(
        *_conv_bn_relu(in_chans, width),
        *_conv_bn_relu(width, width),
        *_conv_bn_relu(width, width, stride=2),
        *_conv_bn_relu(width, wide),
        *_conv_bn_relu(wide, wide),
        *_conv_bn_relu(wide, wide, stride=2),
        *_conv_bn_relu(wide, wide),
        *_conv_bn_relu(wide, wide, kernel_size=1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )


@register_model("allcnn")
def allcnn(*, num_classes: int, in_chans: int, image_size: int) -> tuple[nn.Module, int]:
    """All-CNN-C trunk: 96, 96, 96/s2, 192, 192, 192/s2, 192 (3×3), 192 (1×1), global average pool → 192-d."""
    return _allcnn(in_chans, 96), FEATURE_DIM


@register_model("narrow_allcnn")
def narrow_allcnn(*, num_classes: int, in_chans: int, image_size: int) -> tuple[nn.Module, int]:
    """`allcnn` at a quarter of its width (24, …, 48 channels → 48-d): seed 002's AllCNN for the CPU variant, about 16×
    fewer multiply-adds (the full width took 2,706 s an epoch of Fashion-MNIST on one thread), as `narrow_resnet18` is
    ResNet-18's."""
    return _allcnn(in_chans, 24), 48
