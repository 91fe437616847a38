"""Shared mechanics of seed 000's ADV family: targeted L2-PGD (eq. 1), the adversarial set D̄_f and L_UL (eqs. 3-4).

Readings of what the papers leave open (the authors' code is csm9493/L2UL):
- PGD starts at x (`random_start=False`): eq. 1 and seed 001 Algorithm 1 mention no random start. The
  authors' code (advertorch `L2PGDAttack(rand_init=True)`) starts at a uniform point of [0, 1]^d pulled
  to within ε of x (`random_start=True`).
- Each step moves by `step_size` along the L2-normalised gradient of L_CE towards the target, clamps to
  [0, 1] pixel space (models normalise inside), then projects onto the ε-ball (as advertorch); the last
  iterate is returned.
- A target ȳ ≠ y is drawn uniformly per adversarial example (`targets="per_example"`, the authors' code);
  seed 001 Algorithm 1 draws one per image and reuses it for its N_adv examples (`targets="per_image"`).
- All N_adv × N_f examples are attacked together in batches of `batch_size` (bounded by memory), not
  N_adv rounds over D_f as in the authors' code; each example's attack is independent, so this is the
  same computation.
- `cached_adversarial_set` makes D̄_f once per (original weights, forget set, settings, seed): ADV and
  ADV+IMP of the same run attack once and train on the same D̄_f.
"""

from __future__ import annotations

import dataclasses
import io
import json
import time
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from jsonargparse.typing import PositiveFloat, PositiveInt
from torch import nn

from benchmark.core.hashing import state_dict_sha256, tensors_sha256
from benchmark.core.paths import atomic_write_bytes, home
from benchmark.core.validation import check_fields
from datamodules.access import DataView

TargetDraw = Literal["per_example", "per_image"]

@dataclass(frozen=True)
class PGD:
    """The adversarial set D̄_f's settings (seed 000 eq. 1, seed 001 Algorithm 1), one name each.

    Args:
        n_adv: adversarial examples per forget image (N_adv).
        eps: L2 budget ε of the attack, in [0, 1] pixel units.
        steps: PGD iterations.
        step_size: PGD step size (L2 length of each step).
        random_start: PGD from x (False, the paper's reading) or from a random point of [0, 1]^d within ε of x
            (True, the authors' code).
        targets: draw the target ȳ ≠ y per adversarial example (`per_example`, the authors' code) or once per
            forget image (`per_image`, seed 001 Algorithm 1).
        batch_size: examples attacked at once (bounded by memory). 128 was the fastest on a 2-core CPU for both
            `narrow_cnn` and `small_cnn` (`python -m benchmark.perf.pgd`); on a GPU, larger is faster.
    """

    n_adv: PositiveInt = 20
    eps: PositiveFloat = 0.4
    steps: PositiveInt = 100
    step_size: PositiveFloat = 0.1
    random_start: bool = False
    targets: TargetDraw = "per_example"
    batch_size: PositiveInt = 128

    def __post_init__(self) -> None:
        check_fields(self, "attack")  # one line naming the setting, the value and its range


