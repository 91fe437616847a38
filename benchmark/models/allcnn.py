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


@register_model("allcnn")
def allcnn(*, num_classes: int, in_chans: int, image_size: int) -> tuple[nn.Module, int]:
    """All-CNN-C trunk: 96, 96, 96/s2, 192, 192, 192/s2, 192 (3×3), 192 (1×1), global average pool → 192-d."""
    backbone = nn.Sequential(
        *_conv_bn_relu(in_chans, 96),
        *_conv_bn_relu(96, 96),
        *_conv_bn_relu(96, 96, stride=2),
        *_conv_bn_relu(96, 192),
        *_conv_bn_relu(192, 192),
        *_conv_bn_relu(192, 192, stride=2),
        *_conv_bn_relu(192, 192),
        *_conv_bn_relu(192, FEATURE_DIM, kernel_size=1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )
    return backbone, FEATURE_DIM
