"""Seed 004's filtration (Yoon et al., *Few-shot Unlearning by Model Inversion*, §4.2, Fig. 3): the samples x̃ of
the inverted generator (§4.1) become D̃ = {(x̃, f_o(x̃))}, soft-labelled, when f_o is confident and stable under the
augmentations Φ, and D̃ splits into the D_e-like D̃_e = {κ(x, D_e) < t_f} and D̃_r = D̃ \\ D̃_e, κ the MMD between
{x} and D_e in f_o's penultimate features and t_f the Kneedle knee (Satopaa et al. 2011) of the sorted κ.

Readings of what the paper leaves open (the authors' code is JinhwanNam/Few-shot-Unlearning,
`Unlearning/cgenerate.py`):
- H is the entropy of f_o's softmax in nats (natural log, as the authors' code); both tests are strict (<) as
  printed (the code rejects H > t_ent, so keeps H = t_ent).
- κ is the biased (V-statistic) squared MMD with one RBF kernel whose bandwidth is, by default, the median
  heuristic over D_e ∪ D̃; the authors' code sums three kernels of fixed σ² ∈ {10, 512, 2048}, which
  `bandwidth=(10 ** 0.5, 512 ** 0.5, 2048 ** 0.5)` reproduces.
- κ and t_f are computed over D̃ only (after the entropy filter), as eq. (3) partitions D̃; the generation
  conditions play no part in the split (§4.2: "we cannot partition D̃ ... relying on the labels used in the
  generation"); they only give `Filtration.plus_share`.
- t_f is the κ of the knee sample itself, so with eq. (3)'s strict < the knee goes to D̃_r (the authors' code:
  `distances < distances[knee]`). Their code also retries larger Kneedle sensitivities S until t_f exceeds a
  hand-set minimum, clamps t_f to [minimum, maximum] and keeps in D̃_e only samples predicted as D_e's label;
  none of that is in the paper, and none is done here.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from kneed import KneeLocator
from torch import nn

from benchmark.core.errors import UnlearnBenchError
from benchmark.models import Classifier

Transform = Callable[[torch.Tensor], torch.Tensor]
Curve = Literal["concave", "convex"]
MEDIAN_ROWS = 2048
"""At most this many feature rows (all of D_e, then evenly spaced candidates) enter the median heuristic."""


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """H(p) = −Σ_c p_c log p_c of each row of `probs` (the last dimension), in nats (natural log); 0 log 0 = 0."""
    return torch.special.entr(probs).sum(-1)


@contextlib.contextmanager
def _evaluating(model: nn.Module) -> Iterator[None]:
    """`model` in evaluation mode without autograd; every module's training flag restored afterwards."""
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for module, training in modes.items():
            module.train(training)


def _confident(model: nn.Module, x: torch.Tensor, probs: torch.Tensor, transforms: Sequence[Transform], t_ent: float) -> torch.Tensor:
    """`confident` given f_o's softmax `probs` of `x`."""
    keep = entropy(probs) < t_ent
    label = probs.argmax(-1)
    for phi in transforms:
        augmented = F.softmax(model(phi(x)), dim=-1)
        keep &= (entropy(augmented) < t_ent) & (augmented.argmax(-1) == label)
    return keep


def confident(model: nn.Module, x: torch.Tensor, transforms: Sequence[Transform], t_ent: float) -> torch.Tensor:
    """§4.2's filter for D̃: True for each row x̃ of `x` with H(f_o(x̃)) < t_ent and, for every φ ∈ Φ = `transforms`
    (batch → batch, possibly random), H(f_o(φ(x̃))) < t_ent and argmax f_o(φ(x̃)) = argmax f_o(x̃).

    One forward of the whole batch, then one per φ; `model` (f_o, logits out) in evaluation mode without autograd,
    its training flags restored and its state untouched."""
    with _evaluating(model):
        return _confident(model, x, F.softmax(model(x), dim=-1), transforms, t_ent)


