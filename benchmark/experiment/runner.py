"""The pipeline: run one method on one scenario — original model → unlearning → evaluation → result record."""

from __future__ import annotations

import io
import json
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from importlib import metadata
from pathlib import Path

import lightning.pytorch as pl
import torch

from benchmark.audits.measures import model_measures, write_figures
from benchmark.core.errors import UnlearnBenchError
from benchmark.core.paths import atomic_write_bytes, home
from benchmark.core.record import (
    Hardware,
    ResultRecord,
    dump_record,
    finite,
    load_record,
    run_identity,
)
from benchmark.core.validation import differences
from benchmark.metrics.evaluator import Evaluation
from benchmark.models.pretraining import Pretrained, build_model, load_checkpoint
from benchmark.training import (  # noqa: F401 (the pipeline's first steps)
    TRAINER_DEFAULTS,
    attach,
    attach_model,
    epoch_checkpoints,
    fit,
    obtain_original,
    run_test,
)
from datamodules.scenarios import UnlearningScenario

LIBRARIES = ("torch", "torchvision", "lightning", "torchmetrics", "timm", "jsonargparse", "scikit-learn", "numpy")


class RecordWriter(pl.Callback):
    """The end of every run's pipeline: after `trainer.test` has measured every split, add the whole-model measures,
    build the result record and write it (rank 0, atomically, weights and figures beside it). `record` holds it.

    Every command's runs end here: `cli.py fit` (after its fit), `cli.py test`, `runner.run` (compare, suites,
    submit / verify, continual streams)."""

    interrupted = False
    """Set when Ctrl-C stopped a run (Lightning then exits with status 1 and says nothing at our log level)."""

    def __init__(self, pretrained: Pretrained, seed: int, config: dict | Callable[[], dict], results_dir: str | None = None) -> None:
        self.pretrained, self.seed, self.config, self.results_dir = pretrained, seed, config, results_dir
        self.record: dict | None = None

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if isinstance(exception, KeyboardInterrupt):
            RecordWriter.interrupted = True

    def on_test_start(self, trainer, pl_module) -> None:
        self.start = time.perf_counter()

    def on_test_end(self, trainer, pl_module) -> None:
        scenario = trainer.datamodule
        with torch.inference_mode(False), torch.enable_grad():  # (the test loop's inference mode): relearning and U-LiRA train
            add_model_measures(pl_module, scenario, self.seed, self.results_dir)
        config = self.config() if callable(self.config) else self.config
        record = result_record(pl_module, scenario, self.pretrained, self.seed, trainer, config or {}, time.perf_counter() - self.start)
        if trainer.is_global_zero:
            record = write_record(record, record_path(record, self.results_dir), pl_module, scenario)
        self.record = record


def add_model_measures(method, scenario: UnlearningScenario, seed: int = 0, results_dir: str | None = None) -> dict[str, float]:
    """After `trainer.test`: add the whole-model measures to `method.results` and return them all."""
    method.results.update(model_measures(method, scenario, method.evaluation, retrain_reference(method, scenario, seed, results_dir)))
    return dict(method.results)


def retrain_reference(method, scenario: UnlearningScenario, seed: int, results_dir: str | None = None) -> torch.nn.Module | None:
    """The saved Retrain model of the same request, seed and architecture (None for Retrain itself or when there is none)."""
    if type(method).__name__ == "Retrain":
        return None
    path = latest_run("Retrain", scenario.info.name, scenario.request.hash, seed, method.pretrained.arch, results_dir)
    if path is None or not path.with_suffix(".pt").exists():
        return None
    model = build_model(method.pretrained.arch, scenario.info, 0)
    load_checkpoint(path.with_suffix(".pt"), model)
    return model.to(method.device).eval()


