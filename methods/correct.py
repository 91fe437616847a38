"""Correct: fine-tune the forget set towards its new labels (seed 000 eq. 4; CORRECT in seed 001 Table 3)."""

from methods.base import register_method
from methods.neggrad import NegGrad


@register_method
class Correct(NegGrad):
    """Minimise L_UL^Cor(D_f; θ) = L_CE(g_θ(x_f), y*_f) (seed 000 eq. 4) until D_f is relabeled.

    NegGrad's procedure and seed 000's defaults with the relabel goal (`configs/methods/Correct/seed000.yaml`):
    trains on the `relabel` split (the forget images with the request's new labels y*, e.g.
    `RandomInstances(relabel=True)`) and stops when D_f accuracy on y* is 100 % (seed 001 Algorithm 4), at most
    100 epochs.
    """

    train_splits = ("relabel",)
    defaults = "configs/methods/Correct/seed000.yaml"
