"""Benchmark: UNSIR's three stages (seed 002 §VI-C, Fig. 6) against bare PyTorch loops on the same model and tensors.

Measured in one run, on the cached original of `--arch` and one `WholeClasses` request:

- noise: eq. 1's optimisation (`UNSIR.make_noise`, `noise_steps` steps at batch `noise_batch`) in noise images per
  second, against a bare loop of forward + backward to the input and an Adam step on it (the same work without our
  code around it); target ≥ 0.7 of it;
- impair and repair: `UNSIR`'s epochs under a Lightning `Trainer` (`cost/impair_seconds`, `cost/repair_seconds`)
  against a bare loop of the same optimizer steps over the same tensors in the same batches; target ≥ 0.8;
- the speed-up over Retrain (the recipe's epochs on D_r, trained here unless cached): Retrain's seconds over UNSIR's
  (`cost/seconds`), against the ratio of the images each passes through the model; target ≥ half that ratio.

    python -m benchmark.perf.unsir --dataset fashion_mnist --arch narrow_cnn_bn --check true
"""

from __future__ import annotations

import copy
import os
import statistics
import sys
import time

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from jsonargparse import auto_cli

from benchmark.experiment import runner
from benchmark.metrics.evaluator import Evaluation
from benchmark.models.pretraining import RECIPES, Pretrained
from benchmark.training import TRAINER_DEFAULTS, attach, fit
from datamodules.scenarios import WholeClasses
from methods.base import make_optimizer
from methods.retrain import Retrain
from methods.unsir import UNSIR

TARGETS = {"noise": 0.7, "impair/repair": 0.8, "speed-up over Retrain": 0.5}


