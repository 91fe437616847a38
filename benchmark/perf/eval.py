"""Benchmark: throughput of our evaluation path against a bare `model(x)` loop over the same tensors.

Issue 5's performance point: evaluating accuracy on all splits runs at ≥ 90 % of the throughput of
a bare loop. In one run, on one scenario (random 10 % forgetting), with one model and one batch size:

- **bare**: `for x in batches: model(x)` under `torch.inference_mode()`, over the eval splits'
  batches stacked beforehand (float tensors, the same batches the evaluation loaders produce);
- **ours**: `Trainer.test(Original, datamodule=scenario)` with `Evaluation(mia=False)` — Lightning's
  test loop, the scenario's loaders (indexing, pixel conversion, sample indices), `test_step`,
  the per-split accuracy metrics and their `compute`; the Trainer is built once, outside the timing;
- **ours + MIA**: the same with `Evaluation(mia=True)` (the attacks' SVMs fit in `compute`), timed
  and reported separately: it is not part of the accuracy target.

Each is warmed up once and then timed `--repeats` times, bare and ours alternating; the headline
ratio is the ratio of the medians, shown beside the ratio of the fastest runs and the median of the
ratios of adjacent (bare, ours) pairs. "ours" is also split into its phases (set-up before the first
batch, the batches, the metrics' `compute`, the rest) by a callback, and into the time spent inside
`model(x)` (forward hooks) and outside it. The time outside `model(x)` is our path's own overhead;
"bare + our time outside model(x)" is the ratio our path would reach if its forward passes took as
long as the bare loop's, which is much less sensitive to other load on the machine than the raw
ratios. On a busy machine (the load average is printed) use `--threads 1 --clock cpu`: a 2-thread
OpenMP region whose second thread is descheduled stalls for milliseconds, on the model's
convolutions and on the loaders' batch indexing alike, and with one thread the process's CPU time
measures its own work whatever else runs. `--profile N` adds a cProfile of one `Trainer.test` call.

The model's weights do not change the timing, so by default it is freshly initialised
(`benchmark.models.create_model`); `--pretrained true` uses the cached original model instead (trained
on a cache miss, through `benchmark.runner.attach`).

    python -m benchmark.perf.eval                              # digits
    python -m benchmark.perf.eval --dataset '[digits, fashion_mnist]' --arch narrow_cnn_bn
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import statistics
import tempfile
import time
import warnings
from typing import Literal

import lightning.pytorch as pl
import torch
from jsonargparse import auto_cli

from benchmark.experiment import runner
from benchmark.metrics.evaluator import Evaluation
from benchmark.models.pretraining import Pretrained, build_model
from benchmark.reports.tables import align
from datamodules.scenarios import RandomInstances
from methods import Original

TARGET = 0.90
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
now = CLOCKS["wall"]
"""The clock of every measurement: wall-clock time, or (`--clock cpu`) the CPU time of this process."""


class Phases(pl.Callback):
    """Wall-clock marks inside `Trainer.test`: start of the test, first batch, end of the batches, end of the test."""

    def __init__(self) -> None:
        self.marks: dict[str, float] = {}

    def on_test_start(self, trainer, pl_module) -> None:
        self.marks = {"test_start": now()}

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self.marks.setdefault("first_batch", now())

    def on_test_epoch_end(self, trainer, pl_module) -> None:  # callbacks run before the module's hook (compute)
        self.marks["batches_end"] = now()

    def on_test_end(self, trainer, pl_module) -> None:
        self.marks["test_end"] = now()


class ModelClock:
    """Total wall-clock time spent inside `module`'s forward calls (forward pre- and post-hooks)."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.seconds, self._start = 0.0, 0.0
        module.register_forward_pre_hook(self._enter)
        module.register_forward_hook(self._leave)

    def _enter(self, module, args) -> None:
        self._start = now()

    def _leave(self, module, args, output) -> None:
        self.seconds += now() - self._start

    def lap(self) -> float:
        seconds, self.seconds = self.seconds, 0.0
        return seconds


def make_trainer(phases: Phases) -> pl.Trainer:
    return pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
                      use_distributed_sampler=False, enable_checkpointing=False, callbacks=[phases])


