"""Seed 001's "results on various models" (§5, Figure 5: MobileNetV2, SqueezeNet, ViT on CIFAR-100), sized for
28×28 Fashion-MNIST on a CPU. The paper attributes the larger loss on D_r / D_test of MobileNetV2 and SqueezeNet to
their narrower width (Mirzadeh et al., 2022) and ViT's to its need for data; these two let the suites test that
against `narrow_resnet18` (0.7 M parameters, 128-d features). Both are timm's (Wightman, 2019), built from scratch.
"""

from __future__ import annotations

import timm
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from benchmark.models import register_model

VIT_WIDTH, VIT_DEPTH, VIT_HEADS, VIT_PATCH = 96, 6, 3, 4


@register_model("narrow_mobilenetv2")
def narrow_mobilenetv2(*, num_classes: int, in_chans: int, image_size: int) -> tuple[nn.Module, int]:
    """MobileNetV2 (Sandler et al., CVPR 2018) at width 0.5 (timm `mobilenetv2_050`, 0.7 M parameters with its
    1280-d head conv): inverted residual blocks, BatchNorm, ReLU6. As for the CIFAR ResNets, the stem has stride 1,
    so a 28×28 image reaches the last stage at 2×2 instead of 1×1."""
    model = timm.create_model("mobilenetv2_050", pretrained=False, num_classes=0, in_chans=in_chans)
    model.conv_stem.stride = (1, 1)
    return model, model.num_features


@register_model("small_vit")
def small_vit(*, num_classes: int, in_chans: int, image_size: int) -> tuple[nn.Module, int]:
    """ViT (Dosovitskiy et al., ICLR 2021) on 4×4 patches (a 28×28 image is 49 tokens + [CLS]), 6 blocks of width
    96 with 3 heads (0.7 M parameters), LayerNorm instead of BatchNorm; the [CLS] token's 96-d output is the
    feature."""
    if image_size % VIT_PATCH:
        raise ValueError(f"small_vit needs an image size divisible by {VIT_PATCH}, got {image_size}")
    model = VisionTransformer(img_size=image_size, patch_size=VIT_PATCH, in_chans=in_chans, num_classes=0,
                              embed_dim=VIT_WIDTH, depth=VIT_DEPTH, num_heads=VIT_HEADS)
    return model, model.num_features
