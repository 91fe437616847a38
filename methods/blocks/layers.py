"""The last k blocks of a `Classifier`, and the base of the methods that retrain only them (CFk, EUk: Goel et al. 2022,
*Towards Adversarial Evaluations for Inexact Machine Unlearning*, arXiv 2201.06640, "CF-k" and "EU-k": the last k
layers fine-tuned or retrained from scratch on D_r, everything below frozen).

The rule, one for every backbone `benchmark.models` builds (`backbone_blocks`), in the backbone's registration order:
- a ResNet (timm's: children named `layer1` … `layer4`): its stages, so k = 1 is `layer4` (SCRUB's code,
  meghdadk/SCRUB @ resnet50_cifar100.ipynb cells 21-22);
- a backbone with a stage container (a child `blocks`, `stages` or `layers`: timm's MobileNet, ViT, ConvNeXt, Swin):
  the container's entries (MobileNetV2's 7 stages, ViT's transformer blocks);
- any other backbone (`small_cnn`, `narrow_cnn*`, `allcnn`: an `nn.Sequential`): its parameterised top-level
  children, a normalisation layer joining the layer before it (a conv with its BatchNorm is one block), so k = 1 is
  `small_cnn`'s FC-256 and `allcnn`'s last 1×1 conv with its BatchNorm.
What the backbone registers after the stages (MobileNet's `conv_head` and `bn2`, ViT's final `norm`) joins the last
block: what lies between the trained blocks and the head trains with them. Everything before (the stem, ViT's
`cls_token`, `pos_embed` and patch embedding) is never a block. The `Classifier`'s `head` is not a block; the methods
say whether it trains (`head`).

The sources count differently: Goel et al.'s code (shash42/Evaluating-Inexact-Unlearning @ src/methods.py,
`resetFinalResnet`) counts k in conv and linear layers from the classifier back (k = 1: the classifier alone; the
BatchNorms met on the way train too), SCRUB's in ResNet stages without the classifier. Blocks with `head="train"` read
both: on a Sequential backbone, CFk's k blocks + head are Goel's k + 1 layers; on a ResNet, SCRUB's `layer4` + head.
"""

from __future__ import annotations

import re
from typing import Literal

from jsonargparse.typing import PositiveInt
from torch import nn

from benchmark.core.errors import UnlearnBenchError
from benchmark.models import Classifier
from methods.base import TrainsOnRetain, make_optimizer

STAGE_CONTAINERS = ("blocks", "stages", "layers")
"""Names of the child that holds a timm backbone's stages, in the order they are looked for."""
NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)
"""Normalisation layers (BatchNorm and InstanceNorm are `_NormBase`s), which join the block before them."""
Block = list[tuple[str, nn.Module]]
"""A block: (name in the backbone, module) of the modules it is made of."""


def _has_state(module: nn.Module) -> bool:
    return any(True for _ in module.parameters()) or any(True for _ in module.buffers())


def backbone_blocks(backbone: nn.Module) -> list[Block]:
    """The blocks of `backbone` in forward order, by the module docstring's rule."""
    children = list(backbone.named_children())
    stages = [i for i, (name, _) in enumerate(children) if re.fullmatch(r"layer\d+", name)]
    container = next((i for i, (name, m) in enumerate(children) if name in STAGE_CONTAINERS and isinstance(m, (nn.Sequential, nn.ModuleList)) and len(m)), None)
    if stages:
        blocks, after = [[children[i]] for i in stages], children[stages[-1] + 1 :]
    elif container is not None:
        prefix, stage = children[container]
        blocks, after = [[(f"{prefix}.{name}", m)] for name, m in stage.named_children()], children[container + 1 :]
    else:
        blocks, after = [], []
        for name, m in children:
            if not _has_state(m):
                continue
            if isinstance(m, NORMS) and blocks:
                blocks[-1].append((name, m))
            else:
                blocks.append([(name, m)])
    blocks = [b for b in blocks if any(_has_state(m) for _, m in b)]
    if blocks:
        blocks[-1] += [(name, m) for name, m in after if _has_state(m)]
    return blocks