def bare_noise(model: torch.nn.Module, shape: tuple[int, ...], c: int, steps: int, lam: float, spec: dict) -> float:
    """Seconds of `steps` bare eq.-1 steps (forward, backward to the noise, optimizer step) on a frozen model."""
    noise = torch.randn(shape).requires_grad_(True)
    target = torch.full((shape[0],), c)
    optimizer = make_optimizer(spec, [noise])
    start = time.perf_counter()
    for _ in range(steps):
        loss = -F.cross_entropy(model.head(model.backbone(noise)), target) + lam * noise.flatten(1).pow(2).sum(1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def bare_phases(method: UNSIR, original: torch.nn.Module, x_impair, y_impair, x_repair, y_repair) -> float:
    """Seconds of the same impair / repair epochs as a bare loop: same model, optimizer, batches and steps."""
    model = copy.deepcopy(original).train().requires_grad_(True)
    optimizer = make_optimizer(method.optimizer_spec, model.parameters())
    batch, seconds = method.batch_size(), 0.0
    for phase in method.schedule:
        x, y = (x_impair, y_impair) if phase == "I" else (x_repair, y_repair)
        optimizer.state.clear()
        for group in optimizer.param_groups:
            group["lr"] = method.impair_lr if phase == "I" else method.repair_lr
        start = time.perf_counter()
        order = torch.randperm(len(y))
        for i in range(0, len(y), batch):
            rows = order[i : i + batch]
            loss = F.cross_entropy(model(x[rows]), y[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        seconds += time.perf_counter() - start
    return seconds


def main(dataset: str = "digits", arch: str = "narrow_cnn_bn", classes: list[int] = [0], retain_per_class: int = 100,  # noqa: B006
         recipe: str | None = None, repeats: int = 3, threads: int | None = None, check: bool = False) -> dict[str, float]:
    """UNSIR's noise, impair / repair and total cost against bare loops and Retrain.

    Args:
        dataset: registered dataset name.
        arch: the original's architecture.
        classes: the forgotten classes.
        retain_per_class: images per retain class in D_r_sub.
        recipe: the original's (and Retrain's) pretraining recipe (default: the dataset's).
        repeats: timed rounds of the noise and the phases; medians are reported.
        threads: torch threads (default: torch's choice).
        check: exit with status 1 when a ratio is under its target.
    """
    if threads:
        torch.set_num_threads(threads)
    scenario = WholeClasses(classes=classes, retain_per_class=retain_per_class, dataset=dataset)
    pretrained = Pretrained(arch=arch, recipe=recipe)
    print(f"{dataset}, {arch}, classes {classes}, D_r_sub {retain_per_class} per class, {torch.get_num_threads()} threads, "
          f"device cpu, torch {torch.__version__}, lightning {pl.__version__}, load average {os.getloadavg()[0]:.2f}")
    trainer_kwargs = {**TRAINER_DEFAULTS, "accelerator": "cpu", "devices": 1, "enable_progress_bar": False}

    def unsir_run() -> UNSIR:
        method = UNSIR()
        attach(method, scenario, pretrained, Evaluation(mia=False), progress=False)
        pl.seed_everything(0, verbose=False)
        fit(method, scenario, pl.Trainer(max_epochs=1, **trainer_kwargs))
        return method

    runs = [unsir_run() for _ in range(repeats)]
    method = runs[-1]
    original = method.original
    shape = (method.noise_batch, scenario.info.channels, scenario.info.image_size, scenario.info.image_size)
    images = method.noise_batch * method.noise_steps * len(classes)
    ours_noise = statistics.median(r.cost["cost/noise_seconds"] for r in runs)
    bare = statistics.median(sum(bare_noise(original, shape, c, method.noise_steps, method.noise_lambda, method.noise_optimizer_spec)
                                 for c in classes) for _ in range(repeats))
    x_r, y_r = (torch.cat(t) for t in zip(*((x, y) for x, y in method.data.loader("retain", 1024, shuffle=False))))
    x_n, y_n = method.noise.tensors
    x_i, y_i = torch.cat([x_r, x_n]), torch.cat([y_r, y_n])
    ours_phases = statistics.median(r.cost["cost/impair_seconds"] + r.cost["cost/repair_seconds"] for r in runs)
    bare_ph = statistics.median(bare_phases(method, original, x_i, y_i, x_r, y_r) for _ in range(repeats))

    retrain = Retrain()
    attach(retrain, scenario, pretrained, Evaluation(mia=False), progress=False)
    fit(retrain, scenario, pl.Trainer(max_epochs=1, **trainer_kwargs))
    retrain_seconds = retrain.cost["cost/seconds"]
    unsir_seconds = statistics.median(r.cost["cost/seconds"] for r in runs)
    epochs = RECIPES.get(pretrained.recipe_name(dataset)).epochs
    retrain_images = epochs * len(scenario.splits["retain"])
    unsir_images = images + len(y_i) + len(y_r) * (method.schedule.count("R"))
    ratios = {"noise": bare / ours_noise, "impair/repair": bare_ph / ours_phases,
              "speed-up over Retrain": (retrain_seconds / unsir_seconds) / (retrain_images / unsir_images)}
    print(f"noise: ours {images / ours_noise:9.0f} images/s, bare loop {images / bare:9.0f} images/s → {ratios['noise']:.3f} (target ≥ {TARGETS['noise']})")
    print(f"impair + repair: ours {ours_phases:.3f} s, bare loop {bare_ph:.3f} s → {ratios['impair/repair']:.3f} (target ≥ {TARGETS['impair/repair']})")
    print(f"Retrain {retrain_seconds:.1f} s{' (cached: the run that filled the cache)' if retrain.cost.get('cost/cached') else ''}, "
          f"UNSIR {unsir_seconds:.2f} s: {retrain_seconds / unsir_seconds:.1f}× faster; images through the model {retrain_images} vs "
          f"{unsir_images}: {retrain_images / unsir_images:.1f}× → {ratios['speed-up over Retrain']:.3f} of it (target ≥ {TARGETS['speed-up over Retrain']})")
    if check and any(ratios[name] < target for name, target in TARGETS.items()):
        sys.exit(1)
    return ratios


if __name__ == "__main__":
    auto_cli(main, as_positional=False)
