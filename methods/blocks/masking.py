"""Masking, then fine-tuning (seed 003, *Unlearning with Fisher Masking*, §3, §3.4): score the units, zero the top R
of them once (globally, over every scored tensor), then fine-tune on D_r while replaying the original's learning-rate
schedule compressed into S epochs. The masked units are zeroed, not frozen: fine-tuning moves them again."""

from __future__ import annotations

import math
from typing import Literal

import torch
from jsonargparse.typing import NonNegativeFloat, PositiveInt
from torch import nn

from benchmark.core.errors import UnlearnBenchError
from benchmark.core.hashing import tensors_sha256
from benchmark.models.pretraining import RECIPES
from datamodules.access import FORGET_AND_RETAIN, FORGET_ONLY, DataAccess, DataView
from methods.base import TrainsOnRetain, make_optimizer


def top_fraction(scores: dict[str, torch.Tensor], ratio: float) -> dict[str, torch.Tensor]:
    """Boolean masks of the round(ratio · N) highest scores over all tensors together (N: their total size); ties go
    to the earlier unit in `scores`' order, flattened."""
    flat = torch.cat([s.detach().flatten().float().cpu() for s in scores.values()])
    count = round(ratio * len(flat))
    chosen = torch.zeros(len(flat), dtype=torch.bool)
    if count:
        order = torch.sort(flat, descending=True, stable=True).indices
        chosen[order[:count]] = True
    masks, start = {}, 0
    for name, s in scores.items():
        masks[name] = chosen[start : start + s.numel()].view(s.shape)
        start += s.numel()
    return masks


def mask_hash(masks: dict[str, torch.Tensor]) -> str:
    """The SHA-256 of the masks (which units were zeroed): the same seed and data give the same hash."""
    return tensors_sha256({name: m.to(torch.uint8) for name, m in masks.items()})


class MaskThenFinetune(TrainsOnRetain):
    """The masking base of seed 003: `scores` (the method's), the top `ratio` of units zeroed in `prepare`, then
    `budget.max_epochs` (T) epochs of cross-entropy on D_r whose learning rate replays the original's pretraining
    schedule compressed into `compress_epochs` (S) epochs, stepped per iteration (§3.4; the re-upload's
    `model/utils.py::fine_tune`: a decay at fraction m of the pretraining falls at step int(m · S · iterations per
    epoch)), then keeps the last rate up to T. The optimizer (`optimizer`) gives the initial rate; seed 003's
    defaults are the re-upload's SGD (momentum 0.9, weight decay 1e-4)."""

    data_access = FORGET_AND_RETAIN

    def __init__(self, *, ratio: NonNegativeFloat = 0.02, compress_epochs: PositiveInt = 5, schedule: Literal["compressed", "constant"] = "compressed",
                 finetune: bool = True, retain_samples: PositiveInt | None = None, **kwargs) -> None:
        """
        Args:
            ratio: R, the fraction of units zeroed, ranked globally (seed 003 §4: 0.02 on CIFAR, 0.04 on MNIST and
                Tiny-ImageNet); 0 is plain fine-tuning.
            compress_epochs: S, the epochs the original's schedule is replayed in (§3.4: 5).
            schedule: `compressed` (§3.4) or `constant`: the optimizer's lr throughout (Fig. 5's 0.1, 0.01, 0.001).
            finetune: fine-tune on D_r after masking; False: masking alone (§4.3's "no remain data").
            retain_samples: score and fine-tune with a seeded subset of this many D_r images (§4.3: 50); null: all of D_r.
        """
        super().__init__(**kwargs)
        if not ratio < 1:
            raise UnlearnBenchError(f"{type(self).__name__}.ratio = {ratio} is not allowed; a fraction in [0, 1)")
        self.ratio, self.compress_epochs, self.schedule, self.finetune = ratio, compress_epochs, schedule, finetune
        self.one_shot = not finetune
        if retain_samples is not None:
            self.data_access, self.retain_subset_size = DataAccess(forget=True, retain="subset"), retain_samples
        self.masks: dict[str, torch.Tensor] | None = None

    def forget_only_when_alone(self) -> None:
        """Scored on D_f alone and not fine-tuned (seed 003 §4.3's "no remain data"): the method sees D_f only."""
        if getattr(self, "score_on", None) == "forget" and not self.finetune:
            self.data_access = FORGET_ONLY

    def scores(self, data: DataView) -> dict[str, torch.Tensor]:
        """A score per unit, higher masked first: per maskable parameter (named as in `named_parameters`), or per
        group of units that `zero` knows (ActivationMask: a convolution's output channels)."""
        raise NotImplementedError

    def prepare(self, data: DataView) -> None:
        scores = self.scores(data)
        if not all(torch.isfinite(s).all() for s in scores.values()):
            raise UnlearnBenchError(f"{type(self).__name__}: the scores are not finite (a non-finite Fisher or activation); nothing was masked")
        total = sum(s.numel() for s in scores.values())
        if 0 < self.ratio * total < 1:
            raise UnlearnBenchError(f"{type(self).__name__}.ratio = {self.ratio} masks {self.ratio * total:.2f} of {total} units, less than one; "
                                    "use 0 (no masking) or a larger ratio")
        self.masks = top_fraction(scores, self.ratio)
        with torch.no_grad():
            self.zero(self.masks)
        self.cost["cost/masked"] = float(sum(int(m.sum()) for m in self.masks.values()))
        self.mask_hash = mask_hash(self.masks)

    def zero(self, masks: dict[str, torch.Tensor]) -> None:
        """Zero the masked units: by default entries of the parameters the masks are named after."""
        parameters = dict(self.model.named_parameters())
        for name, mask in masks.items():
            parameters[name][mask.to(parameters[name].device)] = 0.0

    def num_epochs(self) -> int:
        return self.budget.max_epochs if self.finetune else 0

    def iterations_per_epoch(self) -> int:
        world = self.trainer.world_size if self._trainer is not None else 1
        return math.ceil(len(self.data["retain"]) / (self.batch_size() * world))

    def configure_optimizers(self):
        optimizer = make_optimizer(self.optimizer_spec, self.model.parameters())
        if self.schedule == "constant":
            return optimizer
        recipe = RECIPES.get(self.pretrained.recipe_name(self.data.info.name))
        steps = self.compress_epochs * self.iterations_per_epoch()
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: recipe.lr_factor(min(step, steps - 1), steps))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def conv_bn_relu(model: nn.Module) -> list[tuple[str, nn.Conv2d, nn.Module]]:
    """(name, convolution, activation) of every Conv2d → BatchNorm2d → ReLU in the model's module registration order
    (identities between them skipped): the Conv-BN-ReLU channels seed 003's channel methods score and mask."""
    modules = [(name, m) for name, m in model.named_modules() if not isinstance(m, nn.Identity) and not list(m.children())]
    found = []
    for (name, conv), (_, norm), (_, act) in zip(modules, modules[1:], modules[2:]):
        if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d) and isinstance(act, nn.ReLU):
            found.append((name, conv, act))
    if not found:
        raise UnlearnBenchError(f"{type(model).__name__} has no Conv-BatchNorm-ReLU layers for a channel masking method")
    return found
