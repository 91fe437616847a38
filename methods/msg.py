"""MSG, "Masked Small Gradients": a top solution of the NeurIPS 2023 Machine Unlearning challenge as Deep Unlearn
re-implements and ranks it (Cadet et al. 2024, arXiv 2410.01276; xcadet/deepunlearn @ munl/unlearning/kgltop2.py).
Also the per-epoch learning-rate schedules MSG and CT share (`scheduled`)."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from jsonargparse.typing import ClosedUnitInterval, NonNegativeFloat
from torch import nn
from torch.utils.data import DataLoader, Dataset

from datamodules.access import FORGET_AND_RETAIN, DataView
from methods.base import TrainsOnRetain, register_method
from methods.blocks.gradients import accumulated_gradients
from methods.blocks.layers import conv_layers
from methods.blocks.masking import top_fraction
from methods.blocks.schedules import Schedule, scheduled, warmup_then_decay

Init = Literal["kaiming_normal", "reset_parameters"]


def fresh_kernel(conv: nn.Conv2d, init: Init, generator: torch.Generator) -> torch.Tensor:
    """A newly initialised weight of `conv`'s shape (on the CPU): `kaiming_normal` N(0, 2 / fan_out), fan_out =
    C_out · k_h · k_w (kgltop2's `kaiming_normal_(mode="fan_out", nonlinearity="relu")`, torchvision ResNet's own init),
    or `reset_parameters`, nn.Conv2d's default U(±1 / √fan_in) (`kaiming_uniform_(a=√5)`)."""
    fresh = torch.empty(conv.weight.shape, dtype=conv.weight.dtype)
    if init == "kaiming_normal":
        return nn.init.kaiming_normal_(fresh, mode="fan_out", nonlinearity="relu", generator=generator)
    return nn.init.kaiming_uniform_(fresh, a=math.sqrt(5), generator=generator)


