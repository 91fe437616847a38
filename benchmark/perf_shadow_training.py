"""Benchmark: U-LiRA's shadow models trained in one batch vs one after another (issue 5: ≥ 2×).

Both paths are `benchmark.batched_training.train_models` on the same data, recipe and seeds:
`batched=True` (parameters stacked, `torch.func.vmap` forward, one backward, one optimizer over the stacked
tensors) and `batched=False` (a plain PyTorch loop, model after model). Each is timed `--repeats`
times, alternating, for `--models` models over `--epochs` epochs of the dataset's recipe; the
headline is the ratio of the median throughputs (model-epochs per second), shown beside the ratio of
the fastest runs. The load average is printed: on a shared machine run it when nothing else does, or
with `--clock cpu` (the process's CPU time).

    python -m benchmark.perf_shadow_training                    # digits, 16 models, small_cnn
    python -m benchmark.perf_shadow_training --models 33 --threads 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from benchmark.batched_training import train_models
from benchmark.pretraining import RECIPES
from datamodules.datasets import load_dataset

TARGET = 2.0
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description="Shadow-model training throughput: batched (torch.func) vs one after another.")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--arch", default="small_cnn")
    parser.add_argument("--models", type=int, default=16, help="models trained per timing")
    parser.add_argument("--epochs", type=int, default=1, help="epochs of the dataset's recipe per timing")
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions of each path after one warm-up")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    now = CLOCKS[args.clock]
    data = load_dataset(args.dataset)
    recipe = RECIPES.get(args.dataset if args.dataset in RECIPES else "cifar")
    seeds = list(range(args.models))

    def timed(batched: bool) -> float:
        start = now()
        train_models(args.arch, data.info, data.train, recipe, seeds, batched=batched, epochs=args.epochs)
        return args.models * args.epochs / (now() - start)

    train_models(args.arch, data.info, data.train, recipe, seeds[:2], batched=True, epochs=1)  # warm-up
    train_models(args.arch, data.info, data.train, recipe, seeds[:2], batched=False, epochs=1)
    throughput: dict[str, list[float]] = {"one after another": [], "batched": []}
    for _ in range(args.repeats):
        throughput["one after another"].append(timed(False))
        throughput["batched"].append(timed(True))
    median = {k: statistics.median(v) for k, v in throughput.items()}
    ratio = median["batched"] / median["one after another"]
    best = max(throughput["batched"]) / max(throughput["one after another"])
    print(f"{args.dataset}, {args.arch}, {args.models} models × {args.epochs} epoch(s) of recipe {recipe}, "
          f"{torch.get_num_threads()} threads, clock {args.clock}, load average {os.getloadavg()[0]:.2f}")
    for name, values in throughput.items():
        print(f"  {name:18s} median {median[name]:7.2f} model-epochs/s  (runs: {', '.join(f'{v:.2f}' for v in values)})")
    print(f"batched / one after another: {ratio:.2f}× (medians), {best:.2f}× (fastest runs); target ≥ {TARGET:.1f}× → {'met' if ratio >= TARGET else 'NOT met'}")
    return {"ratio": ratio, "best_ratio": best}


if __name__ == "__main__":
    main()
