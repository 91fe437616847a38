"""Every registered model (and a timm fallback) builds, has the right shapes and normalises its input."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from benchmark.core.errors import UnknownNameError
from benchmark.models import Classifier, Normalize, create_model, list_models

TIMM_FALLBACK = "resnet10t"
NUM_CLASSES = 7
CASES = [
    (name, in_chans, image_size)
    for name in [*list_models(), TIMM_FALLBACK]
    for in_chans in (1, 3)
    for image_size in ((32, 8) if name == "small_cnn" else (32,))
]


def _build(name: str, in_chans: int, image_size: int) -> Classifier:
    torch.manual_seed(0)
    return create_model(name, num_classes=NUM_CLASSES, in_chans=in_chans, image_size=image_size).eval()


@pytest.mark.parametrize(("name", "in_chans", "image_size"), CASES)
@torch.no_grad()
def test_shapes_and_head(name: str, in_chans: int, image_size: int) -> None:
    model = _build(name, in_chans, image_size)
    x = torch.rand(2, in_chans, image_size, image_size)
    logits, features = model(x), model.features(x)
    assert model.arch == name and model.num_classes == NUM_CLASSES
    assert logits.shape == (2, NUM_CLASSES)
    assert features.shape == (2, model.feature_dim)
    torch.testing.assert_close(logits, model.head(features))


@pytest.mark.parametrize("name", list_models("cifar_resnet*"))
def test_cifar_resnet_stem(name: str) -> None:
    backbone = _build(name, 3, 32).backbone
    assert backbone.conv1.kernel_size == (3, 3) and backbone.conv1.stride == (1, 1)
    assert backbone.conv1.padding == (1, 1) and backbone.conv1.bias is None
    assert isinstance(backbone.maxpool, nn.Identity)


@pytest.mark.parametrize("name, width", [("narrow_resnet18", 16), ("half_resnet18", 32)])
def test_strided_resnet18s_are_resnet18_at_a_fraction_of_its_width_with_a_stride_2_stem(name: str, width: int) -> None:
    backbone = _build(name, 1, 28).backbone
    assert backbone.conv1.stride == (2, 2) and isinstance(backbone.maxpool, nn.Identity)
    assert [len(stage) for stage in (backbone.layer1, backbone.layer2, backbone.layer3, backbone.layer4)] == [2, 2, 2, 2]
    assert [stage[-1].conv2.out_channels for stage in (backbone.layer1, backbone.layer2, backbone.layer3, backbone.layer4)] == [width, 2 * width, 4 * width, 8 * width]
    assert backbone(torch.rand(2, 1, 28, 28)).shape == (2, 8 * width)


def test_narrow_allcnn_is_allcnn_at_a_quarter_width() -> None:
    def shape(name: str) -> list[tuple]:
        return [(m.out_channels, m.kernel_size, m.stride) for m in _build(name, 1, 28).backbone if isinstance(m, nn.Conv2d)]
    full, narrow = shape("allcnn"), shape("narrow_allcnn")
    assert [(c // 4, k, s) for c, k, s in full] == narrow and _build("narrow_allcnn", 1, 28).feature_dim == 48


@torch.no_grad()
def test_normalisation_is_applied() -> None:
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.5, 0.5)
    model = create_model("small_cnn", num_classes=NUM_CLASSES, in_chans=3, image_size=8, mean=mean, std=std)
    x = torch.rand(2, 3, 8, 8)
    torch.testing.assert_close(model.normalize(x), (x - torch.tensor(mean).view(3, 1, 1)) / 0.5)
    before = model(x)
    model.normalize.mean.fill_(0.9)
    assert not torch.allclose(before, model(x))


def test_normalize_buffers_are_saved() -> None:
    assert set(Normalize((0.5,), (0.25,)).state_dict()) == {"mean", "std"}


def test_unknown_name_lists_registered_models() -> None:
    with pytest.raises(UnknownNameError, match="small_cnn") as info:
        create_model("no_such_model", num_classes=NUM_CLASSES, in_chans=3, image_size=32)
    assert "timm" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["narrow_mobilenetv2", "small_vit"])
@torch.no_grad()
def test_figure_5_backbones_fit_28x28_at_the_size_of_narrow_resnet18(name: str) -> None:
    model, reference = _build(name, 1, 28), _build("narrow_resnet18", 1, 28)
    size = sum(p.numel() for p in model.parameters())
    assert abs(size - sum(p.numel() for p in reference.parameters())) < 0.05 * size
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, NUM_CLASSES)
    if name == "small_vit":
        assert model.backbone.patch_embed.num_patches == 49 and not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    else:
        assert model.backbone.conv_stem.stride == (1, 1)


def test_small_vit_refuses_an_image_size_its_patches_do_not_divide() -> None:
    with pytest.raises(ValueError, match="divisible by 4"):
        _build("small_vit", 1, 30)
