"""Where ADV's adversarial set D̄_f lands for each attack budget ε (seed 000 eq. 1, issue 16): the share of examples
that reach their target class, their mean L2 distance from x, and their mean cross-entropy to the target — the loss
L_UL trains on (eq. 3). An example deep in its target class (cross-entropy ≈ 0) gives L_UL almost no gradient.

    python -m benchmark.audits.attack_budget --arch narrow_resnet18 --recipe fashion_mnist_sgd_long \\
        --checkpoint leaderboard/tracks/checkpoints/fashion_mnist-narrow_resnet18-fashion_mnist_sgd_long-seed0.pt
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F
from jsonargparse import auto_cli
from torch import nn

from benchmark.models.pretraining import Pretrained
from benchmark.reports.tables import align
from benchmark.training import obtain_original
from datamodules.scenarios import RandomInstances
from methods.blocks.adversarial import PGD, adversarial_set


def attack_budget(model: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int, eps: float, attack: PGD = PGD(),
                  seed: int = 0) -> dict[str, float]:
    """D̄_f of (x, y) by `attack` at budget `eps` (targets and starts drawn from `seed`, as ADV draws them), measured
    by `model` in evaluation mode: `reached` (share classified as their target), `distance` (mean ‖x' − x‖₂) and
    `target_ce` (mean cross-entropy to the target)."""
    model.eval()
    examples, targets = adversarial_set(model, x, y, num_classes, replace(attack, eps=eps), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        logits = model(examples.to(next(model.parameters()).device)).cpu()
    return {"reached": (logits.argmax(1) == targets).float().mean().item(),
            "distance": (examples - x.repeat_interleave(attack.n_adv, 0)).flatten(1).norm(dim=1).mean().item(),
            "target_ce": F.cross_entropy(logits, targets).item()}


def main(arch: str = "narrow_resnet18", recipe: str | None = "fashion_mnist_sgd_long", checkpoint: str | None = None,
         dataset: str = "fashion_mnist", k: int = 16, seeds: list[int] = [0, 1, 2],  # noqa: B006 (jsonargparse shows them)
         eps: list[float] = [0.4, 1.0, 2.0, 4.0], threads: int | None = None) -> list[list[str]]:  # noqa: B006
    """Print `attack_budget` of the original (`arch`, `recipe`, `checkpoint`: as `Pretrained`) on the forget set of
    `RandomInstances(k, seed)` for each seed and budget, with seed 000's other PGD settings (N_adv 20, 100 steps of 0.1,
    from x).

    Args:
        arch, recipe, checkpoint: the original (`checkpoint`: a committed one; else the cache, pretrained on a miss).
        dataset: the dataset.
        k: forget-set size.
        seeds: forget-request seeds (also the seeds of the targets' draw).
        eps: the budgets ε to measure.
        threads: torch threads (default: torch's).
    """
    if threads:
        torch.set_num_threads(threads)
    header, rows = ["seed", "ε", "reached %", "mean L2", "mean CE to target"], []
    for seed in seeds:
        scenario = RandomInstances(k=k, seed=seed, dataset=dataset, num_workers=0)
        model = obtain_original(scenario, Pretrained(arch=arch, recipe=recipe, checkpoint=checkpoint), progress=False)
        images, labels = zip(*(item[:2] for item in scenario.splits["forget"]))
        x, y = torch.stack(images), torch.as_tensor([int(label) for label in labels])
        for budget in eps:
            measured = attack_budget(model, x, y, scenario.info.num_classes, budget, seed=seed)
            rows.append([str(seed), f"{budget:g}", f"{100 * measured['reached']:.2f}", f"{measured['distance']:.2f}", f"{measured['target_ce']:.3g}"])
    print(f"{arch} ({recipe or 'default recipe'}) on {dataset}, k = {k}: ADV's D̄_f by attack budget ε")
    print(align(header, rows))
    return rows


if __name__ == "__main__":
    auto_cli(main)
