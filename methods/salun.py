"""SalUn: random labelling restricted to the salient weights (Fan et al., ICLR 2024, *SalUn: Empowering Machine
Unlearning via Gradient-based Weight Saliency*, §4), as OPTML-Group/Unlearn-Saliency runs it (HEAD a6e89fd)."""

from __future__ import annotations

from typing import Literal

import torch
from jsonargparse.typing import ClosedUnitInterval
from torch.utils.data import DataLoader

from benchmark.core.errors import UnlearnBenchError
from datamodules.access import DataView
from methods.base import register_method
from methods.blocks.masking import mask_hash
from methods.blocks.saliency import mask_gradients_, restore_outside_mask_, saliency_mask
from methods.rl import RL

Freeze = Literal["weights", "gradient"]


@register_method
class SalUn(RL):
    """`RL` on the salient weights only, the others held at the original's values.

    `RL` (its `mode`s, data and passes) with a mask: m_S is 1 on the top `ratio` of all parameter entries by
    |Σ_b ∇_θ(−L_CE)| on D_f (`methods.blocks.saliency`), the gradients are multiplied by m_S, and the entries outside
    m_S keep the original's values (θ_u = m_S ⊙ (Δθ + θ_o) + (1 − m_S) ⊙ θ_o, §4).

    As the authors' code (Classification/generate_mask.py, unlearn/RL.py): the mask is computed once, before unlearning,
    from one pass over the forget loader (batch size the budget's) with the model in evaluation mode, the loss −L_CE
    (the mean over a batch), the gradients summed over batches, ranked globally over every parameter (BatchNorm,
    biases and the head included); `ratio` 0.5 is the README's `with_0.5.pt`. Since Unlearn-Saliency #33 (2026-02-28)
    the entries outside the mask are put back to their values at the epoch's start after every optimizer step and
    their momentum zeroed, so weight decay and momentum cannot move them (`freeze="weights"`, the default); before it
    only the gradients were masked and weight decay and momentum still moved them (`freeze="gradient"`: the code the
    paper's numbers were produced with). Under `weights` those entries never move, so "the epoch's start" is the
    original's value.

    Readings: the mask sees D_f without training augmentation and in a fixed order, every process all of D_f (the same
    mask everywhere); the authors' forget loader applies RandomCrop + Flip, so their mask is itself random. The mask
    holds round(ratio · N) entries, ties going to the earlier parameter (`top_fraction`); the authors' holds
    ⌊ratio · N⌋, ties in `argsort`'s order. `cost/mask_fraction` and `cost/salient` record the share and count of
    entries that train, `mask_hash` which ones.

    Defaults (`configs/methods/SalUn/optml.yaml`): RL's OPTML protocol (SGD momentum 0.9, weight decay 5e-4, batch
    256, 10 epochs, constant lr) with the README's lr 0.013 and `ratio` 0.5 (Scissorhands' scripts use 5e-3, issues
    6e-3). The hyperparameters behind the paper's table values were never released.
    """

    defaults = "configs/methods/SalUn/optml.yaml"

    def __init__(self, *, ratio: ClosedUnitInterval = 0.5, freeze: Freeze = "weights", **kwargs) -> None:
        """
        Args:
            ratio: the fraction of parameter entries that train, those of largest forget-gradient magnitude, ranked
                over all parameters together (the README's 0.5, `with_0.5.pt`); 1 is plain RL.
            freeze: how the other entries stay put: `weights` (reset after every step and their optimizer state
                zeroed, Unlearn-Saliency #33) or `gradient` (gradient masking only: weight decay and momentum still
                move them, the code before #33).
        """
        super().__init__(**kwargs)
        if ratio == 0:
            raise UnlearnBenchError("SalUn.ratio = 0 is not allowed; a fraction in (0, 1] of the weights must train")
        self.ratio, self.freeze = ratio, freeze
        self.masks: dict[str, torch.Tensor] | None = None
        self.mask_hash: str | None = None
        self.anchor: dict[str, torch.Tensor] = {}

    def prepare(self, data: DataView) -> None:
        super().prepare(data)
        forget = data["forget"]
        batches = DataLoader(forget, batch_size=self.batch_size(), collate_fn=getattr(forget, "collate_fn", None))
        masks = saliency_mask(self.model, batches, self.ratio, self.device)
        self.mask_hash = mask_hash(masks)
        self.masks = {name: mask.to(self.device) for name, mask in masks.items()}
        salient, total = sum(int(m.sum()) for m in masks.values()), sum(m.numel() for m in masks.values())
        self.cost["cost/salient"], self.cost["cost/mask_fraction"] = float(salient), salient / total

    def on_train_epoch_start(self) -> None:
        if self.freeze == "weights":
            self.anchor = {name: p.detach().clone() for name, p in self.model.named_parameters() if not self.masks[name].all()}

    def on_before_optimizer_step(self, optimizer) -> None:
        mask_gradients_(self.model, self.masks)

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None) -> None:
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        if self.freeze == "weights":
            restore_outside_mask_(self.model, self.masks, self.anchor, getattr(optimizer, "optimizer", optimizer))  # (Lightning's wrapper)
