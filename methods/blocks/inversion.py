"""Seed 004's model inversion (Yoon et al., *Few-shot Unlearning by Model Inversion*, §4.1, Apps. A and F): a
conditional generator G(z, y), y ∈ Y ∪ {y⁺}, trained against the frozen original classifier f_o so that G(z, y)
looks like f_o's training images of class y, and G(z, y⁺) like the few targets D_e (one label y_e).

Readings of what the paper leaves open:
- Every loss is averaged over the samples of the batch (ℓ_ent is a cross-entropy, so the others are put on its
  scale); eq. 6 prints a sum over the batch (`tv_loss(reduction="sum")`).
- ℓ_aug (eq. 1) compares f_o's predicted probabilities (softmax of the logits), as §4.1 calls f_o(x̃) a
  prediction compared "in terms of cross entropy" with a label; the gradient flows through both sides.
- ℓ_div (eq. 5) is exp(−mean) by default, not exp(−sum) as printed (see `diversity_loss`); fe is the input of
  the classifier head ("the target classifier except for the last fully connected layer", App. F).
- ℓ_tar (eq. 2) compares per-channel means of every normalisation layer's input by default (App. A: the BN
  layers' batch means; LayerNorm / InstanceNorm / GroupNorm for models without BN, Table 6); `full` is eq. 2
  literally, the whole input averaged over the samples only.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import torch
import torch.nn.functional as F
from jsonargparse.typing import NonNegativeFloat, OpenUnitInterval, PositiveFloat, PositiveInt
from timm.layers import LayerNorm2d
from torch import nn

from benchmark.core.errors import UnlearnBenchError
from benchmark.core.validation import check_fields
from benchmark.models import Classifier

NORM_LAYERS = (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm, nn.GroupNorm, nn.LayerNorm)
"""The layers whose inputs `FeatureHooks` records (BatchNorm also for ℓ_bn; all of them for ℓ_tar)."""
TargetReduce = Literal["channel", "full"]
DiversityReduce = Literal["mean", "sum"]
Reduction = Literal["mean", "sum"]
Transform = Callable[[torch.Tensor], torch.Tensor]


class ConditionalGenerator(nn.Module):
    """G(z, y) of §4.1, DCGAN-style (App. A; Radford et al., 2015): [z, embedding(y)] → linear → a 2·width-channel
    map of side ⌈H/4⌉ → 2 × (upsample ×2, 3×3 conv, BatchNorm, LeakyReLU(0.2)) → 3×3 conv → sigmoid, pixels in
    [0, 1], centre-cropped to H × H. Conditions 0 … num_classes − 1 are the classes, num_classes is y⁺."""

    def __init__(self, *, z_dim: int = 64, channels: int = 3, image_size: int = 32, num_classes: int = 10, width: int = 64) -> None:
        super().__init__()
        self.z_dim, self.channels, self.image_size, self.num_classes = z_dim, channels, image_size, num_classes
        self.base = math.ceil(image_size / 4)
        self.embed = nn.Embedding(num_classes + 1, z_dim)
        self.project = nn.Linear(2 * z_dim, 2 * width * self.base**2)
        self.body = nn.Sequential(
            nn.BatchNorm2d(2 * width),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.LeakyReLU(0.2),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(2 * width, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, channels, 3, padding=1),
            nn.Sigmoid(),
        )

    @property
    def y_plus(self) -> int:
        """The index of the auxiliary condition y⁺ (D_e-like samples)."""
        return self.num_classes

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.project(torch.cat([z, self.embed(y)], dim=1)).view(len(z), -1, self.base, self.base)
        x = self.body(h)
        top = (x.shape[-1] - self.image_size) // 2
        return x[..., top : top + self.image_size, top : top + self.image_size]


def tv_loss(x: torch.Tensor, *, reduction: Reduction = "mean") -> torch.Tensor:
    """ℓ_tv (App. F eq. 6): Σ_(i,j) Σ_(i',j')∈δ(i,j) ‖x̃_(i,j) − x̃_(i',j')‖²₂ per image, the norm over channels and
    δ(i,j) the right and lower neighbours (each adjacent pair once); averaged over the batch, or summed (`sum`,
    eq. 6 as printed)."""
    per_image = (x[..., 1:, :] - x[..., :-1, :]).pow(2).flatten(1).sum(1) + (x[..., :, 1:] - x[..., :, :-1]).pow(2).flatten(1).sum(1)
    return per_image.sum() if reduction == "sum" else per_image.mean()


def diversity_loss(z: torch.Tensor, features: torch.Tensor, y: torch.Tensor, *, reduce: DiversityReduce = "mean") -> torch.Tensor:
    """ℓ_div (App. F eq. 5): exp(−Σ_{(z_i, y), (z_j, y) ∈ B} ‖z_i − z_j‖₂ · d_fe(i, j)), over the pairs of samples
    generated with the same condition y, d_fe the l1 distance of f_o's features fe of G(z_i, y) and G(z_j, y).

    As printed (`reduce="sum"`: the sum over ordered pairs, d_fe = ‖fe_i − fe_j‖₁) the exponent is of order
    −10⁵ on a batch of 128, so the loss is 0 in floating point and has no gradient. The default (`mean`) follows
    the KegNet code of Yoo et al. (2019), whose diversity loss this is: exp(−mean over same-y pairs i ≠ j of
    ‖z_i − z_j‖₂ · mean|fe_i − fe_j|). (KegNet itself takes the mean squared noise difference and all pairs,
    i = j included, with no condition grouping.) 1 when no two samples share a condition."""
    same = (y[:, None] == y[None, :]) & ~torch.eye(len(y), dtype=torch.bool, device=y.device)
    i, j = same.nonzero(as_tuple=True)
    if len(i) == 0:
        return features.new_ones(())
    fe = features.flatten(1)
    noise = torch.linalg.vector_norm(z[i] - z[j], dim=1)
    feature = (fe[i] - fe[j]).abs()
    if reduce == "sum":
        return torch.exp(-(noise * feature.sum(1)).sum())
    return torch.exp(-(noise * feature.mean(1)).mean())


def entropy_loss(logits: torch.Tensor, y: torch.Tensor, y_plus_label: int) -> torch.Tensor:
    """ℓ_ent (§4.1): the cross-entropy of f_o(G(z, y)) to y, the condition y⁺ (index = the number of classes)
    scored against D_e's label y_e = `y_plus_label`; averaged over the batch."""
    labels = torch.where(y == logits.shape[1], torch.full_like(y, y_plus_label), y)
    return F.cross_entropy(logits, labels)


