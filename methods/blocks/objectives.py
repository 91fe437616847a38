"""Seed 000's unlearning objectives L_UL, shared by NegGrad, Correct, Adv, AdvImp and Oracle."""

from typing import Literal

import torch
import torch.nn.functional as F

Goal = Literal["misclassify", "relabel"]

GOAL_SPLIT: dict[str, str] = {"misclassify": "forget", "relabel": "relabel"}
"""The split L_UL trains on: D_f with its labels y (eq. 3) or with the request's new labels y* (eq. 4)."""


def unlearning_loss(logits: torch.Tensor, labels: torch.Tensor, goal: Goal) -> torch.Tensor:
    """L_UL: −L_CE(g_θ(x_f), y_f) to misclassify (eq. 3) or L_CE(g_θ(x_f), y*_f) to relabel (eq. 4)."""
    loss = F.cross_entropy(logits, labels)
    return -loss if goal == "misclassify" else loss
