"""Benchmark: U-LiRA's shadow models trained in one batch vs one after another (issue 5: ≥ 2×).

Both paths are `benchmark.batched_training.train_models` on the same data, recipe and seeds:
`batched=True` (parameters stacked, `torch.func.vmap` forward, one backward, one optimizer over the stacked
tensors) and `batched=False` (a plain PyTorch loop, model after model). Each is timed `--repeats`
times, alternating, for `--models` models over `--epochs` epochs of the dataset's recipe; the
headline is the ratio of the median throughputs (model-epochs per second), shown beside the ratio of
the fastest runs. The load average is printed: on a shared machine run it when nothing else does, or
with `--clock cpu` (the process's CPU time).

It also prints how far batching *could* go on this machine, measured in the same run: the training
FLOPs of one model-epoch (forward and backward, `torch.utils.flop_counter.FlopCounterMode`, which
counts convolutions and matrix products only), the machine's rate on a large matrix product (the
fastest dense kernel it has), and so the speed-up a batched path would reach if it ran every counted
FLOP at that rate and did nothing else. A tighter bound comes from the profiler
(`torch.profiler`, one more batched run): the time the batched path spends inside its convolution
kernels alone, which batching cannot shrink further unless the kernels themselves get faster. When
the one-after-another loop already runs near those rates (compute-bound, as small convolutional nets
on a few CPU cores do), no batching can reach 2×; on a GPU the loop is bound by kernel launches
instead, and batching pays.

    python -m benchmark.perf.shadow_training                    # digits, 16 models, small_cnn
    python -m benchmark.perf.shadow_training --models 33 --threads 1
    python -m benchmark.perf.shadow_training --device cuda      # on a GPU machine (no profile there)
"""

from __future__ import annotations

import math
import os
import statistics
import time
from typing import Literal

import torch
import torch.nn.functional as F
from jsonargparse import auto_cli
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from benchmark.audits.batched_training import train_models
from benchmark.models.pretraining import RECIPES, build_model
from datamodules.datasets import load_dataset

TARGET = 2.0
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously; a clock read before it finishes lies)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_flops_per_second(device: torch.device, size: int = 2048, repeats: int = 5) -> float:
    """The device's rate on a dense `size`×`size` float32 matrix product (fastest of `repeats`)."""
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    a @ b
    best = math.inf
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        a @ b
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def training_flops_per_epoch(arch: str, data) -> int:
    """FLOPs (convolutions and matrix products, forward and backward) of one training epoch of one `arch` model."""
    model = build_model(arch, data.info, 0)
    with FlopCounterMode(display=False) as counter:  # the count does not depend on the pixels' values or scale
        F.cross_entropy(model(data.train.images[:1].float()), data.train.targets[:1]).backward()
    return counter.get_total_flops() * len(data.train)


def operator_seconds(train) -> dict[str, float]:
    """Self CPU seconds of every operator `train()` runs (torch.profiler), largest first."""
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        train()
    seconds = {event.key: event.self_cpu_time_total / 1e6 for event in profiler.key_averages()}
    return dict(sorted(seconds.items(), key=lambda item: -item[1]))


def main(dataset: str = "digits", arch: str = "small_cnn", models: int = 16, epochs: int = 1, repeats: int = 3, threads: int | None = None,
         clock: Literal["cpu", "wall"] = "wall", device: str = "cpu") -> dict[str, float]:
    """Shadow-model training throughput: batched (torch.func) vs one after another.

    Args:
        dataset: registered dataset name.
        arch: model architecture of the shadow models.
        models: models trained per timing.
        epochs: epochs of the dataset's recipe per timing.
        repeats: timed repetitions of each path after one warm-up.
        threads: torch threads (default: torch's choice).
        clock: wall: elapsed time; cpu: this process's CPU time.
        device: where the models train (cpu, cuda, cuda:1, …).
    """
    if threads:
        torch.set_num_threads(threads)
    now = CLOCKS[clock]
    data = load_dataset(dataset)
    recipe = RECIPES.get(dataset if dataset in RECIPES else "cifar")
    seeds = list(range(models))
    where = torch.device(device)

    def train(batched: bool, some: list[int] = seeds, some_epochs: int = epochs) -> None:
        train_models(arch, data.info, data.train, recipe, some, batched=batched, device=where, epochs=some_epochs)
        synchronize(where)

    def timed(batched: bool) -> float:
        start = now()
        train(batched)
        return models * epochs / (now() - start)

    train(True, seeds[:2], 1)  # warm-up
    train(False, seeds[:2], 1)
    throughput: dict[str, list[float]] = {"one after another": [], "batched": []}
    for _ in range(repeats):
        throughput["one after another"].append(timed(False))
        throughput["batched"].append(timed(True))
    median = {k: statistics.median(v) for k, v in throughput.items()}
    ratio = median["batched"] / median["one after another"]
    best = max(throughput["batched"]) / max(throughput["one after another"])
    print(f"{dataset}, {arch}, {models} models × {epochs} epoch(s) of recipe {recipe}, "
          f"{where}, {torch.get_num_threads()} threads, clock {clock}, load average {os.getloadavg()[0]:.2f}")
    for name, values in throughput.items():
        print(f"  {name:18s} median {median[name]:7.2f} model-epochs/s  (runs: {', '.join(f'{v:.2f}' for v in values)})")
    print(f"batched / one after another: {ratio:.2f}× (medians), {best:.2f}× (fastest runs); target ≥ {TARGET:.1f}× → {'met' if ratio >= TARGET else 'NOT met'}")
    flops = training_flops_per_epoch(arch, data)
    peak = matmul_flops_per_second(where)
    achieved = {name: flops * value for name, value in median.items()}
    bound = peak / achieved["one after another"]
    print(f"bound on this machine: one model-epoch is {flops / 1e9:.2f} GFLOP (convolutions and matrix products, forward + backward); "
          f"a 2048×2048 matrix product runs at {peak / 1e9:.0f} GFLOP/s")
    for name, value in achieved.items():
        print(f"  {name:18s} {value / 1e9:6.1f} GFLOP/s = {100 * value / peak:3.0f} % of that rate")
    print(f"  a batched path running every counted FLOP at that rate, with no other cost, would be at most {bound:.2f}× faster "
          f"than one after another")
    if where.type != "cpu":  # the profile below reads CPU operator times, which on an accelerator are launch times
        return {"ratio": ratio, "best_ratio": best, "bound": bound}
    operators = operator_seconds(lambda: train(True))
    total = sum(operators.values())
    convolutions = sum(v for k, v in operators.items() if "convolution" in k)
    conv_bound = models * epochs / convolutions / median["one after another"]
    print(f"where the batched path's time goes (one profiled run, {total:.2f} s of operators): "
          + ", ".join(f"{k} {v:.2f} s" for k, v in list(operators.items())[:6]))
    print(f"  {convolutions:.2f} s inside convolutions alone: with every other cost removed it would be at most {conv_bound:.2f}× "
          f"faster than one after another")
    return {"ratio": ratio, "best_ratio": best, "bound": bound, "convolution_bound": conv_bound}


if __name__ == "__main__":
    auto_cli(main)
