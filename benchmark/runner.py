"""Run one method on one scenario: original model → unlearning → evaluation → result record."""

from __future__ import annotations

import json
import math
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import lightning.pytorch as pl
import torch

from benchmark.evaluation import Evaluation, model_measures, write_figures
from benchmark.errors import UnlearnBenchError
from benchmark.paths import atomic_write_bytes, home
from benchmark.pretraining import Pretrained, build_model, cache_path, load_checkpoint
from datamodules.scenarios import NothingForgotten, UnlearningScenario

TRAINER_DEFAULTS = {
    "logger": False,
    "enable_checkpointing": False,
    "enable_model_summary": False,
    "use_distributed_sampler": False,  # scenarios shard their own data: every sample evaluated exactly once
    "num_sanity_val_steps": 0,
}
LIBRARIES = ("torch", "torchvision", "lightning", "torchmetrics", "timm", "jsonargparse", "scikit-learn", "numpy")


def obtain_original(scenario: UnlearningScenario, pretrained: Pretrained, progress: bool = True) -> torch.nn.Module:
    """The original model: `pretrained.checkpoint` if given, else the cached pretraining (trained on a miss)."""
    scenario.setup()
    model = build_model(pretrained.arch, scenario.info, pretrained.seed)
    if pretrained.checkpoint:
        load_checkpoint(pretrained.checkpoint, model)
        return model
    full = NothingForgotten(scenario.dataset_name, scenario.request.corruption, scenario.data, data_root=scenario.data_root,
                            eval_batch_size=scenario.eval_batch_size, num_workers=scenario.num_workers, request_dir=scenario.request_dir)
    full.setup()
    path = cache_path(pretrained, scenario.info.name, full.request.hash)
    if not path.exists():
        from methods.retrain import Retrain

        recipe = pretrained.recipe_name(scenario.info.name)
        print(f"pretraining the original {pretrained.arch} on {scenario.info.name} (recipe {recipe}, seed {pretrained.seed}) → {path}", file=sys.stderr)
        trainer_kwargs = {**TRAINER_DEFAULTS, "accelerator": "auto", "devices": 1, "enable_progress_bar": progress}
        with torch.random.fork_rng():
            pl.seed_everything(pretrained.seed, verbose=False)
            trainer = pl.Trainer(max_epochs=1, **trainer_kwargs)
            pretraining = Retrain()
            pretraining.attach(model, full, pretrained)
            fit(pretraining, full, trainer)
    load_checkpoint(path, model)
    return model


def attach(method: pl.LightningModule, scenario: UnlearningScenario, pretrained: Pretrained, evaluation: Evaluation | None = None, progress: bool = True) -> None:
    method.attach(obtain_original(scenario, pretrained, progress), scenario, pretrained, evaluation)


def fit(method: pl.LightningModule, scenario: UnlearningScenario, trainer: pl.Trainer) -> None:
    trainer.fit_loop.max_epochs = method.num_epochs()
    trainer.fit(method, datamodule=scenario)


def evaluate(method: pl.LightningModule, scenario: UnlearningScenario, trainer: pl.Trainer, seed: int = 0, results_dir: str | None = None) -> dict[str, float]:
    """Every split's metrics (`trainer.test`), then the whole-model measures the method's `evaluation` asks for
    (with the distances to the Retrain model of the same request and seed, when one is saved)."""
    trainer.test(method, datamodule=scenario, verbose=False)
    return add_model_measures(method, scenario, seed, results_dir)


def add_model_measures(method, scenario: UnlearningScenario, seed: int = 0, results_dir: str | None = None) -> dict[str, float]:
    """After `trainer.test`: add the whole-model measures to `method.results` and return them all."""
    method.results.update(model_measures(method, scenario, method.evaluation, retrain_reference(method, scenario, seed, results_dir)))
    return dict(method.results)


def retrain_reference(method, scenario: UnlearningScenario, seed: int, results_dir: str | None = None) -> torch.nn.Module | None:
    """The saved Retrain model of the same request and seed (None for Retrain itself or when there is none)."""
    path = run_path("Retrain", scenario.info.name, scenario.request.hash, seed, results_dir).with_suffix(".pt")
    if type(method).__name__ == "Retrain" or not path.exists():
        return None
    model = build_model(method.pretrained.arch, scenario.info, 0)
    load_checkpoint(path, model)
    return model.to(method.device).eval()


def speedup_over_retrain(record: dict, results_dir: str | None = None) -> float | None:
    """Retrain's `cost/seconds` over this run's, for the same request and seed on the same machine and device
    count (None when there is no such Retrain record, or when the run took no step, as Original)."""
    path = run_path("Retrain", record["dataset"], record["request"]["hash"], record["seed"], results_dir)
    if record["method"] == "Retrain" or not path.exists() or record["timings"].get("cost/steps", 1) == 0:  # nothing unlearned (Original)
        return None
    retrain = json.loads(path.read_text())
    seconds, reference = record["timings"].get("cost/seconds"), retrain.get("timings", {}).get("cost/seconds")
    if retrain.get("hardware") != record["hardware"] or not seconds or not reference:
        return None
    return reference / seconds


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, cwd=Path(__file__).parent, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "") if out.returncode == 0 else None


def versions() -> dict[str, str | None]:
    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {"python": platform.python_version(), **{name: version(name) for name in LIBRARIES}}


