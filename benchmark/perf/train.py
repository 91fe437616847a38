"""Benchmark: throughput of our training path against a bare PyTorch loop over the same tensors (issue 21's CPU point:
training at ≥ 0.85× a bare loop with the same settings).

In one run, per dataset, each path warmed up once and then timed `--repeats` times, the paths alternating:

- **ours**: `Trainer.fit` of `FineTune` for one epoch over D_r of a random-10 % request (what `cli.py fit` runs: the
  scenario's loaders, the shared callbacks — cost, stop criterion, BatchNorm mode —, the optimizer the method's
  settings name, the dataset's training augmentation on the device); the method is built and attached, and the
  Trainer made, before the clock starts;
- **bare**: the same model (a copy of the same original), the same optimizer and settings, the same batch size, one
  epoch over D_r's tensors stacked in memory beforehand, shuffled by `randperm`, the same augmentation per batch:
  `loss = CE(model(aug(x)), y); loss.backward(); step()`.

The headline is bare time / ours time (our throughput as a share of the bare loop's; target ≥ 0.85). The time outside
the model's forward and backward is our path's own overhead; on a busy machine use `--threads 1 --clock cpu`.

    python -m benchmark.perf.train                       # digits and Fashion-MNIST, narrow_cnn_bn, batch 64
    python -m benchmark.perf.train --check true          # exit 1 when a ratio misses the target

Measured on 2 CPU cores (2026-12-03, 2 threads, wall clock, 3 repeats): Fashion-MNIST 12.8 s bare vs 13.2 s ours
(0.97, met), digits 0.055 s vs 0.083 s (0.66, not met: `Trainer.fit`'s set-up and hooks, ~30 ms, on a 21-batch epoch).
Before methods skipped Lightning's `log` when nothing reads it (~1 ms a step): Fashion-MNIST 0.80, digits 0.68.
"""

from __future__ import annotations

import copy
import statistics
import sys
from typing import Literal

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from jsonargparse import auto_cli

from benchmark.metrics.evaluator import Evaluation
from benchmark.models.pretraining import Pretrained
from benchmark.perf.eval import CLOCKS, table
from benchmark.training import TRAINER_DEFAULTS, attach, fit
from datamodules.datasets.augment import AUGMENTATIONS
from datamodules.scenarios import RandomInstances
from methods import FineTune
from methods.base import make_optimizer

TARGET = 0.85


def ours(scenario, pretrained: Pretrained, settings: dict):
    """A callable that fits a freshly attached FineTune for one epoch (set-up outside the returned callable's work)."""
    def prepared():
        method = FineTune(**settings)
        attach(method, scenario, pretrained, Evaluation(mia=False), progress=False)
        trainer = pl.Trainer(**{**TRAINER_DEFAULTS, "accelerator": "cpu", "devices": 1, "enable_progress_bar": False, "max_epochs": 1})
        return lambda: fit(method, scenario, trainer)
    return prepared


def bare(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, settings: dict, augment):
    """A callable that trains a copy of `model` for one epoch over (x, y) in the plainest PyTorch."""
    def prepared():
        net = copy.deepcopy(model).train().requires_grad_(True)
        optimizer = make_optimizer(settings["optimizer"], net.parameters())
        batch = settings["budget"]["batch_size"]

        def epoch():
            for index in torch.randperm(len(x)).split(batch):
                xb, yb = x[index], y[index]
                loss = F.cross_entropy(net(augment(xb) if augment else xb), yb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        return epoch
    return prepared


def timed(paths: dict, repeats: int, clock) -> dict[str, list[float]]:
    """Each path's work timed `repeats` times after one warm-up round, the paths alternating (a slow spell hits them
    all); a path is a factory of the work, its set-up not timed."""
    runs: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(repeats + 1):
        for name, factory in paths.items():
            work = factory()
            start = clock()
            work()
            runs[name].append(clock() - start)
    return {name: times[1:] for name, times in runs.items()}


def measure(dataset: str, arch: str, batch_size: int, repeats: int, clock) -> list[str]:
    scenario = RandomInstances(dataset=dataset, fraction=0.1, seed=0)
    scenario.setup()
    pretrained = Pretrained(arch=arch)
    settings = {"optimizer": {"class_path": "torch.optim.SGD", "init_args": {"lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4}},
                "budget": {"max_epochs": 1, "batch_size": batch_size}}
    probe = FineTune(**settings)
    attach(probe, scenario, pretrained, Evaluation(mia=False), progress=False)
    retain = probe.data["retain"]
    x, y = next(iter(torch.utils.data.DataLoader(retain, batch_size=len(retain), collate_fn=getattr(retain, "collate_fn", None))))[:2]
    augment = AUGMENTATIONS.get(scenario.info.train_augment) if scenario.info.train_augment else None
    runs = timed({"bare": bare(probe.original, x, y, settings, augment), "ours": ours(scenario, pretrained, settings)}, repeats, clock)
    b, o = statistics.median(runs["bare"]), statistics.median(runs["ours"])
    return [dataset, f"{len(x)}", f"{batch_size}", f"{b:.3f}", f"{o:.3f}", f"{b / o:.2f}", "met" if b / o >= TARGET else "NOT met"]


def main(datasets: list[str] = ["digits", "fashion_mnist"], arch: str = "narrow_cnn_bn", batch_size: int = 64, repeats: int = 5,  # noqa: B006
         threads: int | None = 2, clock: Literal["wall", "cpu"] = "wall", check: bool = False) -> list[list[str]]:
    """One training epoch of FineTune over D_r against a bare PyTorch loop (see the module docstring).

    Args:
        datasets: registered dataset names, one row each.
        arch: the model.
        batch_size: the training batch size of both paths.
        repeats: timed rounds per path after one warm-up; medians are reported.
        threads: torch threads (None: torch's choice).
        clock: wall: elapsed time; cpu: this process's CPU time (with --threads 1 nearly immune to other load).
        check: exit with status 1 when a ratio misses the target.
    """
    if threads:
        torch.set_num_threads(threads)
    rows = [["dataset", "D_r images", "batch", "bare s", "ours s", "bare/ours", f"target ≥ {TARGET}"]]
    rows += [measure(name, arch, batch_size, repeats, CLOCKS[clock]) for name in datasets]
    print(f"torch {torch.__version__}, lightning {pl.__version__}, {torch.get_num_threads()} thread(s), clock {clock}, {arch}, device cpu")
    print(table(rows))
    if check and any(r[-1] != "met" for r in rows[1:]):
        sys.exit(1)
    return rows


if __name__ == "__main__":
    auto_cli(main, as_positional=False)
