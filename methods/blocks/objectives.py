"""Training objectives shared by methods: seed 000's unlearning losses L_UL (NegGrad, Correct, Adv, AdvImp, Oracle) and
seed 004's intention labels (FewShotInversion, IntentionOracle): negative learning and an untrained model's response."""

from typing import Literal

import torch
import torch.nn.functional as F

from benchmark.models.pretraining import build_model
from datamodules.datasets import DatasetInfo

Goal = Literal["misclassify", "relabel"]

GOAL_SPLIT: dict[str, str] = {"misclassify": "forget", "relabel": "relabel"}
"""The split L_UL trains on: D_f with its labels y (eq. 3) or with the request's new labels y* (eq. 4)."""
UNTRAINED_BATCH = 512
"""Images the untrained model labels per forward (the labels do not depend on it)."""


def unlearning_loss(logits: torch.Tensor, labels: torch.Tensor, goal: Goal) -> torch.Tensor:
    """L_UL: −L_CE(g_θ(x_f), y_f) to misclassify (eq. 3) or L_CE(g_θ(x_f), y*_f) to relabel (eq. 4)."""
    loss = F.cross_entropy(logits, labels)
    return -loss if goal == "misclassify" else loss


def negative_learning_loss(logits: torch.Tensor, label: int | torch.Tensor) -> torch.Tensor:
    """Negative learning against `label` (seed 004 §3 Oracle_neg, §4.3 Ours_neg): −log(1 − p_label(x)) per row (no
    reduction), for one label or one per row, computed as logsumexp(all logits) − logsumexp(the other logits), which
    stays finite where p_label rounds to 1 and the naive form is −log(0)."""
    label = torch.as_tensor(label, device=logits.device).expand(len(logits))
    others = logits.masked_fill(F.one_hot(label, logits.shape[-1]).bool(), float("-inf"))
    return torch.logsumexp(logits, -1) - torch.logsumexp(others, -1)


def untrained_targets(arch: str, info: DatasetInfo, seed: int, x: torch.Tensor, *, soft: bool = True,
                      device: torch.device | str | None = None) -> torch.Tensor:
    """Seed 004's `unt` labels (§3 Oracle_unt: y'_e = f(x_e; w_unt)): the response to `x` (pixels, any device) of `arch`
    freshly initialised with `seed` (`build_model`), in evaluation mode on `device` (None: CPU): its softmax (`soft`)
    or the one-hot of its arg-max; [len(x), K] on the CPU."""
    untrained = build_model(arch, info, seed).to(device or "cpu").eval()
    with torch.no_grad():
        probs = torch.cat([F.softmax(untrained(b.to(device or "cpu")), dim=-1).cpu() for b in x.split(UNTRAINED_BATCH)])
    return probs if soft else F.one_hot(probs.argmax(-1), info.num_classes).float()


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor | None, y: torch.Tensor, weight: float, temperature: float) -> torch.Tensor:
    """Hinton et al.'s knowledge distillation: w · T² · KL(softmax(teacher / T) ‖ softmax(student / T)) (batch mean) +
    (1 − w) · CE(student, y); w = 1, T = 1 is the soft cross-entropy to the teacher's softmax up to a constant."""
    loss = torch.zeros((), device=student.device)
    if weight > 0:
        kd = F.kl_div(F.log_softmax(student / temperature, dim=-1), F.softmax(teacher / temperature, dim=-1), reduction="batchmean")
        loss = loss + weight * temperature**2 * kd
    if weight < 1:
        loss = loss + (1 - weight) * F.cross_entropy(student, y)
    return loss
