"""Hyperparameter search for a method on a track's protocol, for the methods whose papers give no values (SalUn's table
values were never released; RL's and GA's learning rates were "searched in [1e-4, 1e-1]").

The budget is fixed and documented: `trials` trials of Optuna's TPE sampler (seeded), each trial the mean objective over
the tuning `seeds`. The search never sees what the leaderboard measures:
- its forget requests are the track's scenario with the tuning seeds (and `scenario` overrides, e.g. another class of a
  class track), refused when one equals a request of the track's runs;
- its objective is Deep Unlearn's kind (xcadet/deepunlearn @ munl/hpsearch/objectives.py: the gaps to the retrained model)
  restricted to the track's gap metrics that read neither D_test nor an attack fitted on D_test: the mean over the tuning
  seeds and those metrics of |m − m_Retrain|, Retrain run on the same tuning request and seed (cached).
The study lives in an SQLite file under `$UNLEARNBENCH_HOME/tuning/` and every run of a trial is a cached sweep run
(`benchmark.experiment.sweep`, locally or on Ray), so an interrupted search resumes where it stopped: the trial it was
running is evaluated from the runs it finished and the rest are run; no finished trial is repeated. The chosen values are written as a method config YAML beside the method's defaults, with the search's record (every
trial's values and objective, the space, the seeds, the budget) as JSON next to it.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from benchmark.core.errors import UnlearnBenchError
from benchmark.core.paths import atomic_write_bytes, home
from benchmark.core.validation import with_value
from benchmark.experiment.sweep import fit_config, plan_sweep, run_sweep
from benchmark.leaderboard.submit import load_method
from benchmark.leaderboard.tracks import ROOT, Track, check_original, load_track
from methods import METHODS
from methods.base import load_defaults

TEST_READING = ("test", "mia/")
"""Metric name prefixes that read D_test: test-split accuracies, and the attacks (fitted on test rows as non-members)."""


@dataclass(frozen=True)
class Dimension:
    """One searched setting: a dotted init-argument path (`optimizer.init_args.lr`, `ratio`) and its range or choices."""

    name: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    integer: bool = False
    choices: tuple | None = None

    def suggest(self, trial) -> Any:
        if self.choices is not None:
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)


def parse_space(space: dict) -> list[Dimension]:
    """`{path: [low, high]}`, `{path: [low, high, "log"]}`, `{path: [low, high, "int"]}` or `{path: {"choices": [...]}}`."""
    if not isinstance(space, dict) or not space:
        raise UnlearnBenchError("give a search space, e.g. {'optimizer.init_args.lr': [1e-4, 1e-1, 'log']}")
    dimensions = []
    for name, spec in space.items():
        if isinstance(spec, dict) and set(spec) == {"choices"} and isinstance(spec["choices"], list) and spec["choices"]:
            dimensions.append(Dimension(name, choices=tuple(spec["choices"])))
            continue
        if not (isinstance(spec, list) and len(spec) in (2, 3) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in spec[:2])
                and (len(spec) == 2 or spec[2] in ("log", "int", "log int"))):
            raise UnlearnBenchError(f"search space '{name}': {spec!r} is not [low, high], [low, high, 'log' | 'int' | 'log int'] "
                                    "or {'choices': [...]}")
        low, high, kind = spec[0], spec[1], spec[2] if len(spec) == 3 else ""
        if not low < high or ("log" in kind and low <= 0):
            raise UnlearnBenchError(f"search space '{name}': needs low < high{' and low > 0 on a log scale' if 'log' in kind else ''}, got {spec!r}")
        dimensions.append(Dimension(name, low, high, log="log" in kind, integer="int" in kind))
    return dimensions


def objective_metrics(track: Track) -> tuple[str, ...]:
    """The track's gap metrics that read neither D_test nor an attack fitted on it."""
    kept = tuple(m for m in track.ranking.gap_metrics if not m.startswith(TEST_READING))
    if not kept:
        raise UnlearnBenchError(f"track {track.name}: every gap metric ({', '.join(track.ranking.gap_metrics)}) reads D_test; nothing to tune on")
    return kept


