"""IU: influence unlearning, one Newton step with a WoodFisher inverse (Jia et al., *Model Sparsity Can Simplify Machine
Unlearning*, NeurIPS 2023, its IU baseline after Koh & Liang 2017 and Izzo et al. 2021; the WoodFisher estimate of
Singh & Alistarh, NeurIPS 2020, §3), as the authors' code computes it (OPTML-Group/Unlearn-Sparse @ unlearn/Wfisher.py;
the same file in OPTML-Group/Unlearn-Saliency @ Classification/unlearn/Wfisher.py), a baseline of SalUn's Table 1."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal

import torch
import torch.nn.functional as F
from jsonargparse.typing import PositiveFloat, PositiveInt
from torch import nn
from torch.utils.data import DataLoader, Dataset

from benchmark.core.errors import UnlearnBenchError
from datamodules.access import FORGET_AND_RETAIN, DataView
from methods.base import UnlearningMethod, register_method
from methods.blocks.fisher import looped_gradients, vmapped_gradients
from methods.blocks.gradients import accumulated_gradients

Inverse = Literal["woodfisher", "authors"]
PER_SAMPLE_BUDGET = 1 << 23
"""Elements of per-sample gradients computed at once (bounds the memory of one vmap call)."""


def _loader(dataset: Dataset, batch_size: int) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=getattr(dataset, "collate_fn", None))


def flat_gradient_sum(model: nn.Module, names: list[str], dataset: Dataset, batch_size: int,
                      device: torch.device | str | None = None) -> torch.Tensor:
    """Σ_n ∇_θ CE(f(x_n), y_n) over `dataset` for the parameters `names`, flattened in their order: one backward of each
    batch's summed loss (Wfisher.py's batch-mean loss × batch size), the model in evaluation mode
    (`accumulated_gradients`); zeros for an empty dataset."""
    summed, _ = accumulated_gradients(model, _loader(dataset, batch_size), lambda out, y: F.cross_entropy(out, y, reduction="sum"), names,
                                      device=device)
    return torch.cat([summed[name].flatten() for name in names])


def per_sample_gradients(model: nn.Module, params: dict[str, torch.Tensor], dataset: Dataset,
                         device: torch.device | str | None = None) -> Iterator[torch.Tensor]:
    """∇_θ CE(f(x_n), y_n) of each sample of `dataset` in order (Wfisher.py's batch size 1), flattened in `params`' order,
    in chunks of rows [c, P]: by torch.func (`methods.blocks.fisher.vmapped_gradients` with each sample's label as its one class),
    or a per-sample autograd loop (`looped_gradients`) where vmap cannot run the model. `params`: detached tensors; the model's
    mode is left as it is (put it in evaluation mode: BatchNorm's running statistics)."""
    buffers = dict(model.named_buffers())
    step = max(1, PER_SAMPLE_BUDGET // sum(p.numel() for p in params.values()))
    gradients = vmapped_gradients
    for x, y, *_ in _loader(dataset, step):
        x, y = x.to(device), y.to(device)
        try:
            grads = gradients(model, params, buffers, x, y[:, None])
        except (RuntimeError, NotImplementedError):
            if gradients is looped_gradients:
                raise
            gradients = looped_gradients
            grads = gradients(model, params, buffers, x, y[:, None])
        yield torch.cat([grads[name].reshape(len(x), -1) for name in params], dim=1)


def woodfisher_ihvp(gradients: torch.Tensor, v: torch.Tensor, *, fisher_n: float, damping: float) -> torch.Tensor:
    """F̂⁻¹v for the damped empirical Fisher F̂ = λI + (1/N) Σ_k g_k g_kᵀ of the rows g_k of `gradients` [n, P]
    (WoodFisher, Singh & Alistarh 2020 §3: F̂⁻¹ built by n Sherman-Morrison updates F̂_k⁻¹ = F̂_{k−1}⁻¹ −
    F̂_{k−1}⁻¹ g_k g_kᵀ F̂_{k−1}⁻¹ / (N + g_kᵀ F̂_{k−1}⁻¹ g_k) from F̂_0⁻¹ = I/λ). Their product is the Woodbury identity,
    computed here in closed form without the P × P matrix: F̂⁻¹v = (v − Gᵀ (NλI_n + G Gᵀ)⁻¹ G v) / λ, the n × n system
    solved in float64; O(n²P) time, the n × P gradients in memory."""
    gram = (gradients @ gradients.T).double()
    gram.diagonal().add_(fisher_n * damping)
    coefficients = torch.linalg.solve(gram, (gradients @ v).double())
    return (v - gradients.T @ coefficients.to(v.dtype)) / damping


def authors_ihvp(rows: Iterable[torch.Tensor], v: torch.Tensor, *, fisher_n: float, damping: float = 1.0) -> torch.Tensor:
    """Wfisher.py's `woodfisher` recursion, as written: k = v/λ; the first gradient g_1 only sets o = g_1/λ; for each
    later g: t = o·g, k ← k − (k·g)/(N + t) · o, o ← o − t/(N + t) · o. `o` stays a multiple of g_1, so the result is
    v/λ plus a multiple of g_1: not F̂⁻¹v (`woodfisher_ihvp`). O(P) memory. `rows`: chunks [c, P] in order."""
    k, o = v / damping, None
    for chunk in rows:
        for g in chunk:
            if o is None:
                o = g / damping
                continue
            t = o @ g
            k = k - (k @ g) / (fisher_n + t) * o
            o = o - t / (fisher_n + t) * o
    return k


@register_method
class IU(UnlearningMethod):
    """One shot: θ ← θ + α · F̂⁻¹v with v = Σ_{D_f} g / (n_f + n_r) − Σ_{D_r} g · n_f / ((n_f + n_r) · n_r), g the
    per-sample gradient of the cross-entropy, i.e. v = n_f/(n_f + n_r) · (mean_{D_f} g − mean_{D_r} g), and F̂ the damped
    empirical Fisher of `hessian_samples` D_r images (`woodfisher_ihvp`).

    As the authors' code (Wfisher.py, `Wfisher`): the model in evaluation mode throughout; the sums are over all of D_f
    and D_r (each batch's mean loss × its size, so exactly the per-sample sums; `budget.batch_size` only sets the
    loader's batch); F̂ from per-sample (batch size 1) gradients of D_r; every parameter, BatchNorm's and the head's.

    Readings of the code (its `woodfisher`):
    - F̂ = λI + (1/N) Σ_{k=1}^{n} g_k g_kᵀ with λ = 1 (the recursion starts from k = v: F̂_0⁻¹ = I), N = 1000 (the
      code's `N`) and n = 1002 samples (it returns after the sample of index 1001 > N). Equivalently F̂ = (1/N)(N·I +
      Σ g gᵀ): the "N = 1000" is a damping of 1000 on the sum of outer products, the result scaled by N.
    - The code's recursion is not WoodFisher's: its `o_vec` should be F̂_{k−1}⁻¹ g_k for every new g_k, but it starts at
      g_1 and is only ever rescaled, so the step is v plus a multiple of the first sample's gradient (`authors_ihvp`).
      By default F̂⁻¹v is computed exactly (`inverse=woodfisher`); `inverse=authors` runs the code's recursion.
    - Its Fisher samples are the first 1002 rows of its D_r (an unshuffled loader); ours are a seeded random subset
      (`DataView.retain_subset`: the same rows for every run seed), in index order.
    - Its loaders keep the training augmentation (the OPTML loaders' RandomCrop + flip): gradients of augmented images;
      ours are of the images as they are.
    - Memory: the exact inverse holds the n × P gradients (ResNet-18, 11.2 M parameters, n = 1002: 45 GB in float32);
      `authors` needs O(P). Every process computes the same step over the same data (identical weights under DDP).

    Defaults (`configs/methods/IU/optml.yaml`): α = 10 (CIFAR-10, 10 % random forgetting: JingWu321/Scissorhands @
    Classification/sh/main_0.1_cifar10.sh; α = 2 for SVHN class forgetting; the arg_parser's default is 0.2), N = 1000,
    λ = 1, n = 1002 (Wfisher.py), batch 256 (the OPTML arg_parser).
    """

    data_access = FORGET_AND_RETAIN
    train_splits = ()
    defaults = "configs/methods/IU/optml.yaml"
    base_settings = ("budget",)
    one_shot = True

    def __init__(self, *, alpha: PositiveFloat = 10.0, hessian_samples: PositiveInt = 1002, fisher_n: PositiveFloat = 1000.0,
                 damping: PositiveFloat = 1.0, inverse: Inverse = "woodfisher", **kwargs) -> None:
        """
        Args:
            alpha: α, the step's scale (the code's `--alpha`).
            hessian_samples: n, the D_r images whose per-sample gradients build F̂ (the code's 1002).
            fisher_n: N, the divisor of the sum of outer products in F̂ (the code's `N = 1000`).
            damping: λ, F̂'s multiple of the identity (the code's 1: its recursion starts from v).
            inverse: `woodfisher`, F̂⁻¹v exactly; `authors`, Wfisher.py's recursion as written (see the class).
        """
        super().__init__(**kwargs)
        self.alpha, self.hessian_samples, self.fisher_n, self.damping, self.inverse = alpha, hessian_samples, fisher_n, damping, inverse

    def num_epochs(self) -> int:
        return 0

    def direction(self, data: DataView) -> torch.Tensor:
        """v, flattened over the parameters that require grad (in `named_parameters` order)."""
        forget, retain = data["forget"], data["retain"]
        n_f, n_r = len(forget), len(retain)
        if not n_f or not n_r:
            raise UnlearnBenchError(f"IU needs forget and retain images; the request has {n_f} and {n_r}")
        names = [name for name, p in self.model.named_parameters() if p.requires_grad]
        forget_sum = flat_gradient_sum(self.model, names, forget, self.batch_size(), self.device)
        retain_sum = flat_gradient_sum(self.model, names, retain, self.batch_size(), self.device)
        return forget_sum / (n_f + n_r) - retain_sum * (n_f / ((n_f + n_r) * n_r))

    def prepare(self, data: DataView) -> None:
        self.model.eval()
        v = self.direction(data)
        params = {name: p.detach() for name, p in self.model.named_parameters() if p.requires_grad}
        hessian = data.retain_subset(self.hessian_samples)
        rows = per_sample_gradients(self.model, params, hessian, self.device)
        if self.inverse == "authors":
            step = authors_ihvp(rows, v, fisher_n=self.fisher_n, damping=self.damping)
        else:
            gradients = torch.empty(len(hessian), len(v), dtype=v.dtype, device=v.device)
            start = 0
            for chunk in rows:
                gradients[start : start + len(chunk)] = chunk
                start += len(chunk)
            step = woodfisher_ihvp(gradients, v, fisher_n=self.fisher_n, damping=self.damping)
            del gradients
        if not torch.isfinite(step).all():
            raise UnlearnBenchError("IU: the inverse-Fisher-vector product is not finite (non-finite gradients); nothing was changed")
        with torch.no_grad():
            start = 0
            for p in (p for p in self.model.parameters() if p.requires_grad):
                p.add_(self.alpha * step[start : start + p.numel()].view_as(p))
                start += p.numel()
        self.cost["cost/hessian_samples"] = float(len(hessian))
        self.model.train()

    def training_step(self, batch, batch_idx):  # never called: zero epochs
        raise RuntimeError("IU does not train")