@register_method
class MSG(TrainsOnRetain):
    """Re-initialise, in every conv layer, the `ratio` of its weights with the smallest |gradient|, then fine-tune on D_r
    with the other conv weights' gradients scaled by `kept_scale`.

    As kgltop2 (`KGLTop2.unlearn`): (1) gradients g of L_CE on a random retain subset of |D_f| images plus −L_CE on D_f,
    summed over batches; (2) per `nn.Conv2d` (every one: 1×1 shortcuts, a ViT's patch embedding), its round(ratio · n)
    weights of smallest |g| (`torch.topk(-|g|)`) take the values of a freshly initialised kernel; (3) cross-entropy on
    D_r, the conv weights' gradients multiplied by 1 where re-initialised and by `kept_scale` elsewhere (the authors'
    `MaskConv2d`/`Masker`, so weight decay and momentum apply unscaled on top), biases, normalisation and linear layers at
    full gradient; SGD with kgltop2's `LinearAnnealingLR` stepped per epoch (`warmup_then_decay`: up to the peak at epoch
    (E + 1) // 2, then down; with E = 5 the factors 1/3, 2/3, 1, 2/3, 1/3).

    Readings:
    - the retain subset is `DataView.retain_subset(|D_f|)`, drawn seeded by the request (the same rows for every run
      seed); the authors draw an unseeded `torch.randperm` per run;
    - the gradient pass sees the images in order without augmentation (the authors' `default_loaders` do not augment
      either), in batches of the budget's size (the authors: 64 for the subset, the forget loader's, 64 by default, for
      D_f; both shuffled), every process all of them (the same mask everywhere); the model in train mode, as theirs
      (BatchNorm's batch statistics; in evaluation mode with `batchnorm="frozen"`), its running statistics restored
      afterwards (the authors' pass updates them with D_f and the subset before fine-tuning);
    - ties in |g| go to the earlier entry (`top_fraction`); torch.topk's order is unspecified;
    - the new values are kgltop2's Kaiming normal (fan_out, ReLU gain), not the layer's `reset_parameters` (Kaiming
      uniform, a = √5): `init` chooses; they are drawn from a generator seeded by the run's seed (`torch.initial_seed()`,
      the same on every process), one whole kernel per layer in registration order;
    - the authors build a new Conv2d and copy only its weight, so a conv bias is re-initialised too (the layer's
      default); their torchvision ResNet-18 has none. We keep biases (`conv_bias="keep"`, our choice); `reset` is the code;
    - `schedule="step"` evaluates the same line at every step (our option; the authors step per epoch).

    Data: the forget set and the full retain set (the fine-tuning reads all of D_r, the mask a forget-sized subset).
    Defaults (`configs/methods/MSG/deepunlearn.yaml`): kgltop2's `ORIGINAL_*`: init_rate 0.3, SGD lr 1e-3, momentum 0.9,
    weight decay 5e-4, 5 epochs, batch 64; the gradient scale 0.1 is hard-coded there. `cost/reinitialised` and
    `cost/mask_retain_samples` record how many weights were re-initialised and how many retain images the mask saw.
    """

    data_access = FORGET_AND_RETAIN
    defaults = "configs/methods/MSG/deepunlearn.yaml"

    def __init__(self, *, ratio: ClosedUnitInterval = 0.3, kept_scale: NonNegativeFloat = 0.1, init: Init = "kaiming_normal",
                 conv_bias: Literal["keep", "reset"] = "keep", schedule: Schedule = "epoch", **kwargs) -> None:
        """
        Args:
            ratio: the fraction of each conv layer's weights re-initialised, those of smallest |gradient| (kgltop2's
                `init_rate`, 0.3).
            kept_scale: the factor on the gradients of the conv weights not re-initialised while fine-tuning (0.1); the
                re-initialised ones train at 1.
            init: the new weights' distribution: `kaiming_normal` (fan_out, ReLU: kgltop2's) or `reset_parameters`
                (nn.Conv2d's default Kaiming uniform).
            conv_bias: a conv layer's bias is kept (`keep`) or re-initialised with the layer's default (`reset`: the
                authors' code, which rebuilds the layer).
            schedule: the warm-up-then-decay factor stepped per `epoch` (kgltop2) or per optimizer `step`.
        """
        super().__init__(**kwargs)
        self.ratio, self.kept_scale, self.init, self.conv_bias, self.schedule = ratio, kept_scale, init, conv_bias, schedule
        self.masks: dict[str, torch.Tensor] = {}
        """Per conv weight (named as in `named_parameters`): True where re-initialised."""
        self.scales: dict[str, torch.Tensor] = {}

    def snip_gradients(self, weights: list[str], subset: Dataset, forget: Dataset) -> dict[str, torch.Tensor]:
        """Σ over batches (in order, no augmentation) of ∇ L_CE on the retain subset, then of −∇ L_CE on D_f, for the conv
        `weights` (kgltop2 `get_grads_for_snip`, summed into `.grad`), the model in train mode as the authors' (BatchNorm
        in evaluation mode with `batchnorm="frozen"`), its modes and running statistics left as they were."""
        total = {name: 0.0 for name in weights}
        for dataset, sign in ((subset, 1.0), (forget, -1.0)):
            batches = DataLoader(dataset, batch_size=self.batch_size(), collate_fn=getattr(dataset, "collate_fn", None))
            summed, _ = accumulated_gradients(self.model, batches, lambda out, y, s=sign: s * F.cross_entropy(out, y), weights, train=True,
                                              frozen_batchnorm=self.batchnorm == "frozen", device=self.device)
            total = {name: total[name] + summed[name] for name in weights}
        return total

    def prepare(self, data: DataView) -> None:
        forget = data["forget"]
        subset = data.retain_subset(len(forget))
        convs = conv_layers(self.model, type(self).__name__)
        names = [name for name, _ in convs]
        gradients = self.snip_gradients([f"{name}.weight" for name in names], subset, forget)
        generator = torch.Generator().manual_seed(torch.initial_seed())
        with torch.no_grad():
            for name, conv in convs:
                mask = top_fraction({name: -gradients[f"{name}.weight"].abs()}, self.ratio)[name].to(conv.weight.device)
                conv.weight[mask] = fresh_kernel(conv, self.init, generator).to(conv.weight.device)[mask]
                if self.conv_bias == "reset" and conv.bias is not None:
                    bound = 1 / math.sqrt(conv.weight[0].numel())
                    conv.bias.copy_(torch.empty(conv.bias.shape).uniform_(-bound, bound, generator=generator))
                self.masks[f"{name}.weight"] = mask
                self.scales[f"{name}.weight"] = torch.where(mask, 1.0, self.kept_scale).to(conv.weight.dtype)
        self.cost["cost/reinitialised"] = float(sum(int(m.sum()) for m in self.masks.values()))
        self.cost["cost/mask_retain_samples"] = float(len(subset))

    def configure_optimizers(self):
        return scheduled(self, warmup_then_decay(self.num_epochs()), self.schedule)

    def on_before_optimizer_step(self, optimizer) -> None:
        parameters = dict(self.model.named_parameters())
        for name, scale in self.scales.items():
            if parameters[name].grad is not None:
                parameters[name].grad.mul_(scale)