def eval_batches(scenario) -> list[torch.Tensor]:
    """The input batches of every eval split, exactly as the scenario's eval loaders produce them, materialised once."""
    return [x.clone() for name in scenario.eval_split_names for x, *_ in scenario.eval_loader(name, shard=False)]


def time_bare(model: torch.nn.Module, batches: list[torch.Tensor]) -> float:
    model.eval()
    start = now()
    with torch.inference_mode():
        for x in batches:
            model(x)
    return now() - start


def time_ours(trainer: pl.Trainer, method: pl.LightningModule, scenario, phases: Phases) -> tuple[float, dict[str, float]]:
    start = now()
    trainer.test(method, datamodule=scenario, verbose=False)
    end = now()
    m = phases.marks
    return end - start, {"setup": m["first_batch"] - start, "batches": m["batches_end"] - m["first_batch"],
                         "compute": m["test_end"] - m["batches_end"], "teardown": end - m["test_end"]}


def attached(scenario, evaluation: Evaluation, arch: str, pretrained: bool) -> Original:
    method = Original()
    if pretrained:
        runner.attach(method, scenario, Pretrained(arch=arch), evaluation, progress=False)
    else:
        runner.attach_model(method, build_model(arch, scenario.info, seed=0), scenario, Pretrained(arch=arch), evaluation)
    return method


def profile_test(trainer: pl.Trainer, method, scenario, top: int) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    trainer.test(method, datamodule=scenario, verbose=False)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


def table(rows: list[list[str]]) -> str:
    return align(rows[0], rows[1:])


def main(
    dataset: list[str] = ["digits"],  # noqa: B006 (jsonargparse shows it)
    arch: str = "small_cnn",
    fraction: float = 0.1,
    batch_size: int = 512,
    repeats: int = 7,
    mia_repeats: int = 2,
    threads: int | None = None,
    pretrained: bool = False,
    clock: Literal["cpu", "wall"] = "wall",
    profile: int = 0,
) -> dict[str, dict[str, float]]:
    """Throughput of Trainer.test (our evaluation) vs a bare model(x) loop.

    Args:
        dataset: registered datasets (digits, fashion_mnist, …), measured one after another, e.g. '[digits, fashion_mnist]'.
        arch: model architecture.
        fraction: fraction forgotten at random.
        batch_size: evaluation batch size (both paths).
        repeats: timed repetitions after one warm-up.
        mia_repeats: timed repetitions with the attacks (0: skip).
        threads: torch threads (default: torch's choice).
        pretrained: use the cached original model (trained on a miss).
        clock: wall: elapsed time (throughput); cpu: this process's CPU time, with --threads 1 nearly immune to other load.
        profile: print cProfile's top N functions of one Trainer.test (0: none).
    """
    global now
    now = CLOCKS[clock]
    if threads:
        torch.set_num_threads(threads)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")  # in-memory datasets use none on purpose
    settings = {"arch": arch, "fraction": fraction, "batch_size": batch_size, "repeats": repeats, "mia_repeats": mia_repeats,
                "pretrained": pretrained, "clock": clock, "profile": profile}
    results = {name: measure(name, **settings) for name in dataset}
    if len(results) > 1:
        print("summary, ours/bare throughput (ratio of medians; from our overhead per call): "
              + "; ".join(f"{name} {r['ratio']:.3f} ({r['overhead_ratio']:.3f})" for name, r in results.items()))
    return results