def _sigmas(bandwidth: float | Sequence[float], like: torch.Tensor) -> torch.Tensor:
    sigmas = torch.as_tensor(bandwidth, dtype=like.dtype, device=like.device).flatten()
    if len(sigmas) == 0 or not bool((sigmas > 0).all()) or not bool(torch.isfinite(sigmas).all()):
        raise UnlearnBenchError(f"bandwidth = {bandwidth!r} is not allowed; one number > 0 or a sequence of them (RBF σ)")
    return sigmas


def median_bandwidth(features_x: torch.Tensor, features_e: torch.Tensor) -> torch.Tensor:
    """The median heuristic (Gretton et al. 2012): σ = the median Euclidean distance between two distinct rows of
    D_e ∪ candidates (all of D_e and evenly spaced candidates, `MEDIAN_ROWS` rows at most), in float64."""
    fx, fe = features_x.flatten(1).double(), features_e.flatten(1).double()
    room = max(MEDIAN_ROWS - len(fe), 0)
    if len(fx) > room:
        fx = fx[torch.linspace(0, len(fx) - 1, room, device=fx.device).round().long()]
    pooled = torch.cat([fe, fx])
    if len(pooled) < 2:
        raise UnlearnBenchError("the median heuristic needs two feature rows at least; pass a bandwidth")
    # the distances of the distinct pairs from one Gram-matrix product (within 1e-14 of `torch.pdist`, several times
    # cheaper at 2,048 rows: `benchmark.perf.few_shot`)
    distances = torch.cdist(pooled, pooled, compute_mode="use_mm_for_euclid_dist")
    i, j = torch.triu_indices(len(pooled), len(pooled), 1, device=pooled.device)
    return torch.quantile(distances[i, j], 0.5).clamp_min(1e-12)  # a zero median (all rows equal) kept finite


def mmd_to_set(features_x: torch.Tensor, features_e: torch.Tensor, bandwidth: float | Sequence[float] | None = None) -> torch.Tensor:
    """κ(x, D_e) of eq. (3) for each row x of `features_x` (f_o's penultimate features), in float64: the biased
    (V-statistic) squared MMD between the singleton {x} and D_e = the m rows e_j of `features_e`,

        κ(x, D_e) = k(x, x) − (2/m) Σ_j k(x, e_j) + (1/m²) Σ_{i,j} k(e_i, e_j),   k(a, b) = Σ_σ exp(−‖a − b‖² / (2σ²)),

    k(x, x) = the number of bandwidths. `bandwidth`: σ, or several σ whose kernels are summed; None: one σ by the
    median heuristic over D_e ∪ the candidates (`median_bandwidth`)."""
    fx, fe = features_x.flatten(1).double(), features_e.flatten(1).double()
    if len(fe) == 0:
        raise UnlearnBenchError("κ(x, D_e) needs at least one example of D_e; none given")
    sigmas = median_bandwidth(fx, fe).view(1) if bandwidth is None else _sigmas(bandwidth, fx)

    def kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        squared = torch.cdist(a, b, compute_mode="use_mm_for_euclid_dist").pow(2)  # float64: within 1e-14 of the direct sums
        return torch.exp(-squared.unsqueeze(-1) / (2 * sigmas**2)).sum(-1)

    return len(sigmas) - 2 * kernel(fx, fe).mean(1) + kernel(fe, fe).mean()


def _knee_index(values: np.ndarray, curve: Curve) -> int | None:
    """Kneedle's knee of the ascending `values` against their rank, as an index; None without a knee."""
    if len(values) < 3 or values[0] == values[-1]:
        return None
    located = KneeLocator(np.arange(len(values)), values, curve=curve, direction="increasing", online=True)
    if not located.all_knees:
        return None
    heights = [located.y_difference[np.flatnonzero(located.x_difference == knee)[0]] for knee in located.all_norm_knees]
    return int(located.all_knees[int(np.argmax(heights))])


