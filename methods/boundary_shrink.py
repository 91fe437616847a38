"""BS: boundary shrinking (Chen et al., *Boundary Unlearning: Rapid Forgetting of Deep Networks via Shifting the
Decision Space*, CVPR 2023, §4.1), a baseline of SalUn and Unlearn-Sparse."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jsonargparse.typing import PositiveFloat
from torch import nn

from datamodules.access import FORGET_ONLY
from methods.base import UnlearningMethod, register_method


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, bound: float, discretize: bool = True) -> torch.Tensor:
    """x + bound · sign(∇_x L_CE(model(x), y)) (untargeted FGSM, one L∞ step, Goodfellow et al. 2015), clamped to [0, 1]
    pixels and, with `discretize`, rounded to the 8-bit grid (k / 255), as the OPTML code's `FGSM_perturb`. The model
    gets no gradients and its mode is left as it is."""
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(F.cross_entropy(model(x), y), x)
    adversarial = (x.detach() + bound * grad.sign()).clamp(0, 1)
    return torch.round(adversarial * 255) / 255 if discretize else adversarial


def neighbour_labels(original: nn.Module, x: torch.Tensor, y: torch.Tensor, bound: float, discretize: bool = True) -> torch.Tensor:
    """The original's prediction on FGSM(x, y): the class across the nearest decision boundary (§4.1's "nearest but
    incorrect" label; when the step does not cross one, the label stays y). `original` is put in evaluation mode."""
    original.eval()
    adversarial = fgsm(original, x, y, bound, discretize)
    with torch.no_grad():
        return original(adversarial).argmax(dim=1)


@register_method
class BS(UnlearningMethod):
    """Relabel each forget image with the class the frozen original predicts for its FGSM neighbour
    (`neighbour_labels`) and train the model on D_f toward those labels with cross-entropy: the forget images cross
    to their nearest other class, shrinking the forgotten decision region.

    As the OPTML code (OPTML-Group/Unlearn-Saliency @ Classification/unlearn/boundary_sh.py, `boundary_shrink_iter`):
    the attacked model is a frozen copy of the original (`self.original`, evaluation mode), attacked afresh on every
    batch (so on that epoch's augmented images); FGSM with bound 0.1 (hard-coded there, "as in the paper"), clamped to
    [0, 1] and rounded to k / 255; the model trained in train mode on D_f only. Pixels are in [0, 1]: the models
    normalise inside.

    Defaults (`configs/methods/BS/optml.yaml`): the OPTML runs (JingWu321/Scissorhands @ Classification/sh/
    main_0.1_cifar10.sh, SalUn Table 1's BS): SGD lr 1e-6, momentum 0.9, weight decay 5e-4, 10 epochs, batch 256
    (Classification/arg_parser.py; its warm-up is 0 epochs). That rate hardly moves a model in 10 epochs over D_f
    alone: recorded as published, not tuned.
    """

    data_access = FORGET_ONLY
    train_splits = ("forget",)
    defaults = "configs/methods/BS/optml.yaml"

    def __init__(self, *, bound: PositiveFloat = 0.1, discretize: bool = True, **kwargs) -> None:
        """
        Args:
            bound: FGSM's L∞ step, in [0, 1] pixel units (0.1, the paper's and the OPTML code's).
            discretize: round the adversarial images to the 8-bit grid k / 255 (the OPTML code) or not.
        """
        super().__init__(**kwargs)
        self.bound, self.discretize = bound, discretize

    def training_step(self, batch, batch_idx):
        x, y = batch["forget"]
        labels = neighbour_labels(self.original, x, y, self.bound, self.discretize)
        loss = F.cross_entropy(self.model(x), labels)
        self.log_train("train/loss", loss)
        self.log_train("train/relabelled", (labels != y).float().mean())
        return loss
