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

`--numerics '[fp32, fast]'` adds a row per dataset with the fast settings on both paths: ours with
`--trainer.precision bf16-mixed` and the `ChannelsLast` callback, the bare loop in bf16 autocast with its model and
batches in channels_last (the hardware's practical limit, issue 21); the last column then gives that bare loop's speed
over the fp32 bare loop's.

    python -m benchmark.perf.train                       # digits and Fashion-MNIST, narrow_cnn_bn, batch 64
    python -m benchmark.perf.train --check true          # exit 1 when a ratio misses the target
    python -m benchmark.perf.train --device cuda --datasets '[fashion_mnist]' --arch cifar_resnet18 --recipe smoke \
        --batch_size 128 --numerics '[fp32, fast]' --repeats 3  # on a GPU (`scripts/gpu_check.sh`)

Measured on 2 CPU cores (2026-12-03, 2 threads, wall clock, 3 repeats): Fashion-MNIST 12.8 s bare vs 13.2 s ours
(0.97, met), digits 0.055 s vs 0.083 s (0.66, not met: `Trainer.fit`'s set-up and hooks, ~30 ms, on a 21-batch epoch).
Before methods skipped Lightning's `log` when nothing reads it (~1 ms a step): Fashion-MNIST 0.80, digits 0.68.
With `--numerics '[fp32, fast]' --threads 1 --clock cpu --repeats 3` (2026-12-04, beside a 2-thread suite): Fashion-MNIST
fp32 15.30 s bare vs 16.02 s ours (0.95, met), fast 10.60 s vs 11.47 s (0.92, met), the fast bare loop 1.44× the fp32
one's speed on this AVX-512 CPU; digits fp32 0.097 vs 0.106 s (0.91), fast 0.076 vs 0.101 s (0.76, not met: the same
per-fit overhead on a shorter epoch), fast bare 1.27×.
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

from benchmark.callbacks import ChannelsLast
from benchmark.metrics.evaluator import Evaluation
from benchmark.models.pretraining import Pretrained
from benchmark.perf.eval import CLOCKS, table
from benchmark.training import TRAINER_DEFAULTS, attach, fit
from datamodules.datasets.augment import AUGMENTATIONS
from datamodules.scenarios import RandomInstances
from methods import FineTune
from methods.base import make_optimizer

TARGET = 0.85


NUMERICS = {"fp32": {"precision": "32-true", "channels_last": False}, "fast": {"precision": "bf16-mixed", "channels_last": True}}
"""The settings both paths run in: fp32, or bf16 autocast with channels_last."""


ACCELERATORS = {"cpu": "cpu", "cuda": "gpu"}
"""Lightning's accelerator for each `--device`."""


def ours(scenario, pretrained: Pretrained, settings: dict, numerics: dict, device: str = "cpu"):
    """A callable that fits a freshly attached FineTune for one epoch (set-up outside the returned callable's work)."""
    def prepared():
        method = FineTune(**settings)
        attach(method, scenario, pretrained, Evaluation(mia=False), progress=False)
        trainer = pl.Trainer(**{**TRAINER_DEFAULTS, "accelerator": ACCELERATORS[device], "devices": 1, "enable_progress_bar": False, "max_epochs": 1,
                                "precision": numerics["precision"], "callbacks": [ChannelsLast()] if numerics["channels_last"] else []})
        return lambda: fit(method, scenario, trainer)
    return prepared


def bare(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, settings: dict, augment, numerics: dict, device: str = "cpu"):
    """A callable that trains a copy of `model` for one epoch over (x, y) in the plainest PyTorch, the tensors moved to
    `device` once beforehand."""
    memory_format = torch.channels_last if numerics["channels_last"] else torch.contiguous_format
    x, y = x.to(device), y.to(device)

    def prepared():
        net = copy.deepcopy(model).to(device).train().requires_grad_(True).to(memory_format=memory_format)
        optimizer = make_optimizer(settings["optimizer"], net.parameters())
        batch = settings["budget"]["batch_size"]

        def epoch():
            for index in torch.randperm(len(x), device=device).split(batch):
                xb, yb = x[index], y[index]
                xb = (augment(xb) if augment else xb).contiguous(memory_format=memory_format)
                with torch.autocast(device, dtype=torch.bfloat16, enabled=numerics["precision"] == "bf16-mixed"):
                    loss = F.cross_entropy(net(xb), yb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        return epoch
    return prepared


def timed(paths: dict, repeats: int, clock, device: str = "cpu") -> dict[str, list[float]]:
    """Each path's work timed `repeats` times after one warm-up round, the paths alternating (a slow spell hits them
    all); a path is a factory of the work, its set-up not timed. On a GPU the clock stops after the queued work ends."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    runs: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(repeats + 1):
        for name, factory in paths.items():
            work = factory()
            sync()
            start = clock()
            work()
            sync()
            runs[name].append(clock() - start)
    return {name: times[1:] for name, times in runs.items()}


def measure(dataset: str, arch: str, batch_size: int, repeats: int, clock, numerics: list[str], device: str = "cpu",
            recipe: str | None = None, resident: bool = True) -> list[list[str]]:
    scenario = RandomInstances(dataset=dataset, fraction=0.1, seed=0, resident=resident)
    scenario.setup()
    pretrained = Pretrained(arch=arch, recipe=recipe)
    settings = {"optimizer": {"class_path": "torch.optim.SGD", "init_args": {"lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4}},
                "budget": {"max_epochs": 1, "batch_size": batch_size}}
    probe = FineTune(**settings)
    attach(probe, scenario, pretrained, Evaluation(mia=False), progress=False)
    retain = probe.data["retain"]
    x, y = next(iter(torch.utils.data.DataLoader(retain, batch_size=len(retain), collate_fn=getattr(retain, "collate_fn", None))))[:2]
    augment = AUGMENTATIONS.get(scenario.info.train_augment) if scenario.info.train_augment else None
    paths = {}
    for name in numerics:
        paths |= {f"bare {name}": bare(probe.original, x, y, settings, augment, NUMERICS[name], device),
                  f"ours {name}": ours(scenario, pretrained, settings, NUMERICS[name], device)}
    runs = {path: statistics.median(times) for path, times in timed(paths, repeats, clock, device).items()}
    rows = []
    for name in numerics:
        b, o = runs[f"bare {name}"], runs[f"ours {name}"]
        limit = f"{runs['bare fp32'] / b:.2f}" if "bare fp32" in runs and name != "fp32" else ""
        rows.append([dataset, name, f"{len(x)}", f"{batch_size}", f"{b:.3f}", f"{o:.3f}", f"{b / o:.2f}", "met" if b / o >= TARGET else "NOT met", limit])
    return rows


def main(datasets: list[str] = ["digits", "fashion_mnist"], arch: str = "narrow_cnn_bn", batch_size: int = 64, repeats: int = 5,  # noqa: B006
         threads: int | None = 2, clock: Literal["wall", "cpu"] = "wall", numerics: list[Literal["fp32", "fast"]] = ["fp32"],  # noqa: B006
         check: bool = False, device: Literal["cpu", "cuda"] = "cpu", recipe: str | None = None, resident: bool = True) -> list[list[str]]:
    """One training epoch of FineTune over D_r against a bare PyTorch loop (see the module docstring).

    Args:
        datasets: registered dataset names, one row each.
        arch: the model.
        batch_size: the training batch size of both paths.
        repeats: timed rounds per path after one warm-up; medians are reported.
        threads: torch threads (None: torch's choice).
        clock: wall: elapsed time; cpu: this process's CPU time (with --threads 1 nearly immune to other load).
        numerics: the settings, a row each: fp32; fast: bf16 autocast and channels_last on both paths.
        check: exit with status 1 when a ratio misses the target.
        device: where both paths train (`cuda`: the first GPU; the bare loop's tensors are moved there once).
        recipe: the original's pretraining recipe (default: the dataset's; `smoke`, one epoch, where only speed matters).
        resident: our path's in-memory data on the device, moved once (the default); false: each batch copied from the
            host, as before issue 21 (on the CPU the two are the same).
    """
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda, but torch sees no GPU here")
    if threads:
        torch.set_num_threads(threads)
    rows = [["dataset", "numerics", "D_r images", "batch", "bare s", "ours s", "bare/ours", f"target ≥ {TARGET}", "bare fp32/bare"]]
    rows += [row for name in datasets for row in measure(name, arch, batch_size, repeats, CLOCKS[clock], numerics, device, recipe, resident)]
    where = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    print(f"torch {torch.__version__}, lightning {pl.__version__}, {torch.get_num_threads()} thread(s), clock {clock}, {arch}, device {where}, "
          f"data {'resident on the device' if resident else 'copied from the host per batch'}")
    print(table(rows))
    if check and any(r[-1] != "met" for r in rows[1:]):
        sys.exit(1)
    return rows


if __name__ == "__main__":
    auto_cli(main, as_positional=False)
