"""The last k blocks of every kind of backbone `benchmark.models` builds (`methods.blocks.layers`), and the frozen rest."""

from __future__ import annotations

import pytest
from torch import nn

from benchmark.core.errors import UnlearnBenchError
from benchmark.models import create_model
from methods.blocks.layers import backbone_blocks, frozen_roots, last_blocks

LAST = {
    "narrow_resnet18": (4, ["backbone.layer4"]),
    "half_resnet18": (4, ["backbone.layer4"]),
    "small_cnn": (5, ["backbone.11"]),  # its FC-256
    "narrow_cnn_bn": (3, ["backbone.7", "backbone.8"]),  # the FC-256 with its BatchNorm1d
    "narrow_allcnn": (8, ["backbone.21", "backbone.22"]),  # the 1×1 conv with its BatchNorm
    "narrow_mobilenetv2": (7, ["backbone.blocks.6", "backbone.conv_head", "backbone.bn2"]),  # the last stage, then the head conv
    "small_vit": (6, ["backbone.blocks.5", "backbone.norm"]),  # the last transformer block, then the final LayerNorm
}


def model(arch: str) -> nn.Module:
    return create_model(arch, num_classes=10, in_chans=1, image_size=28)


@pytest.mark.parametrize("arch", sorted(LAST))
def test_the_last_block_of_each_backbone(arch):
    count, last = LAST[arch]
    m = model(arch)
    assert len(backbone_blocks(m.backbone)) == count and last_blocks(m, 1) == last
    assert last_blocks(m, 2)[-len(last):] == last and len(last_blocks(m, 2)) > len(last)
    everything = last_blocks(m, count)
    with pytest.raises(UnlearnBenchError, match=f"^k = {count + 1} is more than the {count} blocks of {arch} \\(") as error:
        last_blocks(m, count + 1)
    assert "\n" not in str(error.value)
    assert all(sum(p.numel() for p in m.get_submodule(n).parameters()) > 0 for n in everything)


def test_a_resnet_counts_its_stages_and_a_sequential_its_layers_with_their_normalisation():
    resnet, cnn = model("narrow_resnet18"), model("narrow_cnn_bn")
    assert last_blocks(resnet, 2) == ["backbone.layer3", "backbone.layer4"]
    assert last_blocks(resnet, 4) == [f"backbone.layer{i}" for i in range(1, 5)]  # the stem (conv1, bn1) is never a block
    assert [[name for name, _ in block] for block in backbone_blocks(cnn.backbone)] == [["0", "1"], ["3", "4"], ["7", "8"]]
    assert [type(m).__name__ for _, m in backbone_blocks(cnn.backbone)[0]] == ["Conv2d", "BatchNorm2d"]


@pytest.mark.parametrize("arch", sorted(LAST))
def test_the_frozen_roots_and_the_trainable_modules_split_the_parameters(arch):
    m = model(arch)
    trainable = last_blocks(m, 1) + ["head"]
    roots = frozen_roots(m, trainable)
    inside = {id(p) for name in trainable for p in m.get_submodule(name).parameters()}
    frozen = {id(p) for root in roots for p in root.parameters()}
    loose = {id(p) for module in m.modules() if not any(module is r or module is m.get_submodule(t) for r in roots for t in trainable)
             for p in module.parameters(recurse=False)}  # (ViT's cls_token and pos_embed: parameters of an ancestor)
    assert not inside & frozen and {id(p) for p in m.parameters()} == inside | frozen | (loose - inside - frozen)
    assert all(not any(sub is m.get_submodule(t) for sub in root.modules()) for root in roots for t in trainable)
    assert (arch == "small_vit") == bool(loose - inside - frozen)