def result_record(method, scenario: UnlearningScenario, pretrained: Pretrained, seed: int, trainer: pl.Trainer, config: dict, eval_seconds: float) -> dict:
    return {
        "method": type(method).__name__,
        "dataset": scenario.info.name,
        "scenario": dict(scenario.request.scenario),
        "request": {"hash": scenario.request.hash, "path": str(scenario.request_path), "num_forget": len(scenario.request.forget_indices) or len(scenario.splits["forget"])},
        "pretrained": {"arch": pretrained.arch, "recipe": pretrained.recipe_name(scenario.info.name), "seed": pretrained.seed, "checkpoint": pretrained.checkpoint},
        "seed": seed,
        "metrics": {name: None if math.isnan(value) else value for name, value in method.results.items()},
        "timings": {**method.cost, "eval/seconds": eval_seconds},
        "stopped_at": method.stopped_at,
        "diverged": getattr(method, "diverged", None),
        "curves": getattr(method, "curves", {}),
        "config": config,
        "git_commit": git_commit(),
        "versions": versions(),
        "hardware": {"accelerator": type(trainer.accelerator).__name__, "devices": trainer.num_devices, "world_size": trainer.world_size, "machine": platform.machine(), "cpu_count": torch.get_num_threads()},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def record_path(record: dict, results_dir: str | None = None) -> Path:
    return run_path(record["method"], record["dataset"], record["request"]["hash"], record["seed"], results_dir)


def run_path(method: str, dataset: str, request_hash: str, seed: int, results_dir: str | None = None) -> Path:
    """`<results>/<dataset>/<request hash>/<method>-seed<seed>.json`; the unlearned weights are the `.pt` beside it."""
    root = Path(results_dir) if results_dir else home() / "results"
    return root / dataset / request_hash[:16] / f"{method}-seed{seed}.json"


def load_unlearned(method, scenario: UnlearningScenario, seed: int, results_dir: str | None = None) -> None:
    """Put the weights a previous `fit` of this method, request and seed saved into `method.model`, and that
    fit's cost, stop, divergence and curves into `method` (they describe how the model was made, so the test's record keeps them)."""
    path = run_path(type(method).__name__, scenario.info.name, scenario.request.hash, seed, results_dir).with_suffix(".pt")
    if not path.exists():
        raise UnlearnBenchError(f"no unlearned {type(method).__name__} model for request {scenario.request.hash[:16]} and seed {seed} at {path}; "
                                "run `cli.py fit` with the same arguments first (or test `--model Original --pretrained.checkpoint FILE`)")
    load_checkpoint(path, method.model)
    fitted = json.loads(path.with_suffix(".json").read_text()) if path.with_suffix(".json").exists() else {}
    method.cost = {k: v for k, v in fitted.get("timings", {}).items() if k.startswith("cost/") and k != "cost/speedup_vs_retrain"}
    method.stopped_at, method.diverged, method.curves = fitted.get("stopped_at"), fitted.get("diverged"), fitted.get("curves", {})


def write_record(record: dict, path: Path, method: pl.LightningModule | None = None, scenario: UnlearningScenario | None = None) -> dict:
    """Write the record (and the unlearned weights and figures beside it) atomically; return it as written."""
    speedup = speedup_over_retrain(record, str(path.parents[2]))
    if speedup is not None:
        record = {**record, "timings": {**record["timings"], "cost/speedup_vs_retrain": speedup}}
    broken = any(v is None for k, v in record["metrics"].items() if k.endswith("/acc"))  # non-finite outputs: nothing to draw
    if method is not None and scenario is not None and method.evaluation.figures and not broken:
        retrain = retrain_reference(method, scenario, record["seed"], str(path.parents[2]))
        figures = write_figures(method, scenario, path.with_name(path.stem + "-figures"), method.evaluation.seed, retrain)
        record = {**record, "figures": [str(f) for f in figures]}
    if method is not None and method.model is not None:
        import io

        buffer = io.BytesIO()
        torch.save({"state_dict": method.model.state_dict()}, buffer)
        atomic_write_bytes(path.with_suffix(".pt"), buffer.getvalue())
        record = {**record, "weights": str(path.with_suffix(".pt"))}
    record = {**record, "path": str(path)}
    atomic_write_bytes(path, json.dumps(record, indent=1, sort_keys=False).encode())
    return record


def run(method, scenario: UnlearningScenario, pretrained: Pretrained, seed: int = 0, trainer_kwargs: dict | None = None,
        config: dict | None = None, results_dir: str | None = None, progress: bool = True, evaluation: Evaluation | None = None) -> dict:
    """Fit `method` on `scenario` from the original model, evaluate every split, write and return the record."""
    attach(method, scenario, pretrained, evaluation, progress)
    pl.seed_everything(seed, verbose=False)
    trainer = pl.Trainer(**{**TRAINER_DEFAULTS, "accelerator": "auto", "devices": 1, "enable_progress_bar": progress, "max_epochs": 1, **(trainer_kwargs or {})})
    fit(method, scenario, trainer)
    start = time.perf_counter()
    evaluate(method, scenario, trainer, seed, results_dir)
    record = result_record(method, scenario, pretrained, seed, trainer, config or {}, time.perf_counter() - start)
    if trainer.is_global_zero:
        record = write_record(record, record_path(record, results_dir), method, scenario)
    return record