def other_labels(labels: torch.Tensor, num_classes: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A label drawn uniformly among the `num_classes - 1` classes other than each entry of `labels`."""
    shift = torch.randint(1, num_classes, labels.shape, generator=generator)
    return (labels.cpu() + shift) % num_classes


def _flat_norm(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(dim=1).view(-1, *([1] * (t.dim() - 1)))


def project_l2(delta: torch.Tensor, eps: float) -> torch.Tensor:
    """Each row of `delta` scaled onto the L2 ball of radius ε when outside it."""
    return delta * (eps / _flat_norm(delta).clamp_min(1e-12)).clamp(max=1.0)


def targeted_l2_pgd(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    eps: float = 0.4,
    steps: int = 100,
    step_size: float = 0.1,
    random_start: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """x' ≈ argmin_{‖z − x‖₂ ≤ ε, z ∈ [0, 1]} L_CE(g(z), ȳ) by L2-PGD (eq. 1; Madry et al. 2017), rows independent.

    `random_start=False` (paper) starts at x; `True` (authors' code) at a uniform point of [0, 1]^d moved to
    within ε of x. The model's parameters get no gradients; its mode is left as it is (pass it in eval mode).
    """
    if random_start:
        delta = project_l2(torch.rand(x.shape, generator=generator).to(x) - x, eps)
        delta = (x + delta).clamp(0, 1) - x
    else:
        delta = torch.zeros_like(x)
    with torch.enable_grad():
        for _ in range(steps):
            delta.requires_grad_(True)
            loss = F.cross_entropy(model(x + delta), target, reduction="sum")
            (grad,) = torch.autograd.grad(loss, delta)
            step = grad / _flat_norm(grad).clamp_min(1e-12)
            delta = (x + delta.detach() - step_size * step).clamp(0, 1) - x
            delta = project_l2(delta, eps)
    return (x + delta).clamp(0, 1).detach()


def adversarial_set(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    attack: PGD = PGD(),
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """D̄_f (seed 001 Algorithm 1): `attack.n_adv` targeted L2-PGD examples per image of (x, y), targets ȳ ≠ y.

    Returns (x', ȳ) on the CPU (D̄_f can outgrow accelerator memory), the N_adv examples of image i at
    rows i·N_adv … (i + 1)·N_adv − 1.
    """
    n_adv, batch_size = attack.n_adv, attack.batch_size
    device = next(model.parameters()).device
    if attack.targets == "per_image":
        target = other_labels(y, num_classes, generator).repeat_interleave(n_adv)
    else:
        target = other_labels(y.repeat_interleave(n_adv), num_classes, generator)
    source = torch.arange(len(target)) // n_adv
    examples = [
        targeted_l2_pgd(model, x[source[i : i + batch_size]].to(device), target[i : i + batch_size].to(device), eps=attack.eps,
                        steps=attack.steps, step_size=attack.step_size, random_start=attack.random_start, generator=generator).cpu()
        for i in range(0, len(target), batch_size)
    ]
    return torch.cat(examples), target


def distinct_examples(examples: tuple[torch.Tensor, torch.Tensor]) -> int:
    """How many (x', ȳ) pairs of D̄_f differ. PGD from x (`random_start=False`) is deterministic, so an image
    attacked twice towards the same target gives the same example twice: with N_adv = 20 and 9 other
    classes, N̄_f = N_f × N_adv (seed 001 §3) holds only with random starts (the authors' code)."""
    x, y = examples
    return len(torch.unique(torch.cat([x.flatten(1), y[:, None].to(x.dtype)], dim=1), dim=0))


def cached_adversarial_set(model: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int, attack: PGD) -> tuple[tuple[torch.Tensor, torch.Tensor], float]:
    """`adversarial_set(model, x, y, num_classes, attack)`, made once and cached under `$UNLEARNBENCH_HOME/adversarial/`.

    Its targets and random starts come from a generator seeded by one draw of torch's global RNG, so a run consumes
    the same random numbers whether the set is read or made (its later shuffling does not depend on the cache). The
    key is the model's weights, x, y, the settings and that seed. Returns the set and the seconds it took to make
    when it was read from the cache (0.0 when made now), which the run's cost counts as spent.
    """
    seed = int(torch.randint(2**62, (1,)))
    key = tensors_sha256({"x": x, "y": y}, extra=state_dict_sha256(model) + json.dumps({**dataclasses.asdict(attack), "num_classes": num_classes, "seed": seed}, sort_keys=True))
    path = home() / "adversarial" / f"{key[:32]}.pt"
    if path.exists():
        saved = torch.load(path, weights_only=True)
        return (saved["x"], saved["y"]), saved["seconds"]
    start = time.perf_counter()
    examples = adversarial_set(model, x, y, num_classes, attack, generator=torch.Generator().manual_seed(seed))
    seconds = time.perf_counter() - start
    buffer = io.BytesIO()
    torch.save({"x": examples[0], "y": examples[1], "seconds": seconds}, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return examples, 0.0


def split_tensors(data: DataView, name: str, batch_size: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """All (x, y) of split `name` as two tensors, in the split's order."""
    xs, ys = zip(*((x, y) for x, y, *_ in data.loader(name, batch_size, shuffle=False)))
    return torch.cat(xs), torch.cat(ys)
