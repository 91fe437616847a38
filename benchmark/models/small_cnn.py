"""A small VGG-style CNN (Simonyan & Zisserman, ICLR 2015, scaled down) for 8×8 `digits` and 28×28 Fashion-MNIST.

Two conv-conv-pool blocks and a fully connected layer over the flattened map (no global pooling), so it has
the capacity to fit the Fashion-MNIST training set (≥99% train accuracy).
"""

from __future__ import annotations

from torch import nn

from benchmark.models import register_model

FEATURE_DIM = 256


@register_model("small_cnn")
def small_cnn(*, num_classes: int, in_chans: int, image_size: int) -> tuple[nn.Module, int]:
    """conv32-conv32-pool-conv64-conv64-pool-FC256 (3×3 convs, padding 1, ReLU) → 256-d features."""
    backbone = nn.Sequential(
        nn.Conv2d(in_chans, 32, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(32, 32, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(64, 64, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * (image_size // 4) ** 2, FEATURE_DIM),
        nn.ReLU(inplace=True),
    )
    return backbone, FEATURE_DIM


def _narrow(in_chans: int, image_size: int, norm: str | None) -> nn.Sequential:
    """conv32(4×4, stride 2)-conv64(4×4, stride 2)-FC256, each followed by [a normalisation layer and] ReLU: `bn`
    BatchNorm, `ln` LayerNorm (over channels and positions: GroupNorm with one group; over the 256 units), `in`
    InstanceNorm with affine parameters (the FC layer then has none: one value per channel has no instance statistics)."""
    def conv_norm(channels: int) -> nn.Module | None:
        return {"bn": lambda: nn.BatchNorm2d(channels), "ln": lambda: nn.GroupNorm(1, channels),
                "in": lambda: nn.InstanceNorm2d(channels, affine=True), None: lambda: None}[norm]()

    def fc_norm() -> nn.Module | None:
        return {"bn": lambda: nn.BatchNorm1d(FEATURE_DIM), "ln": lambda: nn.LayerNorm(FEATURE_DIM)}.get(norm, lambda: None)()

    def block(layer: nn.Module, normalisation: nn.Module | None) -> list[nn.Module]:
        return [layer, nn.ReLU(inplace=True)] if normalisation is None else [layer, normalisation, nn.ReLU(inplace=True)]

    return nn.Sequential(
        *block(nn.Conv2d(in_chans, 32, 4, stride=2, padding=1, bias=norm != "bn"), conv_norm(32)),
        *block(nn.Conv2d(32, 64, 4, stride=2, padding=1, bias=norm != "bn"), conv_norm(64)),
        nn.Flatten(),
        *block(nn.Linear(64 * (image_size // 4) ** 2, FEATURE_DIM, bias=norm != "bn"), fc_norm()),
    )


@register_model("narrow_cnn")
def narrow_cnn(*, num_classes: int, in_chans: int, image_size: int) -> tuple[nn.Module, int]:
    """conv32(4×4, stride 2)-conv64(4×4, stride 2)-FC256 (ReLU) → 256-d features.

    The CPU variant of the paper tables on Fashion-MNIST: strided convolutions instead of `small_cnn`'s
    pooling and full-resolution convolutions make a forward+backward pass about 10× cheaper on a CPU,
    and it still fits the training set (≥99% train accuracy) with ≥90% test accuracy.
    """
    return _narrow(in_chans, image_size, norm=None), FEATURE_DIM


@register_model("narrow_cnn_bn")
def narrow_cnn_bn(*, num_classes: int, in_chans: int, image_size: int) -> tuple[nn.Module, int]:
    """`narrow_cnn` with BatchNorm after each convolution and the 256-unit layer, as the papers' ResNets have.

    Normalisation makes the convolutions' output scale-invariant to their weights, which bounds how far
    gradient ascent (NegGrad, Adv's L_UL^MS) can inflate the logits.
    """
    return _narrow(in_chans, image_size, norm="bn"), FEATURE_DIM


@register_model("narrow_cnn_ln")
def narrow_cnn_ln(*, num_classes: int, in_chans: int, image_size: int) -> tuple[nn.Module, int]:
    """`narrow_cnn_bn` with LayerNorm instead of BatchNorm (seed 004 App. D.2, Table 6's *_LN)."""
    return _narrow(in_chans, image_size, norm="ln"), FEATURE_DIM


@register_model("narrow_cnn_in")
def narrow_cnn_in(*, num_classes: int, in_chans: int, image_size: int) -> tuple[nn.Module, int]:
    """`narrow_cnn_bn` with InstanceNorm after the convolutions and none after the FC layer (seed 004 App. D.2, Table 6's
    *_IN). Its second map is image_size / 4 a side: 2 × 2 on 8 × 8 digits, the least that has instance statistics."""
    if image_size < 8:
        raise ValueError(f"narrow_cnn_in needs images of at least 8 × 8 (its InstanceNorm maps are image_size / 4 a side), got {image_size}")
    return _narrow(in_chans, image_size, norm="in"), FEATURE_DIM