def speedup_over_retrain(record: dict, results_dir: str | None = None) -> float | None:
    """Retrain's `cost/seconds` over this run's, for the same request, seed and architecture on the same machine and
    device count (None when there is no such Retrain record, or for Original, which unlearns nothing; a one-shot method
    such as Fisher or SSD takes no training step and still has one)."""
    if record["method"] in ("Retrain", "Original"):
        return None
    path = latest_run("Retrain", record["dataset"], record["request"]["hash"], record["seed"], record["pretrained"]["arch"], results_dir)
    if path is None:
        return None
    retrain = load_record(path)
    seconds, reference = record["timings"].get("cost/seconds"), retrain.timings.get("cost/seconds")
    if timed_alike(retrain.hardware) != timed_alike(Hardware(**record["hardware"])) or not seconds or not reference:
        return None
    return reference / seconds


def timed_alike(hardware: Hardware) -> Hardware:
    """`hardware` as far as it sets a run's speed: what started the processes does not (`cluster_environment`), and a
    record that predates `num_nodes` ran on one node."""
    return replace(hardware, num_nodes=hardware.num_nodes or 1, cluster_environment=None)


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


def cpu_name() -> str | None:
    """The CPU's model name (Linux: /proc/cpuinfo; elsewhere what `platform.processor` says, or None)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def hardware(trainer: pl.Trainer) -> dict:
    """Where this process runs (`core.record.Hardware`): `cpu_count` is the machine's, `threads` torch's in this process;
    `devices` per node, on `num_nodes` nodes, started by `cluster_environment` (None: one process)."""
    environment = getattr(trainer.strategy, "cluster_environment", None)  # (a one-device strategy has none)
    return {"accelerator": type(trainer.accelerator).__name__, "devices": trainer.num_devices, "world_size": trainer.world_size,
            "machine": platform.machine(), "cpu_count": os.cpu_count() or 1, "threads": torch.get_num_threads(), "cpu": cpu_name(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "num_nodes": trainer.num_nodes,
            "cluster_environment": type(environment).__name__ if environment is not None else None}


NUMERICS = {"precision": "32-true", "accumulate_grad_batches": 1, "gradient_clip_val": None, "gradient_clip_algorithm": "norm",
            "limit_train_batches": 1.0, "max_steps": -1}
"""The trainer's settings that change what a fit computes, with Lightning's defaults (`ResultRecord.numerics`)."""


def numerics(trainer: pl.Trainer | None) -> dict:
    """`trainer`'s `NUMERICS` settings that are not the defaults, as Lightning resolved them ("bf16" → "bf16-mixed"),
    the clipping algorithm only with a clipping value; then what its callbacks declare (`numerics`: `ChannelsLast`,
    `Compile`)."""
    if trainer is None:
        return {}
    values = {key: getattr(trainer, key) for key in NUMERICS}
    values["gradient_clip_algorithm"] = getattr(values["gradient_clip_algorithm"], "value", values["gradient_clip_algorithm"])
    if values["gradient_clip_val"] is None:
        values["gradient_clip_algorithm"] = NUMERICS["gradient_clip_algorithm"]
    chosen = {key: value for key, value in values.items() if value != NUMERICS[key]}
    for callback in trainer.callbacks:
        chosen.update(getattr(callback, "numerics", None) or {})
    return chosen


def result_record(method, scenario: UnlearningScenario, pretrained: Pretrained, seed: int, trainer: pl.Trainer, config: dict, eval_seconds: float) -> dict:
    return {
        "method": type(method).__name__,
        "dataset": scenario.info.name,
        "scenario": dict(scenario.request.scenario),
        "request": {"hash": scenario.request.hash, "path": str(scenario.request_path), "num_forget": len(scenario.request.forget_indices) or len(scenario.splits["forget"])},
        "pretrained": {"arch": pretrained.arch, "recipe": pretrained.recipe_name(scenario.info.name), "seed": pretrained.seed, "checkpoint": pretrained.checkpoint},
        "seed": seed,
        "metrics": {name: finite(value) for name, value in method.results.items()},
        "timings": {**method.cost, "eval/seconds": eval_seconds},
        "stopped_at": method.stopped_at,
        "diverged": getattr(method, "diverged", None),
        "curves": getattr(method, "curves", {}),
        "config": config,
        "git_commit": git_commit(),
        "versions": versions(),
        "hardware": hardware(trainer),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "hparams": dict(method.hparams),
        "evaluation": asdict(method.evaluation) if getattr(method, "evaluation", None) is not None else None,
        **({"numerics": chosen} if (chosen := numerics(trainer)) else {}),
    }


def original_of(pretrained: Pretrained, dataset: str) -> dict:
    """The original model as a record holds it (`OriginalModel`'s fields)."""
    return {"arch": pretrained.arch, "recipe": pretrained.recipe_name(dataset), "seed": pretrained.seed, "checkpoint": pretrained.checkpoint}


def record_path(record: dict, results_dir: str | None = None) -> Path:
    identity = run_identity(record["method"], record.get("hparams", {}), record["pretrained"], record.get("numerics"))
    return run_path(record["method"], record["dataset"], record["request"]["hash"], record["seed"], identity, results_dir)


def method_run_path(method, scenario: UnlearningScenario, pretrained: Pretrained, seed: int, results_dir: str | None = None,
                    trainer: pl.Trainer | None = None) -> Path:
    """Where the record of `method` (its hyperparameters as they are now) from `pretrained` on `scenario` goes, fitted by
    `trainer` (None: with Lightning's default `NUMERICS`)."""
    name = type(method).__name__
    identity = run_identity(name, dict(method.hparams), original_of(pretrained, scenario.info.name), numerics(trainer))
    return run_path(name, scenario.info.name, scenario.request.hash, seed, identity, results_dir)


def reusable_record(path: Path, evaluation: Evaluation | None) -> dict | None:
    """The record at `path` (the same method, hyperparameters, original, request and seed: `method_run_path`) when
    it was measured with `evaluation` too (a field the record predates counts as its default), so resumable
    commands read it back instead of rerunning; else None."""
    if not path.exists():
        return None
    record, wanted = load_record(path), json.loads(json.dumps(asdict(evaluation or Evaluation())))
    if record.evaluation is None or set(record.evaluation) - set(wanted):
        return None
    return record.to_dict() if {**asdict(Evaluation()), **record.evaluation} == wanted else None


def run_path(method: str, dataset: str, request_hash: str, seed: int, identity: str, results_dir: str | None = None) -> Path:
    """`<results>/<dataset>/<request hash>/<method>-<identity>-seed<seed>.json` (`run_identity`); the unlearned
    weights are the `.pt` beside it. Two runs that differ in anything that made their weights never share a file."""
    root = Path(results_dir) if results_dir else home() / "results"
    return root / dataset / request_hash[:16] / f"{method}-{identity}-seed{seed}.json"


def runs_of(method: str, dataset: str, request_hash: str, seed: int, results_dir: str | None = None) -> list[Path]:
    """The records of every configuration of `method` for this request and seed, newest first."""
    folder = run_path(method, dataset, request_hash, seed, "x", results_dir).parent
    return sorted(folder.glob(f"{method}-{'[0-9a-f]' * 8}-seed{seed}.json"), key=lambda p: p.stat().st_mtime_ns, reverse=True)


def latest_run(method: str, dataset: str, request_hash: str, seed: int, arch: str, results_dir: str | None = None) -> Path | None:
    """The newest record of `method` for this request and seed from a model of architecture `arch`, or None."""
    return next((p for p in runs_of(method, dataset, request_hash, seed, results_dir) if load_record(p).pretrained.arch == arch), None)


def load_unlearned(method, scenario: UnlearningScenario, pretrained: Pretrained, seed: int, results_dir: str | None = None,
                   trainer: pl.Trainer | None = None) -> Path:
    """Put the weights a previous `fit` of this method — same hyperparameters, original, request and seed — saved into
    `method.model`, and that fit's cost, stop, divergence and curves into `method` (they describe how the model was
    made, so the test's record keeps them); return the record's path. A fit of another configuration is refused,
    naming what differs."""
    name = type(method).__name__
    path = method_run_path(method, scenario, pretrained, seed, results_dir, trainer)
    if not path.with_suffix(".pt").exists():
        others = [p for p in runs_of(name, scenario.info.name, scenario.request.hash, seed, results_dir) if p.with_suffix(".pt").exists()]
        if others:
            fitted = load_record(others[0])
            differ = differences({"hparams": fitted.hparams or {}, "pretrained": asdict(fitted.pretrained), "trainer": fitted.numerics or {}},
                                 {"hparams": dict(method.hparams), "pretrained": original_of(pretrained, scenario.info.name), "trainer": numerics(trainer)})
            raise UnlearnBenchError(f"the {name} model fitted for request {scenario.request.hash[:16]} and seed {seed} ({others[0]}) was made with "
                                    f"another configuration ({'; '.join(differ) or 'unknown differences'}); give the fit's arguments, or fit this one")
        raise UnlearnBenchError(f"no unlearned {name} model for request {scenario.request.hash[:16]} and seed {seed} at {path.with_suffix('.pt')}; "
                                "run `cli.py fit` with the same arguments first (or test `--model Original --pretrained.checkpoint FILE`)")
    load_checkpoint(path.with_suffix(".pt"), method.model)
    if path.exists():
        fitted = load_record(path)
        method.cost = {k: v for k, v in fitted.timings.items() if k.startswith("cost/") and k != "cost/speedup_vs_retrain"}
        method.stopped_at, method.diverged, method.curves = fitted.stopped_at, fitted.diverged, fitted.curves
    else:
        method.cost, method.stopped_at, method.diverged, method.curves = {}, None, None, {}
    return path


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
        buffer = io.BytesIO()
        torch.save({"state_dict": method.model.state_dict()}, buffer)
        atomic_write_bytes(path.with_suffix(".pt"), buffer.getvalue())
        record = {**record, "weights": str(path.with_suffix(".pt"))}
    record = {**record, "path": str(path)}
    dump_record(ResultRecord.from_dict(record, str(path)), path)  # refuses a record that does not follow RECORD_SCHEMA
    return record


def run(method, scenario: UnlearningScenario, pretrained: Pretrained, seed: int = 0, trainer_kwargs: dict | None = None,
        config: dict | None = None, results_dir: str | None = None, progress: bool = True, evaluation: Evaluation | None = None,
        checkpoints: str | Path | None = None, callbacks: list[pl.Callback] | None = None) -> dict:
    """Fit `method` on `scenario` from the original model, evaluate every split, write and return the record.

    `checkpoints`: a folder where the fit keeps a Lightning checkpoint of its last finished epoch and, when one is
    there, resumes from it (a run retried after its process died goes on from there, to the weights and measures of
    an uninterrupted run); it is removed once the record is written."""
    attach(method, scenario, pretrained, evaluation, progress)
    pl.seed_everything(seed, verbose=False)
    writer = RecordWriter(pretrained, seed, config or {}, results_dir)
    keeper, last = epoch_checkpoints(checkpoints)
    trainer = pl.Trainer(**{**TRAINER_DEFAULTS, "accelerator": "auto", "devices": 1, "enable_progress_bar": progress, "max_epochs": 1,
                            **(trainer_kwargs or {}), "enable_checkpointing": bool(keeper), "callbacks": [writer, *keeper, *(callbacks or [])]})
    fit(method, scenario, trainer, ckpt_path=last)
    run_test(method, scenario, trainer, verbose=False)  # the fitted weights (on SLURM, not an hpc_ckpt_*)
    if checkpoints and trainer.is_global_zero:
        shutil.rmtree(checkpoints, ignore_errors=True)
    return writer.record
