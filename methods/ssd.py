"""SSD: Selective Synaptic Dampening (Foster, Schoepf & Brintrup, *Fast Machine Unlearning Without Retraining Through
Selective Synaptic Dampening*, AAAI 2024, arXiv 2308.07707, §3), and LFSSD, its label-free variant (Foster et al.,
*Loss-Free Machine Unlearning*, ICLR 2024 Tiny Paper, arXiv 2402.19308), as the authors' code runs them
(if-loops/selective-synaptic-dampening @ src/ssd.py `ParameterPerturber`, src/forget_*_strategies.py `ssd_tuning`;
LFSSD: that repository's README.md, "Implementing LFSSD")."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

import torch
import torch.nn.functional as F
from jsonargparse.typing import PositiveFloat
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from benchmark.core.errors import UnlearnBenchError
from datamodules.access import FORGET_AND_RETAIN, DataView
from methods.base import UnlearningMethod, register_method
from methods.blocks.gradients import accumulated_gradients


def synaptic_importance(model: nn.Module, batches: Iterable, *, label_free: bool = False,
                        device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
    """The importance of every parameter entry (named as in `named_parameters`): the mean over `batches` of (∇_θ L_b)²,
    L_b the batch's mean cross-entropy (SSD: `calc_importance`, a diagonal-Fisher proxy from mini-batch gradients, not
    per-sample ones), or with `label_free` the mean over batches of |∇_θ L_b|, L_b = mean_n ‖f(x_n)‖² the squared L2
    norm of the output (LFSSD: the README's `torch.norm(out, p="fro", dim=1).pow(2).mean()` and `.abs()`), which reads
    no label. Batches are (x, y, ...); the mean divides by the number of batches (a last, smaller batch counts as
    one, as `imp /= len(dataloader)`). The model is in evaluation mode; its training flags are restored, its `.grad`s
    untouched; a parameter that does not require grad has importance 0 (never dampened)."""
    parameters = dict(model.named_parameters())
    trained = [name for name, p in parameters.items() if p.requires_grad]
    if label_free:
        loss, transform = (lambda out, y: out.flatten(1).pow(2).sum(1).mean()), torch.abs
    else:
        loss, transform = (lambda out, y: F.cross_entropy(out.flatten(1), y)), torch.square
    total, count = accumulated_gradients(model, batches, loss, trained, transform=transform, device=device)
    if count == 0:
        raise UnlearnBenchError("the synaptic importance needs at least one batch; the data given has none")
    return {name: total[name] / count if name in total else torch.zeros_like(p) for name, p in parameters.items()}


def dampen_(model: nn.Module, forget: dict[str, torch.Tensor], full: dict[str, torch.Tensor], *, alpha: float,
            dampening: float) -> dict[str, torch.Tensor]:
    """θ ← θ · min(1, λ · I_D / I_f) for every entry with I_f > α · I_D (`modify_weight`, exponent 1, bound 1), in place;
    every other entry is left exactly as it was. Returns the boolean masks of the dampened entries."""
    selected = {}
    with torch.no_grad():
        for name, p in model.named_parameters():
            chosen = forget[name] > alpha * full[name]
            factor = (full[name] * dampening / forget[name]).clamp(max=1.0)  # (inf / nan only where I_f = 0: never chosen)
            p[chosen] = p[chosen] * factor[chosen]
            selected[name] = chosen
    return selected


@register_method
class SSD(UnlearningMethod):
    """One shot, no training: the importances I_f on D_f and I_D on the full training set D = D_r ∪ D_f
    (`synaptic_importance`), then every parameter entry with I_f > α · I_D is multiplied by min(1, λ · I_D / I_f)
    (`dampen_`; the paper's §3 selection by α and dampening by λ, β = min(λ I_D / I_f, 1)).

    As the authors' code (`ssd_tuning`): the original in evaluation mode; I_f from the forget loader, I_D from the
    unshuffled loader over ConcatDataset(D_r, D_f) (D_r's rows first), both of `budget.batch_size`, without augmentation
    (their `transform_unlearning`); every parameter, BatchNorm's and the head's included; the code's `exponent` and
    `lower_bound` are fixed at 1 (the paper's β), so not settings here.

    Readings: the importance of a mini-batch gradient depends on what each batch holds. The authors' loaders are not
    shuffled, and their D_r is in random order for random forgetting (`random_split`) but sorted by class for class
    forgetting (`build_retain_forget_sets`); ours are the splits' own (index) order. Every process computes the same
    importances over all of the data (identical weights under DDP). `budget`'s other fields are unused.

    Defaults (`configs/methods/SSD/ssd.yaml`): ResNet-18's α = 10, λ = 1 (`forget_{random,full_class,subclass}_main.py`;
    ViTs use α 5-25, PinsFaceRecognition α 50, λ 0.1), batch 64 (`forget_full_class_main.py`; the random-forgetting
    main uses 128). α has to be re-tuned for another original (the authors' issue #3).
    """

    data_access = FORGET_AND_RETAIN
    train_splits = ()
    defaults = "configs/methods/SSD/ssd.yaml"
    base_settings = ("budget",)
    one_shot = True
    label_free: ClassVar[bool] = False
    """Whether the importances use the labels (SSD) or not (LFSSD)."""

    def __init__(self, *, alpha: PositiveFloat = 10.0, dampening: PositiveFloat = 1.0, **kwargs) -> None:
        """
        Args:
            alpha: α, the selection weighting: an entry is dampened when I_f > α · I_D (the code's `selection_weighting`).
            dampening: λ, the dampening constant: the entry is multiplied by min(1, λ · I_D / I_f) (`dampening_constant`).
        """
        super().__init__(**kwargs)
        self.alpha, self.dampening = alpha, dampening

    def num_epochs(self) -> int:
        return 0

    def _batches(self, dataset: Dataset) -> DataLoader:
        return DataLoader(dataset, batch_size=self.batch_size(), shuffle=False, collate_fn=getattr(dataset, "collate_fn", None))

    def prepare(self, data: DataView) -> None:
        forget, retain = data["forget"], data["retain"]
        importance = lambda dataset: synaptic_importance(self.model, self._batches(dataset), label_free=self.label_free, device=self.device)  # noqa: E731
        forget_importance, full_importance = importance(forget), importance(ConcatDataset([retain, forget]))
        if not all(torch.isfinite(t).all() for t in (*forget_importance.values(), *full_importance.values())):
            raise UnlearnBenchError(f"{type(self).__name__}: the importances are not finite (a non-finite loss); nothing was dampened")
        selected = dampen_(self.model, forget_importance, full_importance, alpha=self.alpha, dampening=self.dampening)
        self.cost["cost/dampened"] = float(sum(int(m.sum()) for m in selected.values()))
        self.model.train()

    def training_step(self, batch, batch_idx):  # never called: zero epochs
        raise RuntimeError(f"{type(self).__name__} does not train")


@register_method
class LFSSD(SSD):
    """SSD without labels: the importances are the mean |∇_θ L_b| of L_b = mean_n ‖f(x_n)‖², the squared L2 norm of the
    model's output (logits), instead of the mean (∇_θ CE_b)² (the authors' README, "Implementing LFSSD": those two
    lines changed in `calc_importance`); selection and dampening are SSD's. The labels of D_f and D_r are never read
    (the data access is still SSD's: the images of D_f and of D = D_r ∪ D_f).

    Defaults (`configs/methods/LFSSD/ssd.yaml`): SSD's ResNet-18 values α = 10, λ = 1, batch 64; the README gives no
    other values for LFSSD (that the Tiny Paper keeps SSD's is our reading: check it before relying on it).
    """

    defaults = "configs/methods/LFSSD/ssd.yaml"
    label_free = True
