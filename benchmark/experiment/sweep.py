"""Sweeps: many `cli.py fit` runs from one file (`cli.py sweep S.yaml`), on this machine or a Ray cluster, resumable.

The file (YAML) expands to methods × scenarios × seeds × the grid of `overrides`::

    base:                # a `cli.py fit` config every run starts from (pretrained, evaluation, trainer, data, model)
      data: {class_path: RandomInstances, init_args: {dataset: digits, fraction: 0.1}}
    methods: [Retrain, FineTune, configs/methods/SalUn/optml.yaml, my_method.py:Mine, {class_path: NegGrad, init_args: {...}}]
    scenarios: [...]     # data configs (default: base's `data`)
    seeds: [0, 1, 2]     # the runs' `seed_everything` (default: base's, else 0)
    overrides: {model.init_args.budget.max_epochs: [1, 5]}   # dotted keys, each a list of values: their grid (a model
                         # setting applies to the methods that take it: Retrain takes none)

Each run is a `cli.py fit` config resolved by jsonargparse (every default filled in); its key is the SHA-256 of that
config as canonical JSON without the placement keys (`PLACEMENT`: where and how it runs, not what it computes).
`<folder>/results/<key>.json` holds the config, every attempt (start, end, host, process, status, error) and, once
done, the result record's path; it is written atomically at each attempt's start and end. A rerun of the same command
skips the keys that are done before anything starts (Ray included), so a killed sweep resumes where it stopped.

Every run is `runner.run` (fit, then evaluation, then the result record), as `cli.py fit` does it; records go to
`<folder>/runs/<group>/` where runs of one evaluation and trainer setting meet, so a method's Retrain-relative
measures find the Retrain run of the same request and seed: those runs start after it (`depends_on`).
Executors: `local` runs one run after another in this process; `ray` runs each as a Ray task (`RAY_ADDRESS`, or a
local instance with `workers` CPUs), `cpus_per_run` CPUs and `gpus_per_run` GPUs each (fractions allowed), retried
`retries` times when it raises or its worker or node dies. A run keeps a checkpoint of its last finished epoch in
`<folder>/checkpoints/<key>/` (removed once its record is written), so a retry, or the rerun of a killed sweep, goes
on from there to the uninterrupted run's result (`runner.run(checkpoints=…)`); the attempt says `resumed`.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib
import inspect
import itertools
import json
import os
import socket
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import torch
import yaml

from benchmark.core.errors import UnlearnBenchError
from benchmark.core.paths import atomic_write_bytes, home
from benchmark.core.validation import with_value
from benchmark.experiment import runner
from benchmark.experiment.plan import duration, estimate
from benchmark.training import obtain_original
from benchmark.metrics.evaluator import Evaluation
from benchmark.models.pretraining import Pretrained
from datamodules.scenarios import UnlearningScenario
from methods import UnlearningMethod
from methods.base import ROOT, load_method

PLACEMENT = {"trainer": ("devices", "num_nodes", "strategy", "logger", "enable_progress_bar", "callbacks", "default_root_dir"),
             "data": ("data_root", "num_workers", "request_dir", "resident")}
"""Keys of a run's config that say where and how it runs, not what it computes: left out of its key (except the
callbacks that change what it computes: `computing_callbacks`)."""

SPEC_KEYS = ("name", "base", "methods", "scenarios", "seeds", "overrides")


@dataclass(frozen=True)
class Run:
    """One run of a sweep: its config as written (method files by path), its key, the folder its record goes to, the
    key of the Retrain run it waits for, and which original it starts from."""

    key: str
    config: dict
    label: str
    records: str
    depends_on: str | None = None
    original: str = ""
    note: dict = field(default_factory=dict)
    """What the record's `config` says besides the run's config (a suite's name and row)."""


@dataclass
class Sweep:
    name: str
    folder: Path
    runs: list[Run] = field(default_factory=list)
    duplicates: int = 0
    keys: dict[str, str] = field(default_factory=dict)
    """Every given config's label and its run's key (two configs that compute the same share one run)."""
    recorded: int = 0
    """Runs left out because their record exists already (a suite's runs made by the local executor)."""

    def state(self, run: Run) -> dict | None:
        return read_state(self.folder, run.key)

    def done(self, run: Run) -> bool:
        state = self.state(run)
        return bool(state and state.get("status") == "done" and Path(state.get("record", "")).exists())


@functools.cache
def _parser():
    """The `cli.py fit` config's parser for what a run computes: method, scenario, original, evaluation, seed, trainer."""
    from lightning.pytorch.cli import LightningArgumentParser

    parser = LightningArgumentParser(exit_on_error=False)
    parser.add_lightning_class_args(UnlearningMethod, "model", subclass_mode=True, required=True)
    parser.add_lightning_class_args(UnlearningScenario, "data", subclass_mode=True, required=True)
    parser.add_class_arguments(Pretrained, "pretrained")
    parser.add_class_arguments(Evaluation, "evaluation")
    parser.add_argument("--seed_everything", type=int, default=0)
    parser.add_argument("--trainer", type=dict, default={})
    return parser


def fit_config(method: type, init_args: dict, scenario: type, scenario_args: dict, pretrained: Pretrained, evaluation: Evaluation,
               seed: int) -> dict:
    """A `cli.py fit` config of classes and settings (how suites and tuning give their runs to a sweep)."""
    return {"model": {"class_path": f"{method.__module__}.{method.__qualname__}", "init_args": dict(init_args)},
            "data": {"class_path": f"{scenario.__module__}.{scenario.__qualname__}", "init_args": dict(scenario_args)},
            "pretrained": asdict(pretrained), "evaluation": json.loads(json.dumps(asdict(evaluation))), "seed_everything": seed}


def with_method_files(config: dict) -> dict:
    """`model.class_path: file.py:Class` (as `cli.py fit --model` takes it) imported and named by its import path."""
    spec = (config.get("model") or {}).get("class_path", "")
    if ".py:" not in spec:
        return config
    cls, _ = load_method(spec)
    return {**config, "model": {**config["model"], "class_path": f"{cls.__module__}.{cls.__qualname__}"}}


def resolve(config: dict, label: str = "run"):
    """`config` parsed (every default filled in): (jsonargparse namespace, the config as canonical JSON-able dict)."""
    from jsonargparse import ArgumentError

    config = with_method_files(config)
    unknown = set(config.get("trainer") or {}) - set(inspect.signature(pl.Trainer.__init__).parameters)
    if unknown:
        raise UnlearnBenchError(f"{label}: trainer.{sorted(unknown)[0]} is not a setting of lightning's Trainer")
    parser = _parser()
    try:
        namespace = parser.parse_object(config)
    except ArgumentError as error:
        lines = [line.strip(" -") for line in str(error).splitlines() if line.strip(" -")]
        problem = next((i for i, line in enumerate(lines) if line.startswith("Problem with given class_path")), None)
        shown = [lines[problem].replace("Problem with given class_path ", "").rstrip(":"), lines[problem + 1]] if problem is not None else lines[:2]
        raise UnlearnBenchError(f"{label}: {': '.join(shown) or 'invalid config'}") from None
    return namespace, json.loads(parser.dump(namespace, format="json", skip_check=True))


def run_key(resolved: dict) -> str:
    """16 hex digits of the SHA-256 of the resolved config without its `PLACEMENT` keys, as canonical JSON."""
    content = copy.deepcopy(resolved)
    for group, keys in PLACEMENT.items():
        section = content.get(group) or {}
        section = section.get("init_args", section) if group == "data" else section
        for key in keys:
            section.pop(key, None)
    if "trainer" in content:
        content["trainer"] = _computing_trainer(resolved["trainer"])
    return _digest(content)


def computing_callbacks(callbacks: Any) -> list:
    """The entries of a config's `trainer.callbacks` whose class changes what a run computes, as its `numerics` say
    (`ChannelsLast`, `Compile`); the others (progress, checkpoints) say only how it runs."""
    entries = callbacks if isinstance(callbacks, list) else [callbacks] if callbacks else []
    return [entry for entry in entries if isinstance(entry, dict) and hasattr(_named_class(entry.get("class_path", "")), "numerics")]


def _named_class(path: str) -> type | None:
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None


def _computing_trainer(trainer: dict) -> dict:
    """The trainer settings that change what a run computes: without the `PLACEMENT` keys, with `computing_callbacks`
    (only when there are some, so that the keys of runs without them stay as they were)."""
    kept = computing_callbacks(trainer.get("callbacks"))
    return _without(trainer, PLACEMENT["trainer"]) | ({"callbacks": kept} if kept else {})


def _digest(content: Any) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def _method_config(entry: Any, where: Path) -> dict:
    if isinstance(entry, dict) and "class_path" in entry:
        return {**copy.deepcopy(entry), **_method_config(entry["class_path"], where)} if ".py:" in entry["class_path"] else copy.deepcopy(entry)
    if not isinstance(entry, str):
        raise UnlearnBenchError(f"methods: {entry!r} is not a method name, a config file, file.py:Class or {{class_path, init_args}}")
    if entry.endswith((".yaml", ".yml")):
        path = next((p for p in (where / entry, ROOT / entry, Path(entry)) if p.is_file()), None)
        if path is None:
            raise UnlearnBenchError(f"methods: config file {entry} does not exist")
        config = yaml.safe_load(path.read_text()) or {}
        return {"class_path": config["class_path"], "init_args": dict(config.get("init_args") or {})} if "class_path" in config else \
            _method_config(config.get("model"), where)
    if ".py:" in entry:
        file, _, name = entry.partition(":")
        path = where / file if (where / file).is_file() else Path(file)
        return {"class_path": f"{path.resolve()}:{name}"}
    return {"class_path": entry}


def _as_list(spec: dict, key: str, default: list) -> list:
    value = spec.get(key)
    if value is None:
        return default
    return value if isinstance(value, list) else [value]


def expand(spec: dict, where: Path) -> tuple[list[tuple[dict, str]], int]:
    """The sweep file's runs as (config, label), in order: methods × scenarios × seeds × overrides."""
    if not isinstance(spec, dict) or set(spec) - set(SPEC_KEYS):
        extra = sorted(set(spec) - set(SPEC_KEYS)) if isinstance(spec, dict) else spec
        raise UnlearnBenchError(f"a sweep file is a mapping of {', '.join(SPEC_KEYS)}; got {extra}")
    base = spec.get("base") or {}
    entries = _as_list(spec, "methods", [])
    methods = [_method_config(m, where) for m in entries]
    if not methods:
        raise UnlearnBenchError("a sweep needs `methods`, e.g. methods: [Retrain, FineTune]")
    scenarios = [{"class_path": s} if isinstance(s, str) else s for s in _as_list(spec, "scenarios", [base["data"]] if "data" in base else [])]
    if not scenarios:
        raise UnlearnBenchError("a sweep needs a scenario: `scenarios: [...]` or `base: {data: ...}`")
    seeds = _as_list(spec, "seeds", [base.get("seed_everything", 0)])
    overrides = spec.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise UnlearnBenchError("`overrides` maps dotted keys to lists of values, e.g. {model.init_args.budget.max_epochs: [1, 5]}")
    paths, grids = list(overrides), [v if isinstance(v, list) else [v] for v in overrides.values()]
    runs = []
    names = [m["class_path"].rpartition(":" if ".py:" in m["class_path"] else ".")[2]
             + (f" ({Path(e).stem})" if isinstance(e, str) and e.endswith((".yaml", ".yml")) else "") for m, e in zip(methods, entries)]
    takes = {path: [_takes(m["class_path"], path) for m in methods] for path in paths}
    for path, which in takes.items():
        if not any(which):
            raise UnlearnBenchError(f"override {path}: no method of the sweep takes '{path.split('.')[2]}'")
    for (i, (method, name)), scenario, seed, values in itertools.product(enumerate(zip(methods, names)), scenarios, seeds, itertools.product(*grids)):
        config = {**copy.deepcopy(base), "model": copy.deepcopy(method), "data": copy.deepcopy(scenario), "seed_everything": seed}
        applied = [(path, value) for path, value in zip(paths, values) if takes[path][i]]
        for path, value in applied:
            config = with_value(config, path, value)
        label = " ".join([name, scenario.get("class_path", "?").rpartition(".")[2], f"seed {seed}", *(f"{p}={v}" for p, v in applied)])
        runs.append((config, label))
    return runs, len(runs)


def _takes(class_path: str, path: str) -> bool:
    """Whether the method `class_path` takes the setting a `model.init_args.<setting>…` override sets (other overrides
    apply to every run): a model override applies to the methods that take it (Retrain takes no optimizer)."""
    if not path.startswith("model.init_args.") or len(path.split(".")) < 3:
        return True
    if ":" in class_path or "." not in class_path:  # a method file or a registered name
        cls = load_method(class_path)[0]
    else:
        module, _, name = class_path.rpartition(".")
        cls = getattr(importlib.import_module(module), name, None)
    return cls is None or path.split(".")[2] in inspect.signature(cls).parameters


def load_sweep(path: str | Path, folder: str | Path | None = None) -> Sweep:
    """The sweep file at `path`, expanded and resolved (a bad run config is refused here, before anything runs)."""
    path = Path(path)
    try:
        spec = yaml.safe_load(path.read_text())
    except OSError as error:
        raise UnlearnBenchError(f"cannot read the sweep file {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise UnlearnBenchError(f"sweep file {path} is not valid YAML: {str(error).splitlines()[0]}") from None
    configs, _ = expand(spec, path.parent)
    name = str((spec or {}).get("name") or path.stem)
    return plan_sweep(name, configs, Path(folder) if folder else home() / "sweeps" / name, f"sweep {path.name}, ")


def plan_sweep(name: str, configs: list[tuple[dict, str]], folder: Path, where: str = "", records: Path | None = None,
               notes: list[dict] | None = None) -> Sweep:
    """The runs of (config, label) pairs, resolved and keyed, duplicates dropped, each Retrain run before the runs that
    wait for it. Records go to `records` (a suite's folder) or to `<folder>/runs/<group>`; `notes` join their configs."""
    sweep = Sweep(name, folder)
    retrains, seen = {}, set()
    for (config, label), note in zip(configs, notes or [{}] * len(configs)):
        _, resolved = resolve(config, f"{where}{label}")
        key = run_key(resolved)
        sweep.keys[label] = key
        if key in seen:
            sweep.duplicates += 1
            continue
        seen.add(key)
        group = _digest({"evaluation": resolved["evaluation"], "trainer": _computing_trainer(resolved["trainer"])})
        reference = _digest({"data": _without(resolved["data"]["init_args"], PLACEMENT["data"]) | {"class": resolved["data"]["class_path"]},
                             "pretrained": resolved["pretrained"], "seed": resolved["seed_everything"], "group": group})
        is_retrain = resolved["model"]["class_path"].rpartition(".")[2] == "Retrain"
        if is_retrain:
            retrains[reference] = key
        original = _digest({"pretrained": resolved["pretrained"], "dataset": resolved["data"]["init_args"].get("dataset")})
        sweep.runs.append(Run(key, config, label, str(records or folder / "runs" / group), None if is_retrain else reference, original, note))
    sweep.runs = [replace(r, depends_on=retrains.get(r.depends_on)) for r in sweep.runs]
    sweep.runs.sort(key=lambda r: r.depends_on is not None)  # (stable: Retrain runs first, the given order otherwise)
    return sweep


def _without(mapping: dict, keys: tuple[str, ...]) -> dict:
    return {k: v for k, v in mapping.items() if k not in keys}


def read_state(folder: str | Path, key: str) -> dict | None:
    path = Path(folder) / "results" / f"{key}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _write_state(folder: Path, state: dict) -> None:
    atomic_write_bytes(folder / "results" / f"{state['key']}.json", (json.dumps(state, indent=1) + "\n").encode())


def make_original(config: dict, threads: int | None = None) -> None:
    """Pretrain (or find cached) the original model a run starts from (a Ray task before that original's runs: the
    runs would otherwise all train it at once)."""
    if threads:
        torch.set_num_threads(threads)
    namespace, _ = resolve(config)
    made = _parser().instantiate_classes(namespace)
    obtain_original(made.data, made.pretrained, progress=False)


def execute(config: dict, key: str, folder: str, records: str, note: dict, progress: bool = False, threads: int | None = None,
            *waits_for: Any) -> str:
    """One run of a sweep (the local executor's step and the Ray task): `runner.run` on the resolved config, each
    attempt noted in `<folder>/results/<key>.json` before it starts and when it ends, resumed from the checkpoint of the
    last epoch an earlier attempt finished; returns the result record's path.
    `waits_for` are the results of the runs it waits for (Ray starts it after them)."""
    folder = Path(folder)
    state = read_state(folder, key) or {"key": key, "config": config, "attempts": []}
    checkpoints = folder / "checkpoints" / key
    attempt = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": socket.gethostname(), "pid": os.getpid(), "status": "running",
               "resumed": (checkpoints / "last.ckpt").exists()}
    state["attempts"].append(attempt)
    state["status"] = "running"
    _write_state(folder, state)
    started, previous = time.perf_counter(), torch.get_num_threads()
    try:
        if threads:
            torch.set_num_threads(threads)
        namespace, resolved = resolve(config)
        pl.seed_everything(resolved["seed_everything"], verbose=False)
        made = _parser().instantiate_classes(namespace)
        trainer = {k: v for k, v in resolved["trainer"].items() if k not in ("callbacks", "enable_progress_bar")}
        if trainer.get("devices", "auto") == "auto":
            trainer["devices"] = 1  # (one process: Lightning's "auto" is every GPU of the machine; on Ray, the task's)
        record = runner.run(made.model, made.data, made.pretrained, resolved["seed_everything"], trainer, {**resolved, "sweep": {"key": key}, **note},
                            records, progress=progress, evaluation=made.evaluation, checkpoints=checkpoints)
    except BaseException as error:
        attempt.update(status="failed", error=f"{type(error).__name__}: {error}", ended=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        state["status"] = "failed"
        _write_state(folder, state)
        raise
    finally:
        torch.set_num_threads(previous)
    attempt.update(status="done", ended=time.strftime("%Y-%m-%dT%H:%M:%S%z"), seconds=time.perf_counter() - started)
    state.update(status="done", record=record["path"])
    _write_state(folder, state)
    return record["path"]


def run_sweep(path: str | Path | Sweep, executor: Literal["local", "ray"] = "local", workers: int | None = None, cpus_per_run: int | None = None,
              gpus_per_run: float = 0.0, retries: int = 2, folder: str | Path | None = None, plan: bool = False,
              progress: bool = True) -> dict:
    """Run the runs of the sweep file at `path` (or of a planned `Sweep`) not done yet; return {"sweep", "folder", "runs",
    "cached", "ran", "failed", "records"}."""
    sweep = path if isinstance(path, Sweep) else load_sweep(path, folder)
    pending = [r for r in sweep.runs if not sweep.done(r)]
    say = (lambda text: print(text, file=sys.stderr, flush=True)) if progress else (lambda text: None)
    say(f"sweep {sweep.name}: {len(sweep.runs)} runs ({len(sweep.runs) - len(pending)} done before"
        + (f", {sweep.duplicates} duplicate configs dropped" if sweep.duplicates else "")
        + (f"; {sweep.recorded} more recorded before, left out" if sweep.recorded else "") + f"); folder {sweep.folder}")
    failed: dict[str, str] = {}
    several = [run.label for run in pending if any(_several(run.config.get("trainer", {}).get(k)) for k in ("devices", "num_nodes"))]
    if several and not plan:
        raise UnlearnBenchError(f"{several[0]}: a sweep's run is one process, and this run asks trainer.devices / num_nodes > 1 (Lightning "
                                "would start the others by running the sweep's command, or the Ray worker's, again); give it 1 device (a "
                                "GPU per Ray task: --gpus_per_run 1), or run it as `cli.py fit` under torchrun / srun")
    estimated = None
    if plan:
        estimated = estimate([(run.key, made.model, made.data, made.pretrained, made.evaluation) for run in pending
                              for made in [_parser().instantiate_classes(resolve(run.config, run.label)[0])]])
        for run in sweep.runs:
            state = sweep.state(run) or {}
            took = estimated.seconds.get(run.key)
            print(f"{run.key}  {'done' if sweep.done(run) else state.get('status', 'to run'):8s} {'~' + duration(took) if took is not None else '':>8s}  {run.label}")
        if pending:
            print(estimated.summary())
    elif pending and executor == "local":
        failed = _run_local(sweep, pending, cpus_per_run, retries, say, progress)
    elif pending:
        failed = _run_ray(sweep, pending, workers, cpus_per_run or 1, gpus_per_run, retries, say)
    records = [runner.load_record(Path(s["record"])).to_dict() for r in sweep.runs if sweep.done(r) and (s := sweep.state(r))]
    return {"sweep": sweep.name, "folder": str(sweep.folder), "runs": len(sweep.runs), "cached": len(sweep.runs) - len(pending),
            "ran": 0 if plan else len(pending) - len(failed), "failed": failed, "records": records, "estimate": estimated}


def _several(value: Any) -> bool:
    """Whether a `trainer.devices` / `num_nodes` value asks for more than one (2, "2", "0,1", [0, 1], -1: every GPU)."""
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()] if "," in value else int(value) if value.strip().lstrip("-").isdigit() else 1
    return len(value) > 1 if isinstance(value, (list, tuple)) else isinstance(value, int) and (value > 1 or value == -1)


def _run_local(sweep: Sweep, pending: list[Run], threads: int | None, retries: int, say, progress: bool) -> dict[str, str]:
    failed: dict[str, str] = {}
    for i, run in enumerate(pending, 1):
        if run.depends_on in failed:
            failed[run.key] = f"its Retrain run {run.depends_on} failed"
            continue
        for attempt in range(retries + 1):
            try:
                started = time.perf_counter()
                execute(run.config, run.key, str(sweep.folder), run.records, run.note, progress and sys.stderr.isatty(), threads)
                say(f"[{i}/{len(pending)}] {run.label}: done in {time.perf_counter() - started:.1f} s")
                break
            except UnlearnBenchError as error:  # (a user error: a retry would fail the same way)
                failed[run.key] = str(error)
                break
            except Exception as error:  # noqa: BLE001 (retried, then reported with the others)
                failed[run.key] = f"{type(error).__name__}: {error}"
                if attempt == retries:
                    break
        if run.key in failed:
            say(f"[{i}/{len(pending)}] {run.label}: FAILED ({failed[run.key]})")
    return failed


def _run_ray(sweep: Sweep, pending: list[Run], workers: int | None, cpus: float, gpus: float, retries: int, say) -> dict[str, str]:
    try:
        import ray
    except ImportError:
        raise UnlearnBenchError("--executor ray needs Ray: pip install -e '.[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        address = os.environ.get("RAY_ADDRESS")
        env = {k: os.environ[k] for k in ("UNLEARNBENCH_HOME", "OMP_NUM_THREADS") if k in os.environ}
        ray.init(address=address or "local", num_cpus=None if address else (workers or os.cpu_count()), include_dashboard=False,
                 log_to_driver=False, runtime_env={"env_vars": env}, logging_level="WARNING")  # ("local": a new instance, even
        # when this machine runs a Ray cluster, which Ray would otherwise join and then refuse num_cpus; seen)
    options = {"num_cpus": cpus, "num_gpus": gpus, "max_retries": retries, "retry_exceptions": True}
    task, original = ray.remote(**options)(execute), ray.remote(**options)(make_original)
    originals = {run.original: original.remote(run.config, int(cpus) or 1) for run in reversed(pending)}
    futures: dict[Any, Run] = {}
    by_key: dict[str, Any] = {}
    for run in pending:  # (Retrain runs first: a run waiting for one is given its future)
        waits = [originals[run.original], *([by_key[run.depends_on]] if run.depends_on in by_key else [])]
        by_key[run.key] = task.remote(run.config, run.key, str(sweep.folder), run.records, run.note, False, int(cpus) or 1, *waits)
        futures[by_key[run.key]] = run
    failed: dict[str, str] = {}
    try:
        remaining = list(futures)
        while remaining:
            done, remaining = ray.wait(remaining, num_returns=1)
            run = futures[done[0]]
            try:
                ray.get(done[0])
                state = sweep.state(run) or {}
                say(f"[{len(futures) - len(remaining)}/{len(futures)}] {run.label}: done (attempts: {len(state.get('attempts', []))})")
            except Exception as error:  # noqa: BLE001 (a run that failed every retry: reported, the others go on)
                failed[run.key] = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
                say(f"[{len(futures) - len(remaining)}/{len(futures)}] {run.label}: FAILED ({failed[run.key]})")
    finally:
        if started_here:
            ray.shutdown()
    return failed