def knee_threshold(kappa: torch.Tensor | np.ndarray | Sequence[float], *, fallback_quantile: float | None = None,
                   curve: Curve = "concave") -> float | None:
    """t_f of eq. (3) by knee point detection (§4.2, Fig. 3b): Kneedle (the `kneed` package) on κ sorted
    ascending against its rank; t_f is the κ of the knee sample, so κ < t_f keeps the samples before the knee.

    `concave` (the authors' code, `KneeLocator(curve="concave", direction="increasing")`): an RBF kernel is at
    most 1, so κ ≤ 1 + mean k(e_i, e_j) and the samples far from D_e pile up under that ceiling; sorted κ climbs
    steeply out of the few D_e-like samples and flattens, a concave knee where the flat part begins. `convex`
    finds the elbow of a curve that is flat and then rises steeply. Of all knees Kneedle confirms (kneed's
    `online=True`), the one farthest from the chord (the largest difference-curve value) is taken: kneed's default
    returns the first, on sorted κ often a spurious knee among the lowest few values.

    None when there is no knee (fewer than 3 values, all equal, or a straight line); with `fallback_quantile`
    that quantile of κ instead, flagged by a `UserWarning`."""
    values = np.sort(np.asarray(torch.as_tensor(kappa).detach().cpu().double()).ravel())
    knee = _knee_index(values, curve)
    if knee is not None:
        return float(values[knee])
    if fallback_quantile is None or len(values) == 0:
        return None
    t_f = float(np.quantile(values, fallback_quantile))
    warnings.warn(f"no knee in {len(values)} sorted κ; t_f = their {fallback_quantile:g} quantile, {t_f:.4g}", stacklevel=2)
    return t_f


@dataclass(frozen=True)
class Filtration:
    """§4.2's result: D̃ and its split into D̃_e and D̃_r.

    Attributes:
        kept: [N] bool over the generated samples, True for those in D̃ (`confident`).
        x: D̃'s samples, the kept rows of the generated x in order, [|D̃|, ...].
        soft_labels: f_o's softmax of each row of `x`, [|D̃|, K] (D̃'s labels f_o(x̃)).
        kappa: κ(x, D_e) of each row of `x` (float64).
        t_f: the threshold of eq. (3); None when no knee was found and none was given.
        knee_found: whether t_f is Kneedle's knee (False when given by hand or a fallback quantile).
        erase: [|D̃|] bool, D̃_e = {κ < t_f} (all False without t_f).
        retain: [|D̃|] bool, D̃_r = D̃ \\ D̃_e.
        n_generated: N.
        n_kept: |D̃|.
        n_erase: |D̃_e|.
        plus_share: the share of D̃_e generated with the condition y⁺ (§4.1); None without conditions or D̃_e.
        issues: one line for each condition that `filtrate(strict=True)` raises (empty D̃, no knee, empty D̃_e).
    """

    kept: torch.Tensor
    x: torch.Tensor
    soft_labels: torch.Tensor
    kappa: torch.Tensor
    t_f: float | None
    knee_found: bool
    erase: torch.Tensor
    retain: torch.Tensor
    n_generated: int
    n_kept: int
    n_erase: int
    plus_share: float | None
    issues: tuple[str, ...]