def tuning_scenario(track: Track, seed: int, overrides: dict):
    """The scenario of a tuning run, set up; refused when its request is one the track's runs measure."""
    scenario = track.make_scenario(seed, **overrides)
    scenario.setup()
    if scenario.request.hash in {r["request"] for r in track.runs}:
        raise UnlearnBenchError(f"track {track.name}: the tuning request of seed {seed} is one of the track's own requests "
                                f"({scenario.request.hash[:16]}…); tune on other data: other seeds"
                                + ("" if track.scenario.get("seed_arg") else ", and scenario overrides (the track's request does not change with the seed), "
                                   "e.g. {'classes': [1]}"))
    return scenario


def gap(record: dict, reference: dict, metrics: tuple[str, ...]) -> float:
    """Mean |m − m_reference| over `metrics`; a diverged run (a missing value) is the worst gap, 1."""
    values = [abs(record["metrics"][m] - reference["metrics"][m]) if record["metrics"].get(m) is not None else 1.0 for m in metrics]
    return sum(values) / len(values)


def tune(method: str, track: str | Track, space: dict, trials: int = 20, seeds: tuple[int, ...] = (100, 101), scenario: dict | None = None,
         init_args: dict | None = None, output: str | None = None, progress: bool = False, sampler_seed: int = 0,
         executor: Literal["local", "ray"] = "local", parallel: int = 1, workers: int | None = None, cpus_per_run: int | None = None,
         gpus_per_run: float = 0.0) -> dict:
    """Search `space` for `method` on `track`'s protocol (see the module docstring); write the chosen config and the
    search's record; return the record. Optuna's ask and tell: `parallel` trials at a time, their runs (one per tuning
    seed) cached sweep runs on `executor` (`benchmark.experiment.sweep`); the trials a killed search left running are
    evaluated first when it resumes, from their cached runs."""
    if parallel < 1:
        raise UnlearnBenchError(f"parallel must be at least 1 trial, got {parallel}")
    import optuna  # (imported here: only this command needs it)

    track = track if isinstance(track, Track) else load_track(track)
    cls, source = load_method(method)
    if source["kind"] != "registered":
        raise UnlearnBenchError("tune a registered method (its config is written beside its defaults); a method file: register it first")
    dimensions, metrics, overrides = parse_space(space), objective_metrics(track), dict(scenario or {})
    base = dict(init_args or {})
    if trials < 1 or not seeds:
        raise UnlearnBenchError(f"a search needs at least one trial and one seed, got trials={trials}, seeds={list(seeds)}")
    scenarios = {seed: tuning_scenario(track, seed, overrides) for seed in seeds}  # (refused when one is the track's)
    check_original(track, next(iter(scenarios.values())))
    pretrained, evaluation = track.make_pretrained(), dataclasses.replace(track.make_evaluation(), mia=False)  # (no attack is an objective)
    results_dir = home() / "tuning" / track.name / "runs"

    def config(method: type, init: dict, seed: int) -> dict:
        return fit_config(method, init, *track.scenario_spec(seed, **overrides), pretrained, evaluation, seed)

    def run(name: str, runs: list[tuple[dict, str, dict]]) -> dict[str, dict]:
        """The runs as cached sweep tasks (`benchmark.experiment.sweep`): {label: record}; the failed ones missing."""
        sweep = plan_sweep(name, [(c, label) for c, label, _ in runs], home() / "tuning" / study_name / "runs", records=results_dir,
                           notes=[note for _, _, note in runs])
        by_key = {r["config"]["sweep"]["key"]: r for r in run_sweep(sweep, executor, workers, cpus_per_run, gpus_per_run, progress=progress)["records"]}
        return {label: by_key[key] for label, key in sweep.keys.items() if key in by_key}  # (two trials of the same values share their runs)

    key = json.dumps({"method": cls.__name__, "space": space, "seeds": list(seeds), "scenario": overrides, "init_args": base,
                      "track": track.sha256, "sampler_seed": sampler_seed}, sort_keys=True)
    study_name = f"{cls.__name__}-{track.name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    note = {"command": "tune", "track": track.name}
    references = run("Retrain", [(config(METHODS.get("Retrain"), {}, seed), f"Retrain seed {seed}", note) for seed in seeds])
    references = {seed: references.get(f"Retrain seed {seed}") for seed in seeds}
    for seed, record in references.items():
        missing = metrics if record is None else [m for m in metrics if record["metrics"].get(m) is None]
        if missing:
            raise UnlearnBenchError(f"Retrain on the tuning request of seed {seed} {'failed' if record is None else 'reports no ' + ', '.join(missing)}")

    storage_path = home() / "tuning" / f"{study_name}.db"
    storage_path.parent.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=study_name, storage=f"sqlite:///{storage_path}", load_if_exists=True, direction="minimize",
                                sampler=optuna.samplers.TPESampler(seed=sampler_seed))
    running = optuna.trial.TrialState.RUNNING
    stale = [optuna.trial.Trial(study, t._trial_id) for t in study.trials if t.state == running]  # (a killed search's: their runs are cached)
    while (done := len([t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE])) < trials:
        batch = stale[:parallel] or [study.ask() for _ in range(min(parallel, trials - done))]
        stale = stale[len(batch):] if stale else []
        values = {trial.number: {d.name: trial.params[d.name] if d.name in trial.params else d.suggest(trial) for d in dimensions} for trial in batch}
        runs = []
        for trial in batch:
            args = base
            for name, value in values[trial.number].items():
                args = with_value(args, name, value)
            runs += [(config(cls, args, seed), f"trial {trial.number} seed {seed}", {**note, "trial": trial.number}) for seed in seeds]
        records = run(cls.__name__, runs)
        for trial in batch:
            done_runs = {seed: records.get(f"trial {trial.number} seed {seed}") for seed in seeds}
            if any(r is None for r in done_runs.values()):
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                continue
            for seed, record in done_runs.items():
                trial.set_user_attr(f"seed{seed}", {m: record["metrics"].get(m) for m in metrics})
            trial.set_user_attr("seconds", sum(r["timings"].get("cost/seconds", 0.0) + r["timings"].get("eval/seconds", 0.0) for r in done_runs.values()))
            study.tell(trial, sum(gap(r, references[seed], metrics) for seed, r in done_runs.items()) / len(seeds))
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise UnlearnBenchError(f"no trial of {cls.__name__} on {track.name} completed; the last failure: {study.trials[-1].user_attrs or 'see above'}")
    best = min(complete, key=lambda t: t.value)
    chosen = base
    for dimension in dimensions:
        chosen = with_value(chosen, dimension.name, best.params[dimension.name])
    record = {"method": cls.__name__, "track": track.name, "track_sha256": track.sha256, "study": study_name, "space": space, "trials": trials,
              "seeds": list(seeds), "scenario": overrides, "objective": {"metrics": list(metrics), "reference": "Retrain",
              "rule": "mean over seeds and metrics of |m - m_Retrain|"}, "sampler": f"optuna TPESampler(seed={sampler_seed})",
              "optuna": optuna.__version__, "best": {"trial": best.number, "value": best.value, "params": best.params},
              "reference": {str(seed): {m: r["metrics"][m] for m in metrics} for seed, r in references.items()},
              "history": [{"trial": t.number, "value": t.value, "params": t.params, **t.user_attrs} for t in complete]}
    config_path = Path(output) if output else ROOT / "configs" / "methods" / cls.__name__ / f"tuned-{track.name}.yaml"
    defaults = load_defaults(getattr(cls, "defaults", None))
    config = {"class_path": f"{cls.__module__}.{cls.__name__}", "init_args": _merged(defaults, chosen)}
    header = (f"# {cls.__name__} tuned on {track.name}'s protocol: {trials} trials of Optuna TPE over {json.dumps(space)}, tuning seeds "
              f"{list(seeds)}{' with ' + json.dumps(overrides) if overrides else ''}; objective: mean |m - m_Retrain| over "
              f"{', '.join(metrics)} (never D_test); best trial {best.number}: {best.value:.4f}. Record: {config_path.with_suffix('.json').name}\n")
    atomic_write_bytes(config_path, (header + yaml.safe_dump(config, sort_keys=False)).encode())
    atomic_write_bytes(config_path.with_suffix(".json"), (json.dumps(record, indent=1, allow_nan=False, default=_finite) + "\n").encode())
    return {**record, "config": str(config_path)}


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else str(value)


def _merged(defaults: dict, chosen: dict) -> dict:
    """`chosen` over `defaults`, groups merged key by key (the YAML then holds every setting of the tuned method)."""
    merged = copy.deepcopy(defaults)
    for key, value in chosen.items():
        merged[key] = _merged(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged
