"""FisherMask, RandomMask, ActivationMask, GradMask and TFIDF: mask the top R parameters or channels, then fine-tune (seed 003 §3, §4)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from jsonargparse.typing import PositiveInt
from torch.utils.data import DataLoader

from benchmark.core.errors import UnlearnBenchError
from datamodules.access import DataView
from methods.base import register_method
from methods.blocks.fisher import Reduction, diagonal_fisher
from methods.blocks.masking import MaskThenFinetune, conv_bn_relu


def _batches(data: DataView, split: str, batch_size: int) -> DataLoader:
    dataset = data[split]
    return DataLoader(dataset, batch_size=batch_size, collate_fn=getattr(dataset, "collate_fn", None))


@register_method
class FisherMask(MaskThenFinetune):
    """Zero the top R parameters by F_f − F_r over all parameters (seed 003 §3.1, Proposition 1), then fine-tune on D_r
    (`MaskThenFinetune`).

    F is the diagonal empirical Fisher (§3.1's estimate): per-sample squared gradients of log p(y|x, w) at the labels
    the original was trained with, the model in evaluation mode (BatchNorm's running statistics), summed over the
    set (`reduction="mean"` divides by its size; the paper's Proposition 1 drops the factor). `score_on="forget"`, or
    a request without D_r access, ranks by F_f alone (§4.3's "no remain data"). Defaults:
    `configs/methods/FisherMask/seed003.yaml` (R = 0.02, CIFAR's; S = 5; the re-upload's SGD, momentum 0.9, weight
    decay 1e-4, lr 0.1; T = 10 epochs, the CPU variant's, batch 128).
    """

    defaults = "configs/methods/FisherMask/seed003.yaml"

    def __init__(self, *, score_on: Literal["forget_and_retain", "forget"] = "forget_and_retain", reduction: Reduction = "sum", **kwargs) -> None:
        """
        Args:
            score_on: rank by F_f − F_r (`forget_and_retain`) or by F_f alone (`forget`).
            reduction: the Fisher's sum over a set (`sum`, as Proposition 1's F_f, F_r) or its mean.
        """
        super().__init__(**kwargs)
        self.score_on, self.reduction = score_on, reduction
        self.forget_only_when_alone()

    def scores(self, data: DataView) -> dict[str, torch.Tensor]:
        fisher = lambda split: diagonal_fisher(self.model, _batches(data, split, self.batch_size()), kind="empirical", reduction=self.reduction)  # noqa: E731
        forget = fisher("forget")
        if self.score_on == "forget" or "retain" not in data:
            return forget
        retain = fisher("retain")
        return {name: forget[name] - retain[name] for name in forget}


@register_method
class RandomMask(MaskThenFinetune):
    """Zero R of FisherMask's parameters (all of them) drawn uniformly at random, then fine-tune (seed 003 §4's
    RandomMask baseline). The draw is seeded by `seed`, or by the run's seed when null. Defaults:
    `configs/methods/RandomMask/seed003.yaml` (FisherMask's)."""

    defaults = "configs/methods/RandomMask/seed003.yaml"

    def __init__(self, *, seed: int | None = None, **kwargs) -> None:
        """
        Args:
            seed: the seed of the draw; null: the run's seed.
        """
        super().__init__(**kwargs)
        self.seed = seed

    def scores(self, data: DataView) -> dict[str, torch.Tensor]:
        generator = torch.Generator().manual_seed(torch.initial_seed() if self.seed is None else self.seed)
        return {name: torch.rand(p.shape, generator=generator) for name, p in self.model.named_parameters()}


class ChannelMask(MaskThenFinetune):
    """A masking method whose units are the Conv-BN-ReLU channels (`conv_bn_relu`): a masked channel's output filter
    (and bias) is zeroed, BatchNorm untouched (issue 18's reading of seed 003 §3.2-3.3)."""

    def zero(self, masks: dict[str, torch.Tensor]) -> None:
        convolutions = {name: conv for name, conv, _ in conv_bn_relu(self.model)}
        for name, mask in masks.items():
            conv = convolutions[name]
            conv.weight[mask.to(conv.weight.device)] = 0.0
            if conv.bias is not None:
                conv.bias[mask.to(conv.bias.device)] = 0.0


@register_method
class ActivationMask(ChannelMask):
    """Zero the convolution kernels of the top R channels by A_Df,j − A_Dr,j, then fine-tune (seed 003 §3.2): A_ij is
    sample i's spatial mean of channel j after Conv-BatchNorm-ReLU (`conv_bn_relu`: the model's Conv2d → BatchNorm2d →
    ReLU modules, in registration order), averaged over D_f and over D_r with the model in evaluation mode. R ranks all
    such channels together; a masked channel's output filter (and bias) is zeroed, BatchNorm untouched (issue 18's
    reading). `score_on="forget"` ranks by A_Df alone. Defaults: `configs/methods/ActivationMask/seed003.yaml`.
    """

    defaults = "configs/methods/ActivationMask/seed003.yaml"

    def __init__(self, *, score_on: Literal["forget_and_retain", "forget"] = "forget_and_retain", **kwargs) -> None:
        """
        Args:
            score_on: rank by A_Df − A_Dr (`forget_and_retain`) or by A_Df alone (`forget`).
        """
        super().__init__(**kwargs)
        self.score_on = score_on
        self.forget_only_when_alone()

    def mean_activations(self, data: DataView, split: str) -> dict[str, torch.Tensor]:
        layers = conv_bn_relu(self.model)
        sums = {name: 0.0 for name, _, _ in layers}
        hooks = [act.register_forward_hook(lambda module, inputs, output, name=name: sums.__setitem__(name, sums[name] + output.mean(dim=(2, 3)).sum(0)))
                 for name, _, act in layers]
        count, was_training = 0, self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                for x, *_ in _batches(data, split, self.batch_size()):
                    self.model(x.to(self.device))
                    count += len(x)
        finally:
            for hook in hooks:
                hook.remove()
            self.model.train(was_training)
        return {name: total / count for name, total in sums.items()}

    def scores(self, data: DataView) -> dict[str, torch.Tensor]:
        forget = self.mean_activations(data, "forget")
        if self.score_on == "forget" or "retain" not in data:
            return forget
        retain = self.mean_activations(data, "retain")
        return {name: forget[name] - retain[name] for name in forget}


def integrated_gradients(model: torch.nn.Module, layer: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> torch.Tensor:
    """Per sample and channel of `layer`'s output A: Σ_{h,w} A · (1/m) Σ_{k=1..m} ∂L/∂(αA) at α = k/m (Sundararajan et
    al. 2017's integrated gradients from the baseline 0 at that layer, right Riemann sum with m = `steps`), L the
    sample's cross-entropy; [N, C]. Complete: summed over the channels it approaches L(x) − L(x with A = 0)."""
    state: dict = {}

    def scale(module, inputs, output):
        state["a"] = output.detach()
        state["scaled"] = (state["alpha"] * state["a"]).requires_grad_(True)
        return state["scaled"]

    hook = layer.register_forward_hook(scale)
    total = 0.0
    try:
        for k in range(1, steps + 1):
            state["alpha"] = k / steps
            loss = F.cross_entropy(model(x), y, reduction="sum")
            (grad,) = torch.autograd.grad(loss, state["scaled"])
            total = total + grad
    finally:
        hook.remove()
    return (state["a"] * total / steps).sum(dim=(2, 3))


@register_method
class GradMask(ChannelMask):
    """Zero the convolution kernels of the top R channels by −B_Df,j, then fine-tune (seed 003 §3.3): B_ij is sample
    i's integrated gradient of its loss at channel j's Conv-BN-ReLU output (`integrated_gradients`, baseline 0,
    `steps` = 20 Riemann steps: our assumption), averaged over D_f only (the paper: |D_r| ≫ |D_f|); the most negative
    B (the channels that lower D_f's loss most) first, as issue 18 reads it. Conv layers only, so BatchNorm keeps
    what it holds (the paper's explanation of GradMask's weaker results). Defaults: `configs/methods/GradMask/seed003.yaml`.
    """

    defaults = "configs/methods/GradMask/seed003.yaml"

    def __init__(self, *, steps: PositiveInt = 20, **kwargs) -> None:
        """
        Args:
            steps: m, the Riemann steps of the integrated gradient (not given in the paper: 20).
        """
        super().__init__(**kwargs)
        self.steps = steps

    def scores(self, data: DataView) -> dict[str, torch.Tensor]:
        layers = conv_bn_relu(self.model)
        totals = {name: 0.0 for name, _, _ in layers}
        count, was_training = 0, self.model.training
        self.model.eval()
        requires_grad = [p.requires_grad for p in self.model.parameters()]
        self.model.requires_grad_(False)
        try:
            with torch.enable_grad():
                for x, y, *_ in _batches(data, "forget", self.batch_size()):
                    x, y = x.to(self.device), y.to(self.device)
                    for name, _, act in layers:
                        totals[name] = totals[name] + integrated_gradients(self.model, act, x, y, self.steps).sum(0)
                    count += len(x)
        finally:
            for p, flag in zip(self.model.parameters(), requires_grad):
                p.requires_grad_(flag)
            self.model.train(was_training)
        return {name: -total / count for name, total in totals.items()}


@register_method
class TFIDF(ChannelMask):
    """Zero the convolution kernels of the top R channels by their TF-IDF score for the forgotten class, then fine-tune
    (Wang et al. 2022, seed 003's baseline; class scenarios only). With a_jc the mean over class c's images of channel
    j's spatial mean of ReLU(convolution output), taken before BatchNorm as Wang's hook does: TF_jc = a_jc / Σ_{j' in
    the layer} a_j'c, IDF_j = log(C / (1 + #{c : a_jc ≥ mean_c a_jc})), score_j = TF_jc · IDF_j, the highest zeroed
    (as the paper says). Scored on D_f and D_r, each cut to its first `score_samples` images in training order (the
    re-upload scores the first 128 unshuffled training images); with several forgotten classes a channel's score is
    its largest over them (ours). Defaults: `configs/methods/TFIDF/seed003.yaml`.
    """

    defaults = "configs/methods/TFIDF/seed003.yaml"

    def __init__(self, *, score_samples: PositiveInt | None = None, **kwargs) -> None:
        """
        Args:
            score_samples: score on the first this many images of D_f and of D_r; null: all of them.
        """
        super().__init__(**kwargs)
        self.score_samples = score_samples

    def class_means(self, data: DataView) -> dict[str, torch.Tensor]:
        """a_jc per layer: [channels, classes]."""
        layers = conv_bn_relu(self.model)
        sums = {name: torch.zeros(conv.out_channels, data.num_classes, device=self.device) for name, conv, _ in layers}
        counts = torch.zeros(data.num_classes, device=self.device)
        labels: dict = {}
        def accumulate(name: str, output: torch.Tensor) -> None:  # (a hook returning a tensor would replace the output)
            sums[name].index_add_(1, labels["y"], torch.relu(output).mean(dim=(2, 3)).T)

        hooks = [conv.register_forward_hook(lambda module, inputs, output, name=name: accumulate(name, output)) for name, conv, _ in layers]
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                for split in ("forget", "retain"):
                    seen = 0
                    for x, y, *_ in _batches(data, split, self.batch_size()):
                        if self.score_samples is not None:
                            x, y = x[: self.score_samples - seen], y[: self.score_samples - seen]
                        labels["y"] = y.to(self.device)
                        self.model(x.to(self.device))
                        counts.index_add_(0, labels["y"], torch.ones(len(y), device=self.device))
                        seen += len(y)
                        if self.score_samples is not None and seen >= self.score_samples:
                            break
        finally:
            for hook in hooks:
                hook.remove()
            self.model.train(was_training)
        return {name: total / counts.clamp_min(1) for name, total in sums.items()}

    def scores(self, data: DataView) -> dict[str, torch.Tensor]:
        if data.forget_classes is None:
            raise UnlearnBenchError("TFIDF scores channels for the forgotten class (Wang et al. 2022) and needs a class scenario "
                                    "(WholeClasses); this request names no forgotten classes")
        scores = {}
        for name, a in self.class_means(data).items():
            tf = a / a.sum(dim=0, keepdim=True).clamp_min(1e-12)
            documents = (a >= a.mean(dim=1, keepdim=True)).sum(dim=1)
            idf = torch.log(a.shape[1] / (1 + documents.float()))
            scores[name] = (tf[:, list(data.forget_classes)] * idf[:, None]).amax(dim=1)
        return scores