def measure(dataset: str, arch: str, fraction: float, batch_size: int, repeats: int, mia_repeats: int, pretrained: bool, clock: str,
            profile: int) -> dict[str, float]:
    """Time both paths on `dataset` and print the table (the arguments are `main`'s)."""
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as requests:
        scenario = RandomInstances(fraction=fraction, dataset=dataset, eval_batch_size=batch_size, request_dir=requests)
        scenario.setup()
        sizes = {name: len(scenario.splits[name]) for name in scenario.eval_split_names}
        samples = sum(sizes.values())
        method = attached(scenario, Evaluation(mia=False), arch, pretrained)
        batches = eval_batches(scenario)
        model = method.model

        phases = Phases()
        trainer = make_trainer(phases)
        time_bare(model, batches), time_ours(trainer, method, scenario, phases)  # warm-up
        in_model = ModelClock(model)
        bare, ours, parts = [], [], []
        for _ in range(repeats):
            bare.append(time_bare(model, batches))
            in_model.lap()
            seconds, phase = time_ours(trainer, method, scenario, phases)
            phase["in model(x)"] = in_model.lap()
            phase["outside model(x)"] = seconds - phase["in model(x)"]
            ours.append(seconds)
            parts.append(phase)
        accuracy = {k: v for k, v in method.results.items() if k.endswith("/acc")}

        mia_seconds = []
        if mia_repeats:
            with_mia = attached(scenario, Evaluation(mia=True), arch, pretrained)
            with_mia.model.load_state_dict(model.state_dict())
            mia_phases = Phases()
            mia_trainer = make_trainer(mia_phases)
            time_ours(mia_trainer, with_mia, scenario, mia_phases)  # warm-up
            mia_seconds = [time_ours(mia_trainer, with_mia, scenario, mia_phases) for _ in range(mia_repeats)]

        t_bare, t_ours = statistics.median(bare), statistics.median(ours)
        pairwise = statistics.median(b / o for b, o in zip(bare, ours))
        ratio = t_bare / t_ours
        print(f"{dataset}, {arch}, random {100 * fraction:g} % forgotten; eval splits {sizes} = {samples} samples; "
              f"batch size {batch_size} ({len(batches)} batches); {torch.get_num_threads()} torch threads; "
              f"{repeats} repeats after a warm-up, medians, {clock} clock; load average {load_before:.2f} → {os.getloadavg()[0]:.2f}")
        rows = [["path", "seconds", "samples/s", "ratio to bare"],
                ["bare model(x) loop", f"{t_bare:.4f}", f"{samples / t_bare:,.0f}", "1.000"],
                ["ours: Trainer.test, mia=False", f"{t_ours:.4f}", f"{samples / t_ours:,.0f}", f"{ratio:.3f}"]]
        for name in ("setup", "batches", "compute", "teardown", "in model(x)", "outside model(x)"):
            value = statistics.median(p[name] for p in parts)
            rows.append([f"  of which {name}", f"{value:.4f}", "", ""])
        overhead = statistics.median(p["outside model(x)"] for p in parts)
        t_batches = statistics.median(p["batches"] for p in parts)
        rows.append(["ours, batches only", f"{t_batches:.4f}", f"{samples / t_batches:,.0f}", f"{t_bare / t_batches:.3f}"])
        rows.append(["fastest bare / fastest ours", f"{min(bare):.4f} / {min(ours):.4f}", "", f"{min(bare) / min(ours):.3f}"])
        rows.append(["median of paired ratios", "", "", f"{pairwise:.3f}"])
        rows.append(["bare + our time outside model(x)", f"{t_bare + overhead:.4f}", f"{samples / (t_bare + overhead):,.0f}", f"{t_bare / (t_bare + overhead):.3f}"])
        if mia_seconds:
            t_mia = statistics.median(s for s, _ in mia_seconds)
            rows.append(["ours: Trainer.test, mia=True", f"{t_mia:.4f}", f"{samples / t_mia:,.0f}", f"{t_bare / t_mia:.3f}"])
            rows.append(["  of which compute (attacks)", f"{statistics.median(p['compute'] for _, p in mia_seconds):.4f}", "", ""])
        print(table(rows))
        estimate = t_bare / (t_bare + overhead)
        print(f"accuracy-path throughput ratio ours/bare = {ratio:.3f} (ratio of medians; paired {pairwise:.3f}; "
              f"from our overhead of {1000 * overhead:.1f} ms per call: {estimate:.3f}), target ≥ {TARGET:.2f}: {'met' if ratio >= TARGET else 'NOT met'}")
        if clock == "wall" and load_before > 0.5 * (os.cpu_count() or 1):
            print(f"warning: load average {load_before:.2f} on {os.cpu_count()} CPUs: other processes distort wall-clock times "
                  "(the forward passes slow down most, which hides our overhead); rerun with --threads 1 --clock cpu")
        print("accuracies (untrained model unless --pretrained true): " + ", ".join(f"{k} {100 * v:.2f}" for k, v in accuracy.items()))
        if profile:
            print(profile_test(trainer, method, scenario, profile))
    return {"bare_seconds": t_bare, "ours_seconds": t_ours, "ratio": ratio, "paired_ratio": pairwise, "overhead_seconds": overhead, "overhead_ratio": estimate}


if __name__ == "__main__":
    auto_cli(main)