def augmentation_loss(model: nn.Module, x: torch.Tensor, transforms: Sequence[Transform], *, logits: torch.Tensor | None = None) -> torch.Tensor:
    """ℓ_aug (§4.1 eq. 1): Σ_{φ ∈ Φ} ‖f_o(x̃) − f_o(φ(x̃))‖²₂, f_o's outputs as predicted probabilities; averaged
    over the batch. `logits`: f_o(x̃) already computed (saves a forward). 0 for an empty Φ."""
    probs = F.softmax(model(x) if logits is None else logits, dim=-1)
    total = x.new_zeros(())
    for phi in transforms:
        total = total + (probs - F.softmax(model(phi(x)), dim=-1)).pow(2).sum(-1).mean()
    return total


@dataclass(frozen=True)
class LayerStats:
    """Statistics of one layer's input over a batch: per-channel mean and biased variance (ℓ_bn; ℓ_tar `channel`)
    and the mean over the samples only, shaped like one sample's input (μ_l of eq. 2, ℓ_tar `full`)."""

    mean: torch.Tensor
    var: torch.Tensor
    sample_mean: torch.Tensor


def layer_statistics(x: torch.Tensor, channel_dim: int = 1) -> LayerStats:
    """`LayerStats` of a layer input `x` [N, …], the channels along `channel_dim`."""
    dims = tuple(d for d in range(x.ndim) if d != channel_dim % x.ndim)
    var, mean = torch.var_mean(x, dim=dims, correction=0)
    return LayerStats(mean, var, x.mean(0))


