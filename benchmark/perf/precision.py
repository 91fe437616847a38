"""Benchmark: does bf16 change the results? The same runs of a track's protocol in fp32 and in `--precision`, compared
metric by metric against the track's tolerance (issue 21: "fp32 vs bf16 on the same seed: accuracies within the
tracks' tolerance ... or the difference reported").

Each run is `runner.run` on the track's request, original model and evaluation, as `cli.py submit` makes it, once
with Lightning's default precision (32-true) and once with `trainer.precision` = `--precision` (on a CPU, bf16
autocast; on a GPU, the mixed precision a GPU run would use); everything else, seeds included, is equal. The two
records differ only by their `numerics` (`ResultRecord.numerics`), so both are kept. `--check` exits 1 when a metric
moves by more than the track's tolerance (`cost/*` are not compared).

    python -m benchmark.perf.precision                                   # digits-random10 and fashion_mnist-random-k16
    python -m benchmark.perf.precision --tracks '[digits-class0]' --methods '[FineTune, SalUn]' --check true
"""

from __future__ import annotations

import math
import os
import sys
import tempfile

import lightning.pytorch as pl
import torch
from jsonargparse import auto_cli

from benchmark.experiment import runner
from benchmark.leaderboard.submit import compare_runs, instantiate
from benchmark.leaderboard.tracks import load_track, setup_run
from benchmark.perf.eval import table
from methods import METHODS


def compare(tracks: list[str] | None = None, methods: list[str] | None = None, precision: str = "bf16-mixed", seed: int | None = None,
            threads: int | None = 1, check: bool = False) -> list[list[str]]:
    """Run each method on each track in fp32 and in `precision` and print the largest metric change beside the tolerance.

    Args:
        tracks: leaderboard tracks (default: digits-random10 and fashion_mnist-random-k16).
        methods: registered methods, each with its default settings (default: FineTune, NegGrad, SalUn).
        precision: Lightning's `trainer.precision` to compare with 32-true.
        seed: the track's run (default: its first).
        threads: torch threads (default 1).
        check: exit with status 1 when a metric moves by more than the track's tolerance.
    """
    if threads:
        torch.set_num_threads(threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"fp32 vs {precision}; torch {torch.__version__}, lightning {pl.__version__}; device {device}"
          f"{' (' + torch.cuda.get_device_name() + ')' if device == 'cuda' else ''}; {torch.get_num_threads()} threads of {os.cpu_count()} CPUs")
    rows, beyond = [["track", "method", "seed", "largest |Δ|", "in", "Δ forget/acc", "Δ retain/acc", "Δ test/acc", "tolerance", "fp32 s", f"{precision} s"]], []
    with tempfile.TemporaryDirectory() as results:
        for track in map(load_track, tracks or ["digits-random10", "fashion_mnist-random-k16"]):
            run_seed = track.seeds[0] if seed is None else seed
            for name in methods or ["FineTune", "NegGrad", "SalUn"]:
                records = {}
                for chosen in ("32-true", precision):
                    records[chosen] = runner.run(instantiate(METHODS.get(name), {}), setup_run(track, run_seed), track.make_pretrained(), seed=run_seed,
                                                 trainer_kwargs={"precision": chosen}, results_dir=results, progress=False,
                                                 evaluation=track.make_evaluation(), config={"command": "perf.precision"})
                fp32, other = records["32-true"]["metrics"], records[precision]["metrics"]
                moved = {k: abs(v - other[k]) for k, v in fp32.items() if not k.startswith("cost/") and v is not None and other.get(k) is not None}
                worst = max(moved, key=moved.get) if moved else "-"
                beyond += [f"{track.name} {name}: {p}" for p in compare_runs(records["32-true"], records[precision], track.tolerance, ("fp32", precision))]
                rows.append([track.name, name, str(run_seed), f"{moved.get(worst, math.nan):.4f}", worst,
                             *(f"{other[k] - fp32[k]:+.4f}" if None not in (other[k], fp32[k]) else f"{fp32[k]} / {other[k]}"
                               for k in ("forget/acc", "retain/acc", "test/acc")), f"{track.tolerance:g}",
                             *(f"{records[c]['timings']['cost/seconds']:.2f}" for c in ("32-true", precision))])
    print(table(rows))
    print("\n".join(beyond) if beyond else f"every metric within the tracks' tolerance in {precision}")
    if check and beyond:
        sys.exit(1)
    return rows


if __name__ == "__main__":
    auto_cli(compare)
