"""Influence: one Newton step that removes D_f's influence (Koh & Liang 2017), H⁻¹ by LiSSA (Agarwal et al. 2017);
seed 003 Fig. 1's baseline."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from jsonargparse.typing import NonNegativeFloat, PositiveFloat, PositiveInt
from torch.utils.data import DataLoader

from benchmark.core.errors import UnlearnBenchError
from datamodules.access import FORGET_AND_RETAIN, DataView
from methods.base import UnlearningMethod, register_method

Vector = list[torch.Tensor]


def lissa(hvp: Callable[[Vector], Vector], v: Vector, *, damping: float, scale: float, depth: int) -> Vector:
    """LiSSA's estimate of H⁻¹v: h_0 = v, h_j = v + (1 − damping) h_{j−1} − hvp(h_{j−1}) / scale, returned as h_J / scale
    (Agarwal et al. 2017, as Koh & Liang's code runs it); `hvp` may use a new mini-batch at every call. It converges
    when the eigenvalues of H / scale + damping lie in (0, 2)."""
    h = [t.clone() for t in v]
    for _ in range(depth):
        hv = hvp(h)
        h = [a + (1 - damping) * b - c / scale for a, b, c in zip(v, h, hv)]
    return [t / scale for t in h]


@register_method
class Influence(UnlearningMethod):
    """θ ← θ + (1/n) H⁻¹ Σ_{z ∈ D_f} ∇_θ L(z, θ): the influence-function estimate of the model trained without D_f
    (Koh & Liang 2017 §2: removing z is up-weighting it by −1/n), n = |D_f| + |D_r|, H the Hessian of the mean training
    loss, here of D_r's (after the removal), estimated by LiSSA on D_r mini-batches of `budget.batch_size` with the
    model in evaluation mode. Seed 003's re-upload lost its `cal_if_lissa`, so `damping`, `scale` and `depth` are our
    assumptions (`configs/methods/Influence/seed003.yaml`). One shot: no training epochs."""

    data_access = FORGET_AND_RETAIN
    train_splits = ()
    defaults = "configs/methods/Influence/seed003.yaml"
    base_settings = ("budget",)
    one_shot = True

    def __init__(self, *, damping: NonNegativeFloat = 0.01, scale: PositiveFloat = 25.0, depth: PositiveInt = 100, **kwargs) -> None:
        """
        Args:
            damping: LiSSA's damping λ (H + λ·scale·I is inverted).
            scale: LiSSA's scale (the Hessian's largest eigenvalue must be below 2 · scale).
            depth: LiSSA's recursion depth (one D_r mini-batch each).
        """
        super().__init__(**kwargs)
        self.damping, self.scale, self.depth = damping, scale, depth

    def num_epochs(self) -> int:
        return 0

    def prepare(self, data: DataView) -> None:
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.model.eval()
        forget = data["forget"]
        n = len(forget) + len(data["retain"])
        v = [torch.zeros_like(p) for p in params]
        for x, y, *_ in DataLoader(forget, batch_size=self.batch_size(), collate_fn=getattr(forget, "collate_fn", None)):
            grads = torch.autograd.grad(F.cross_entropy(self.model(x.to(self.device)), y.to(self.device), reduction="sum"), params)
            v = [a + g / n for a, g in zip(v, grads)]
        batches = self._cycle(data)

        def hvp(h: Vector) -> Vector:
            x, y = next(batches)
            grads = torch.autograd.grad(F.cross_entropy(self.model(x), y), params, create_graph=True)
            return [t.detach() for t in torch.autograd.grad(grads, params, grad_outputs=h)]

        step = lissa(hvp, v, damping=self.damping, scale=self.scale, depth=self.depth)
        if not all(torch.isfinite(t).all() for t in step):
            raise UnlearnBenchError(f"Influence: LiSSA diverged (non-finite H⁻¹v; damping {self.damping}, scale {self.scale}): "
                                    "raise the scale so that the Hessian's eigenvalues lie below 2 · scale")
        with torch.no_grad():
            for p, s in zip(params, step):
                p.add_(s)
        self.model.train()

    def _cycle(self, data: DataView) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """D_r mini-batches, reshuffled at every pass, on the model's device."""
        while True:
            for x, y, *_ in data.loader("retain", self.batch_size()):
                yield x.to(self.device), y.to(self.device)

    def training_step(self, batch, batch_idx):  # never called: zero epochs
        raise RuntimeError("Influence does not train")