def target_loss(stats_generated: Mapping[str, LayerStats], stats_target: Mapping[str, LayerStats], reduce: TargetReduce = "channel") -> torch.Tensor:
    """ℓ_tar (§4.1 eq. 2): Σ_l ‖μ_l(B⁺) − μ_l(D_e)‖²₂ over the layers in both mappings, from the statistics of the
    generated y⁺ batch B⁺ and of D_e. `channel`: μ_l the per-channel mean of the layer's input (App. A: batch means,
    as for ℓ_bn); `full`: eq. 2 literally, the input averaged over the samples only."""
    names = [name for name in stats_target if name in stats_generated]
    if not names:
        raise UnlearnBenchError("ℓ_tar has no layer in common between the generated batch and D_e")
    attribute = "mean" if reduce == "channel" else "sample_mean"
    return sum((getattr(stats_generated[n], attribute) - getattr(stats_target[n], attribute)).pow(2).sum() for n in names)


def running_statistics(model: nn.Module) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """(running_mean, running_var) of every BatchNorm layer of `model` that tracks them, by module name."""
    return {name: (m.running_mean, m.running_var) for name, m in model.named_modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None and m.running_var is not None}


def bn_loss(stats: Mapping[str, LayerStats], running: Mapping[str, tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """ℓ_bn (§4.1, after Yin et al. 2020): Σ_{l: BN layers} ‖μ_l(B) − μ_l(D)‖²₂ + ‖σ²_l(B) − σ²_l(D)‖²₂, squared as
    printed: the batch mean and biased batch variance of each BN layer's input against its running_mean /
    running_var (`running_statistics`), over the layers in both mappings."""
    names = [name for name in running if name in stats]
    if not names:
        raise UnlearnBenchError("ℓ_bn has no BatchNorm layer with running statistics in the generated batch's statistics")
    return sum((stats[n].mean - running[n][0]).pow(2).sum() + (stats[n].var - running[n][1]).pow(2).sum() for n in names)


def _channel_dim(module: nn.Module, x: torch.Tensor) -> int:
    """The channel dimension of a normalisation layer's input: 1, except for a channels-last LayerNorm, whose
    first normalised dimension it is (the embedding of a ViT's tokens)."""
    if isinstance(module, nn.LayerNorm) and not isinstance(module, LayerNorm2d):
        return x.ndim - len(module.normalized_shape)
    return 1


def _head_name(model: nn.Module) -> str | None:
    """The classifier head: a `Classifier`'s `head`, else the last `nn.Linear` module (in registration order)."""
    if isinstance(model, Classifier):
        return "head"
    linears = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    return linears[-1] if linears else None


@dataclass
class Capture:
    """What one `FeatureHooks.capture` forward recorded: the logits, each normalisation layer's `LayerStats` on
    the batch and on its `subset` rows (a layer run k > 1 times in a forward is keyed `name#k`), and fe, the
    head's input flattened (None without a linear head)."""

    logits: torch.Tensor
    stats: dict[str, LayerStats] = field(default_factory=dict)
    subset_stats: dict[str, LayerStats] = field(default_factory=dict)
    features: torch.Tensor | None = None


class FeatureHooks:
    """Forward pre-hooks on a frozen classifier f_o for §4.1's losses: every normalisation layer's input statistics
    (ℓ_bn, ℓ_tar) and the head's input fe (ℓ_div). The model is put in evaluation mode until `close()` (then each
    module's training flag is restored), so no running statistics change; only `capture` forwards are recorded.
    A context manager."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self._modes = {module: module.training for module in model.modules()}
        model.eval()
        self.norm_layers = {name: m for name, m in model.named_modules() if isinstance(m, NORM_LAYERS)}
        self.head = _head_name(model)
        self._record: Capture | None = None
        self._subset: torch.Tensor | None = None
        self._handles = [m.register_forward_pre_hook(self._norm_hook(name)) for name, m in self.norm_layers.items()]
        if self.head is not None:
            self._handles.append(model.get_submodule(self.head).register_forward_pre_hook(self._head_hook))

    def _norm_hook(self, name: str):
        def hook(module: nn.Module, args: tuple) -> None:
            if self._record is None:
                return
            x, key, k = args[0], name, 1
            while key in self._record.stats:
                k += 1
                key = f"{name}#{k}"
            dim = _channel_dim(module, x)
            self._record.stats[key] = layer_statistics(x, dim)
            if self._subset is not None and bool(self._subset.any()):
                self._record.subset_stats[key] = layer_statistics(x[self._subset], dim)
        return hook

    def _head_hook(self, module: nn.Module, args: tuple) -> None:
        if self._record is not None:
            self._record.features = args[0].flatten(1)

    def capture(self, x: torch.Tensor, subset: torch.Tensor | None = None) -> Capture:
        """f_o(x) with the statistics of its normalisation layers' inputs on `x` and on the rows `subset` (a boolean
        mask) selects, and the head's input."""
        self._record, self._subset = Capture(logits=x.new_empty(0)), subset
        try:
            self._record.logits = self.model(x)
            return self._record
        finally:
            self._record, self._subset = None, None

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        for module, training in self._modes.items():
            module.train(training)

    def __enter__(self) -> FeatureHooks:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


BN_WEIGHT = 0.1
"""ℓ_bn's weight when the classifier has BatchNorm and `InversionSettings.w_bn` is not given."""


@dataclass(frozen=True)
class InversionSettings:
    """The generator's training (§4.1): Adam on w_tv ℓ_tv + w_div ℓ_div + w_ent ℓ_ent + w_aug ℓ_aug + w_tar ℓ_tar +
    w_bn ℓ_bn. The paper gives none of these numbers; the defaults are assumptions: unit weights for the losses
    of order one (ℓ_ent, ℓ_div, ℓ_aug, ℓ_tar); w_tv = 1e-3 since ℓ_tv sums over an image's pixels (≈ 250 for a
    28×28 noise image, ≈ 1000 at 32×32×3); w_bn = 0.1 (`BN_WEIGHT`) since ℓ_bn sums squared differences over every
    BN channel of every layer; DCGAN's Adam (lr 1e-3 here, betas (0.5, 0.999)); KegNet's z_dim 64; 2000 steps of 128.

    Args:
        w_tv, w_div, w_ent, w_aug, w_tar, w_bn: the loss weights (0 switches a loss off). w_bn None (the default):
            `BN_WEIGHT` for a classifier with BatchNorm's running statistics, 0 for one without (§4.1: ℓ_bn is
            "available only when the classifier includes BN layers"); a number > 0 asks ℓ_bn and needs them.
        steps: Adam steps of the generator.
        batch_size: generated images per step (at least 2).
        z_dim: the noise dimension of G.
        width: G's channel width (`ConditionalGenerator`).
        lr: Adam's learning rate.
        betas: Adam's betas.
        plus_share: the share of each batch generated with y⁺ (at least one image, at most batch_size − 1);
            None: 1/(K + 1), the share of y⁺ when y is drawn uniformly from Y⁺ (§4.1's ℓ_bn "y drawn from Y⁺").
            The other conditions are drawn uniformly from the K classes.
        div_reduce: ℓ_div's form (`diversity_loss`).
        tar_reduce: ℓ_tar's form (`target_loss`).
    """

    w_tv: NonNegativeFloat = 1e-3
    w_div: NonNegativeFloat = 1.0
    w_ent: NonNegativeFloat = 1.0
    w_aug: NonNegativeFloat = 1.0
    w_tar: NonNegativeFloat = 1.0
    w_bn: NonNegativeFloat | None = None
    steps: PositiveInt = 2000
    batch_size: PositiveInt = 128
    z_dim: PositiveInt = 64
    width: PositiveInt = 64
    lr: PositiveFloat = 1e-3
    betas: tuple[float, float] = (0.5, 0.999)
    plus_share: OpenUnitInterval | None = None
    div_reduce: DiversityReduce = "mean"
    tar_reduce: TargetReduce = "channel"

    def __post_init__(self) -> None:
        check_fields(self, "inversion")  # one line naming the setting, the value and its range
        if len(self.betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in self.betas):
            raise UnlearnBenchError(f"inversion.betas = {self.betas!r} is not allowed; two numbers ≥ 0 and < 1")
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        if not any((self.w_tv, self.w_div, self.w_ent, self.w_aug, self.w_tar, self.w_bn is None or self.w_bn)):
            raise UnlearnBenchError("inversion: every loss weight is 0; give at least one a positive weight")
        if self.batch_size < 2:
            raise UnlearnBenchError(f"inversion.batch_size = {self.batch_size} is not allowed; at least 2 (y⁺ and a class)")

    def for_model(self, model: nn.Module) -> InversionSettings:
        """These settings for the classifier `model`: w_bn decided (None: `BN_WEIGHT` with BatchNorm's running statistics,
        0 without); UnlearnBenchError when w_bn > 0 was given for a model without them, or no loss is left."""
        running = bool(running_statistics(model))
        if self.w_bn is not None and self.w_bn > 0 and not running:
            raise UnlearnBenchError(f"ℓ_bn (w_bn = {self.w_bn}) needs BatchNorm layers with running statistics; {type(model).__name__} "
                                    f"{getattr(model, 'arch', '')} has none (set w_bn to 0, or leave it unset: on only with BatchNorm)")
        resolved = replace(self, w_bn=(BN_WEIGHT if running else 0.0) if self.w_bn is None else self.w_bn)
        if not any((resolved.w_tv, resolved.w_div, resolved.w_ent, resolved.w_aug, resolved.w_tar, resolved.w_bn)):
            raise UnlearnBenchError(f"inversion: every loss weight is 0 for {type(model).__name__}, which has no BatchNorm for ℓ_bn; "
                                    "give another loss a positive weight")
        return resolved


@contextlib.contextmanager
def _seeded(device: torch.device, generator: torch.Generator | None):
    """The global RNG forked and seeded from `generator` (G's initialisation, the augmentations); as is without one."""
    if generator is None:
        yield
        return
    seed = int(torch.randint(2**62, (1,), generator=generator))
    with torch.random.fork_rng(devices=[] if device.type == "cpu" else [device], device_type=device.type):
        torch.manual_seed(seed)
        yield


def invert(model: nn.Module, settings: InversionSettings = InversionSettings(), *, d_e: torch.Tensor, y_e: int,
           transforms: Sequence[Transform], generator: torch.Generator | None = None, progress: bool = False,
           on_step: Callable[[int, dict[str, float]], None] | None = None) -> ConditionalGenerator:
    """Train G(z, y) against the frozen classifier f_o = `model` (§4.1) and return it, in evaluation mode.

    Each step draws a batch of `settings.batch_size` conditions (a `plus_share` of them y⁺, the rest uniform over
    the K classes, K = f_o's output width) and z ~ N(0, I), and minimises the weighted sum of ℓ_tv, ℓ_div, ℓ_ent,
    ℓ_aug (Φ = `transforms`), ℓ_tar (y⁺ rows against D_e = `d_e`, pixels in [0, 1], all of label `y_e`) and ℓ_bn.
    During it f_o is in evaluation mode with requires_grad off; both are restored afterwards, and its state_dict
    is untouched. With `generator`, G's initialisation, z, y and the random augmentations come from it (the global
    RNG is forked, not advanced). `on_step(step, {loss name: value, "total": …})` is called after every step;
    `progress` prints ten such lines to stderr. UnlearnBenchError when a loss is asked that the model cannot give
    (ℓ_bn without BatchNorm, ℓ_tar without normalisation layers, ℓ_div without a linear head) or when the total
    loss becomes non-finite."""
    parameter = next(model.parameters(), None)
    if parameter is None:
        raise UnlearnBenchError(f"{type(model).__name__} has no parameters to invert")
    device, dtype = parameter.device, parameter.dtype
    if d_e.ndim != 4 or len(d_e) == 0 or d_e.shape[-1] != d_e.shape[-2]:
        raise UnlearnBenchError(f"D_e must be a non-empty batch of square images [n, C, H, H]; got shape {tuple(d_e.shape)}")
    s = settings.for_model(model)
    running = running_statistics(model)
    d_e = d_e.to(device=device, dtype=dtype)
    flags = {p: p.requires_grad for p in model.parameters()}
    try:
        model.requires_grad_(False)
        with FeatureHooks(model) as hooks:
            with torch.no_grad():
                target = hooks.capture(d_e)
            k = target.logits.shape[1]
            if not 0 <= y_e < k:
                raise UnlearnBenchError(f"y_e = {y_e} is not a class of the model's {k}")
            if s.w_tar > 0 and not target.stats:
                raise UnlearnBenchError(f"ℓ_tar (w_tar = {s.w_tar}) needs normalisation layers; {type(model).__name__} has none (set w_tar = 0)")
            if s.w_div > 0 and target.features is None:
                raise UnlearnBenchError(f"ℓ_div (w_div = {s.w_div}) needs a linear head; {type(model).__name__} has none (set w_div = 0)")
            n_plus = min(s.batch_size - 1, max(1, round(s.batch_size * (s.plus_share or 1 / (k + 1)))))
            with _seeded(device, generator):
                g = ConditionalGenerator(z_dim=s.z_dim, channels=d_e.shape[1], image_size=d_e.shape[-1], num_classes=k, width=s.width)
                g = g.to(device=device, dtype=dtype).train()
                optimizer = torch.optim.Adam(g.parameters(), lr=s.lr, betas=s.betas)
                y_plus = torch.full((n_plus,), k, dtype=torch.long)
                every = max(1, s.steps // 10)
                for step in range(s.steps):
                    z = torch.randn(s.batch_size, s.z_dim, generator=generator, dtype=dtype).to(device)
                    y = torch.cat([torch.randint(0, k, (s.batch_size - n_plus,), generator=generator), y_plus]).to(device)
                    x = g(z, y)
                    out = hooks.capture(x, subset=y == k)
                    terms = {"tv": (s.w_tv, lambda: tv_loss(x)),
                             "div": (s.w_div, lambda: diversity_loss(z, out.features, y, reduce=s.div_reduce)),
                             "ent": (s.w_ent, lambda: entropy_loss(out.logits, y, y_e)),
                             "aug": (s.w_aug, lambda: augmentation_loss(model, x, transforms, logits=out.logits)),
                             "tar": (s.w_tar, lambda: target_loss(out.subset_stats, target.stats, s.tar_reduce)),
                             "bn": (s.w_bn, lambda: bn_loss(out.stats, running))}
                    losses = {name: loss() for name, (weight, loss) in terms.items() if weight > 0}
                    total = sum(terms[name][0] * loss for name, loss in losses.items())
                    if not torch.isfinite(total):
                        values = ", ".join(f"ℓ_{name} = {float(v.detach()):.4g}" for name, v in losses.items())
                        raise UnlearnBenchError(f"{'NaN' if torch.isnan(total) else 'infinite'} generator loss at step {step} ({values}); check D_e and the model, or lower inversion.lr")
                    optimizer.zero_grad(set_to_none=True)
                    total.backward()
                    optimizer.step()
                    show = progress and (step % every == 0 or step == s.steps - 1)
                    if on_step is not None or show:
                        record = {name: float(v.detach()) for name, v in losses.items()} | {"total": float(total.detach())}
                        if on_step is not None:
                            on_step(step, record)
                        if show:
                            print(f"inversion step {step + 1}/{s.steps}: " + ", ".join(f"{n} {v:.4g}" for n, v in record.items()), file=sys.stderr, flush=True)
    finally:
        for p, flag in flags.items():
            p.requires_grad_(flag)
    return g.eval()