def last_blocks(model: Classifier, k: int) -> list[str]:
    """Names (in `model`, e.g. `backbone.layer4`) of the modules of its backbone's last `k` blocks."""
    blocks = backbone_blocks(model.backbone)
    if k > len(blocks):
        listed = ", ".join("+".join(name for name, _ in block) for block in blocks)
        raise UnlearnBenchError(f"k = {k} is more than the {len(blocks)} blocks of {model.arch} ({listed})")
    return [f"backbone.{name}" for block in blocks[-k:] for name, _ in block]


def frozen_roots(model: nn.Module, trainable: list[str]) -> list[nn.Module]:
    """The largest submodules of `model` that hold none of the modules named in `trainable` (nor sit inside one):
    the frozen part, as modules whose mode can be set without touching the trainable part."""
    roots = []

    def visit(prefix: str, module: nn.Module) -> None:
        for name, child in module.named_children():
            path = f"{prefix}{name}"
            if path in trainable:
                continue
            if any(t.startswith(path + ".") for t in trainable):
                visit(path + ".", child)
            else:
                roots.append(child)

    visit("", model)
    return roots


class TrainsLastBlocks(TrainsOnRetain):
    """Cross-entropy on D_r through the last `k` blocks only (and the head, with `head="train"`): every other parameter
    is frozen (`requires_grad` off from `attach` on, so DDP never sees it, and left out of the optimizer, so neither
    weight decay nor momentum moves it). With `frozen_mode="eval"` the frozen modules run in evaluation mode (their
    BatchNorm running statistics are used and never updated, dropout off): frozen means unchanged. The authors' code
    (SCRUB @ repdistiller `train_vanilla`: `model.train()` on the whole model) updates the frozen blocks' running
    statistics on D_r: `frozen_mode="train"`."""

    def __init__(self, *, k: PositiveInt = 1, head: Literal["train", "frozen"] = "train", frozen_mode: Literal["eval", "train"] = "eval", **kwargs) -> None:
        """
        Args:
            k: how many of the backbone's last blocks train (`methods.blocks.layers`: ResNet stages, timm stages,
                or a Sequential's parameterised layers).
            head: whether the linear head trains with them (`train`) or stays as it is (`frozen`).
            frozen_mode: the frozen modules' mode while training: `eval` (their BatchNorm statistics untouched) or
                `train` (the authors' code: the whole model in train mode, running statistics updated on D_r).
        """
        super().__init__(**kwargs)
        self.k, self.head, self.frozen_mode = k, head, frozen_mode
        self.trainable: list[str] = []
        self.frozen: list[nn.Module] = []

    def attach(self, original, data, pretrained, evaluator) -> None:
        super().attach(original, data, pretrained, evaluator)
        self.trainable = last_blocks(self.model, self.k) + (["head"] if self.head == "train" else [])
        self.model.requires_grad_(False)
        for name in self.trainable:
            self.model.get_submodule(name).requires_grad_(True)
        self.frozen = frozen_roots(self.model, self.trainable)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def prepare(self, data) -> None:
        self.cost["cost/trainable_parameters"] = float(sum(p.numel() for p in self.trainable_parameters()))

    def configure_optimizers(self):
        return make_optimizer(self.optimizer_spec, self.trainable_parameters())

    def on_train_batch_start(self, batch, batch_idx) -> None:
        if self.frozen_mode == "eval":
            for module in self.frozen:
                module.eval()


def conv_layers(model: nn.Module, method: str) -> list[tuple[str, nn.Conv2d]]:
    """(name, module) of every `nn.Conv2d` of `model`, in registration order; none: an error naming `method`."""
    convs = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise UnlearnBenchError(f"{method} works on convolution kernels and {type(model).__name__} has no nn.Conv2d layer")
    return convs
