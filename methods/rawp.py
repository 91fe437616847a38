"""RAWP: repeated adversarial weight perturbation from the forget set (seed 000's RAWP baseline, after AWP)."""

import torch
import torch.nn.functional as F
from jsonargparse.typing import PositiveFloat, PositiveInt
from torch import nn

from datamodules.access import FORGET_ONLY
from methods.base import UnlearningMethod, register_method


@register_method
class RAWP(UnlearningMethod):
    """Add weight perturbations that maximise the D_f loss to θ, round after round, until D_f is misclassified.

    Seed 000 names the baseline ("induces misclassification by adding weight perturbations generated
    from D_f to the model parameters", after AWP, Wu, Xia & Wang 2020) but neither paper version nor
    the authors' code specifies it. Our procedure, one round per D_f batch (x_f, y_f):

        w ← θ;  repeat `steps` times, for every perturbed layer l:
            R  = the batch's images θ still classifies correctly (all of them if not `remembered_only`)
            θ_l ← θ_l + γ‖w_l‖ g_l / ‖g_l‖,   g_l = ∇_{θ_l} L_CE(g_θ(x_R), y_R)   (AWP's normalised ascent)
            θ_l ← w_l + v_l · min(1, γ‖w_l‖ / ‖v_l‖),   v_l = θ_l − w_l         (AWP's layer-wise ball)

    AWP removes v after a descent step at θ + v; RAWP keeps it: the next round perturbs the perturbed
    weights, so the perturbations accumulate. As in AWP only multi-dimensional weights (convolution
    and linear kernels) are perturbed; biases and normalisation parameters stay. Unlike AWP (part of
    adversarial training) the forward passes run in evaluation mode: the perturbation targets the
    model as evaluated, "correctly classified" means what the stop criterion measures, and the
    normalisation statistics never see the tiny D_f batches.

    `remembered_only` is our reading of "until D_f is misclassified": with the plain batch mean the
    misclassified images' unbounded loss dominates the normalised step, the model collapses onto
    one class and the D_f images of that class stay correct (on 3 of 6 digits requests with k = 8,
    D_f accuracy stays at 12.5-25 % after 100 epochs; all 6 reach 0 % with it). A round whose batch
    is already misclassified adds nothing.

    Each ascent step is an optimizer step (SGD, lr 1, on the gradient −γ‖w_l‖ g_l / ‖g_l‖ of
    L_UL^MS = −L_CE), so `cost/steps` counts forward-backward passes as for the other methods.
    Rounds stop when D_f is misclassified (the base's criterion: after every round with
    `budget.stop_check=step`, after every pass over D_f with `epoch`) or after `budget.max_epochs` passes
    (100, seed 001 Algorithm 3's budget), each of ⌈k / batch_size⌉ rounds (with k ≤ `budget.batch_size` a round
    sees all of D_f). Defaults: `configs/methods/RAWP/seed000.yaml`. It takes no `optimizer` setting.
    """

    data_access = FORGET_ONLY
    train_splits = ("forget",)

    defaults = "configs/methods/RAWP/seed000.yaml"
    base_settings = ("budget", "batchnorm")

    def __init__(self, *, gamma: PositiveFloat = 5e-3, steps: PositiveInt = 1, remembered_only: bool = True, **kwargs) -> None:
        """
        Args:
            gamma: γ, each round's perturbation budget relative to the layer's weight norm,
                ‖v_l‖ ≤ γ‖w_l‖ (AWP's default 5e-3).
            steps: ascent steps per round (AWP uses 1; then ‖v_l‖ = γ‖w_l‖ exactly).
            remembered_only: generate each step's perturbation from the batch's still correctly
                classified images only (ours, see above); False: from the whole batch.
        """
        super().__init__(**kwargs)
        self.gamma, self.steps, self.remembered_only = gamma, steps, remembered_only
        self.automatic_optimization = False

    def perturbed(self) -> list[nn.Parameter]:
        return [p for p in self.model.parameters() if p.ndim > 1]

    def configure_optimizers(self):
        return torch.optim.SGD(self.perturbed(), lr=1.0)

    def training_step(self, batch, batch_idx):
        x, y = batch["forget"]
        optimizer, params = self.optimizers(), self.perturbed()
        start = [p.detach().clone() for p in params]
        radius = [self.gamma * w.norm() for w in start]
        self.model.eval()
        for _ in range(self.steps):
            logits = self.model(x)
            loss = -F.cross_entropy(logits, y)
            chosen = logits.argmax(1) == y if self.remembered_only else torch.ones_like(y, dtype=torch.bool)
            if not chosen.any():
                break
            grads = torch.autograd.grad(-F.cross_entropy(logits[chosen], y[chosen]), params)
            for p, g, r in zip(params, grads, radius):
                p.grad = r * g / g.norm().clamp_min(1e-12)
            optimizer.step()
            with torch.no_grad():
                for p, w, r in zip(params, start, radius):
                    v = p - w
                    p.copy_(w + v * (r / v.norm().clamp_min(1e-12)).clamp(max=1.0))
        optimizer.zero_grad()
        self.model.train()
        self.log_train("train/loss", loss.detach())
        return loss.detach()
