"""Benchmark: how well a sweep uses its workers (issue 22 §3), measured in one run.

- **t1**: one digits run (FineTune from the cached original, `--epochs` epochs: ≥ 20 s on one thread) through the
  local executor, alone;
- **T**: `--runs` such runs (other seeds) as one sweep on a Ray instance of `--workers` CPUs, one thread per run
  (Ray started before the clock); the efficiency is `runs · t1 / (workers · T)` (target ≥ 0.8);
- **killed**: one run whose process dies halfway through its epochs on its first try, retried by Ray: its wall time
  over t1 (target ≤ 1.2); the retry resumes from the checkpoint of the last epoch the first try finished, so what
  the death costs is a process start, the method's `prepare` again, and the unfinished epoch.

    python -m benchmark.perf.scale                       # 8 runs, 2 workers, 60 epochs
    python -m benchmark.perf.scale --runs 4 --epochs 10  # a quick look

Every run writes its records under a temporary folder; nothing of the user's is touched but the original's cache.

Measured on 2 CPU cores (2026-12-03, idle): t1 19.1 s, 8 runs on 2 workers in 90.6 s (efficiency 0.84), a run killed
halfway 1.01 t1 (1.54 t1 before retries resumed from a checkpoint).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import yaml
from jsonargparse import auto_cli

from benchmark.experiment.sweep import run_sweep

TARGET = 0.8

CRASH_HALFWAY = '''
import os
from methods.finetune import FineTune


class CrashHalfway(FineTune):
    """FineTune whose process dies at the first step of epoch `at`, the first time any run gets there."""

    def __init__(self, *, marker: str = "", at: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)
        self.marker, self.at = marker, at

    def training_step(self, batch, batch_idx):
        if self.current_epoch == self.at and batch_idx == 0:
            try:
                os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL))
                os._exit(1)
            except FileExistsError:
                pass
        return super().training_step(batch, batch_idx)
'''


def _sweep(folder: Path, name: str, method: dict, seeds: list[int]) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"base": {"data": {"class_path": "RandomInstances", "init_args": {"dataset": "digits", "k": 12}},
                                             "trainer": {"accelerator": "cpu"}, "evaluation": {"mia": False}},
                                    "methods": [method], "seeds": seeds}))
    return path


def _timed(path: Path, executor: str, folder: Path, **options) -> float:
    started = time.perf_counter()
    result = run_sweep(path, executor, cpus_per_run=1, folder=folder, progress=False, **options)
    if result["failed"]:
        raise RuntimeError(f"runs failed: {result['failed']}")
    return time.perf_counter() - started


def main(runs: int = 8, workers: int = 2, epochs: int = 60, check: bool = False) -> dict:
    """Measure t1, the sweep's efficiency on `workers` Ray CPUs, and a killed run's cost; print them.

    Args:
        runs: runs in the timed sweep.
        workers: CPUs of the local Ray instance.
        epochs: FineTune's epochs per run (60: ~20 s on one thread of this project's 2-core machine).
        check: exit with status 1 when the efficiency misses the target.
    """
    import ray

    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    folder = Path(tempfile.mkdtemp(prefix="unlearnbench-scale-"))
    method = {"class_path": "FineTune", "init_args": {"budget": {"max_epochs": epochs}}}
    _timed(_sweep(folder, "warm", {**method, "init_args": {"budget": {"max_epochs": 1}}}, [0]), "local", folder / "warm")  # the original
    t1 = _timed(_sweep(folder, "one", method, [0]), "local", folder / "one")
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level="WARNING",
             runtime_env={"env_vars": {k: os.environ[k] for k in ("UNLEARNBENCH_HOME",) if k in os.environ}})
    try:
        total = _timed(_sweep(folder, "many", method, list(range(1, runs + 1))), "ray", folder / "many")
        (folder / "crash.py").write_text(CRASH_HALFWAY)
        crashing = {"class_path": f"{folder / 'crash.py'}:CrashHalfway", "init_args": {**method["init_args"], "marker": str(folder / "crashed"), "at": epochs // 2}}
        killed = _timed(_sweep(folder, "killed", crashing, [0]), "ray", folder / "killed")
    finally:
        ray.shutdown()
    efficiency = runs * t1 / (workers * total)
    print(f"t1 = {t1:.1f} s (one run, {epochs} epochs, local, 1 thread)")
    print(f"{runs} runs on {workers} Ray workers: T = {total:.1f} s; efficiency runs·t1/(workers·T) = {efficiency:.2f} (target ≥ {TARGET})")
    print(f"a run killed at epoch {epochs // 2} of {epochs} and retried: {killed:.1f} s = {killed / t1:.2f} t1")
    if check and efficiency < TARGET:
        sys.exit(1)
    return {"t1": t1, "T": total, "efficiency": efficiency, "killed_over_t1": killed / t1}


if __name__ == "__main__":
    auto_cli(main)