def filtrate(model: Classifier, x: torch.Tensor, conditions: torch.Tensor | None, d_e: torch.Tensor, *,
             transforms: Sequence[Transform], t_ent: float, t_f: float | None = None,
             bandwidth: float | Sequence[float] | None = None, strict: bool = True,
             fallback_quantile: float | None = None) -> Filtration:
    """§4.2 on the generated samples `x` (pixels in [0, 1]) for the original classifier f_o = `model`.

    D̃ = the rows `confident` keeps, soft-labelled by f_o's softmax; κ = `mmd_to_set` between f_o's penultimate
    features (`Classifier.features`) of each row of D̃ and of `d_e` (D_e's images); D̃_e = {κ < t_f}, t_f given,
    else `knee_threshold` (concave), else the `fallback_quantile` of κ when given. `conditions`: the generator's
    condition of each row of `x`, y⁺ being index K = f_o's number of classes (as `ConditionalGenerator`), or a
    bool mask of the y⁺ rows; None when unknown. One forward of `x` gives both the features and the logits, then
    one per φ ∈ `transforms` and one of D_e; `model` as in `confident`.

    `strict=True` (single runs): an empty D̃, no knee (without a fallback) or an empty D̃_e raises a one-line
    UnlearnBenchError with the counts and a hint; `strict=False` (suites): the result, those lines in `issues`."""
    if not isinstance(model, Classifier):
        raise UnlearnBenchError(f"filtration needs a Classifier (f_o's penultimate features); got {type(model).__name__}")
    if not t_ent > 0:
        raise UnlearnBenchError(f"t_ent = {t_ent!r} is not allowed; a number > 0 (nats)")
    if fallback_quantile is not None and not 0 < fallback_quantile < 1:
        raise UnlearnBenchError(f"fallback_quantile = {fallback_quantile!r} is not allowed; a number > 0 and < 1")
    if len(d_e) == 0:
        raise UnlearnBenchError("filtration needs at least one example of D_e; none given")
    if conditions is not None and len(conditions) != len(x):
        raise UnlearnBenchError(f"{len(conditions)} conditions for {len(x)} generated samples; one each")
    parameter = next(model.parameters())
    x = x.to(device=parameter.device, dtype=parameter.dtype)
    with _evaluating(model):
        features = model.features(x)
        probs = F.softmax(model.head(features), dim=-1)
        kept = _confident(model, x, probs, transforms, t_ent)
        features_e = model.features(d_e.to(device=parameter.device, dtype=parameter.dtype))
    issues: list[str] = []

    def flag(line: str) -> None:
        if strict:
            raise UnlearnBenchError(line)
        issues.append(line)

    n, n_kept = len(x), int(kept.sum())
    kappa = mmd_to_set(features[kept], features_e, bandwidth) if n_kept else features.new_zeros(0, dtype=torch.float64)
    span = f"κ from {kappa.min().item():.4g} to {kappa.max().item():.4g}" if n_kept else ""
    knee_found = False
    if n_kept == 0:
        flag(f"0 of {n} generated samples pass the entropy filter t_ent={t_ent:g} (H < t_ent and the same argmax "
             f"under each of the {len(transforms)} augmentations, seed 004 §4.2); raise t_ent or generate more")
    elif t_f is None:
        t_f = knee_threshold(kappa)
        knee_found = t_f is not None
        if t_f is None and fallback_quantile is not None:
            t_f = float(torch.quantile(kappa, fallback_quantile))
        elif t_f is None:
            flag(f"no knee in the {n_kept} sorted κ of D̃ ({span}; Kneedle, seed 004 §4.2); "
                 f"give t_f by hand or a fallback_quantile")
    erase = kappa < t_f if t_f is not None else torch.zeros_like(kappa, dtype=torch.bool)
    n_erase = int(erase.sum())
    if n_kept and t_f is not None and n_erase == 0:
        flag(f"0 of {n_kept} samples of D̃ have κ < t_f={t_f:.4g} ({span}, seed 004 eq. 3); "
             f"raise t_f (by hand) or give more examples of D_e")
    plus_share = None
    if conditions is not None and n_erase:
        conditions = conditions.to(kept.device)
        plus = conditions if conditions.dtype == torch.bool else conditions == probs.shape[1]
        plus_share = plus[kept][erase].double().mean().item()
    return Filtration(kept=kept, x=x[kept], soft_labels=probs[kept], kappa=kappa, t_f=t_f, knee_found=knee_found,
                      erase=erase, retain=~erase, n_generated=n, n_kept=n_kept, n_erase=n_erase,
                      plus_share=plus_share, issues=tuple(issues))
