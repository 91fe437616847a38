"""The leaderboard commands: `submit`, `verify`, `render`, `tune` (`COMMANDS[name](argv)`, dispatched by `cli.py`)."""

from __future__ import annotations

import glob
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import yaml
from jsonargparse import auto_cli

from benchmark.core.errors import UnlearnBenchError
from benchmark.leaderboard.render import render
from benchmark.leaderboard.submit import submit, verify
from benchmark.leaderboard.tracks import LEADERBOARD
from benchmark.leaderboard.tuning import tune


class _Loader(yaml.SafeLoader):
    """YAML with `1e-4` a number (YAML 1.1's float needs a dot: PyYAML reads `1e-4` as a string)."""


_Loader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[0-9][0-9_]*[eE][-+]?[0-9]+"
                                                                    r"|\.[0-9_]+(?:[eE][-+]?[0-9]+)?|\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
                              list("-+0123456789."))


def mapping(text: str | None, name: str) -> dict:
    """A command's YAML / JSON mapping argument, read as written: jsonargparse would turn a nested `class_path` (an
    optimizer's) into a namespace of the class's every argument."""
    if text is None:
        return {}
    try:
        value = yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as error:
        raise UnlearnBenchError(f"--{name} is not valid YAML / JSON ({str(error).splitlines()[0]}): {text}") from None
    if not isinstance(value, dict):
        raise UnlearnBenchError(f"--{name} must be a mapping such as '{{key: value}}', got {text!r}")
    return value


def submit_command(method: str, track: str, init_args: str | None = None, leaderboard: str = str(LEADERBOARD),
                   results_dir: str | None = None, no_render: bool = False, progress: bool | None = None, replace: bool = False) -> Path:
    """Run a track's protocol over its seeds with a method and write its leaderboard entry (then render the leaderboard).

    Args:
        method: a registered method (NegGrad) or path/to/file.py:ClassName (a subclass of methods.base.UnlearningMethod).
        track: a track name (see leaderboard/tracks) or a track YAML file.
        init_args: the method's constructor arguments as YAML/JSON, e.g. '{optimizer: {init_args: {lr: 1e-4}}}' (default: its defaults).
        leaderboard: the leaderboard folder (tracks/, entries/; default: the repository's).
        results_dir: where the runs' result records go (default $UNLEARNBENCH_HOME/leaderboard/<track>).
        no_render: do not regenerate README.md and index.html.
        progress: show progress bars (default: when standard error is a terminal).
        replace: replace an entry of the same method made with another configuration (refused otherwise).
    """
    progress = sys.stderr.isatty() if progress is None else progress
    path = submit(track, method, mapping(init_args, "init_args"), Path(leaderboard), results_dir, progress, replace)
    print(f"entry: {path}")
    if not no_render:
        for written in render(Path(leaderboard)):
            print(f"rendered: {written}")
    return path


def entry_files(entries: str | list[str]) -> list[Path]:
    """The entry files named by files, folders of them or glob patterns, in the order given (each folder's sorted)."""
    paths = []
    for given in [entries] if isinstance(entries, str) else entries:
        matches = [Path(match) for match in sorted(glob.glob(given))] if glob.has_magic(given) else [Path(given)]
        if not matches:
            raise UnlearnBenchError(f"no entry file matches {given}")
        for path in matches:
            paths += sorted(path.glob("*.json")) if path.is_dir() else [path]
    return paths


def verify_command(entries: str | list[str], seeds: list[int] | None = None, leaderboard: str | None = None, progress: bool | None = None) -> list[dict]:
    """Recompute leaderboard entries and fail when a value differs from the entry beyond the track's tolerance.

    Args:
        entries: an entry JSON file, a folder of them (leaderboard/entries/digits-random10), a quoted glob pattern
            ('leaderboard/entries/digits-*/*.json'), or a list of these ('[a.json, b.json]').
        seeds: recompute only these seeds' runs, e.g. '[0]' (default: all).
        leaderboard: the leaderboard folder (default: the one holding the entry).
        progress: show progress bars (default: when standard error is a terminal).
    """
    progress = sys.stderr.isatty() if progress is None else progress
    reports = []
    for path in entry_files(entries):
        folder = Path(leaderboard) if leaderboard else path.resolve().parents[2]
        reports.append(verify(path, seeds, folder, progress))
    print(json.dumps([{k: r[k] for k in ("method", "track", "seeds", "numbers", "max_abs_difference", "tolerance")} for r in reports], indent=1))
    return reports


def render_command(leaderboard: str = str(LEADERBOARD)) -> list[Path]:
    """Regenerate leaderboard/README.md and leaderboard/index.html from the tracks and entries.

    Args:
        leaderboard: the leaderboard folder (default: the repository's).
    """
    written = render(Path(leaderboard))
    for path in written:
        print(f"rendered: {path}")
    return written


def tune_command(method: str, track: str, space: str, trials: int = 20, seeds: list[int] | None = None,
                 scenario: str | None = None, init_args: str | None = None, output: str | None = None,
                 progress: bool | None = None, executor: Literal["local", "ray"] = "local", parallel: int = 1,
                 workers: int | None = None, cpus_per_run: int | None = None, gpus_per_run: float = 0.0) -> dict:
    """Search a method's hyperparameters on a track's protocol without touching what the track measures (other forget
    requests, no D_test): Optuna TPE, a fixed number of trials; writes configs/methods/<Method>/tuned-<track>.yaml and
    the search's record beside it (benchmark/leaderboard/tuning.py). Resumes an interrupted search.

    Args:
        method: a registered method (SalUn).
        track: a track name (see leaderboard/tracks) or a track YAML file.
        space: the searched settings, e.g. '{optimizer.init_args.lr: [1e-4, 1e-1, log], ratio: [0.1, 0.9]}'
            ([low, high], [low, high, log | int | log int], or {choices: [...]}).
        trials: the search's budget in trials (each runs the method once per tuning seed).
        seeds: the tuning seeds (default [100, 101]); a track whose request does not change with the seed also needs
            `scenario` overrides.
        scenario: overrides of the track's scenario arguments for the tuning requests, e.g. '{classes: [1]}'.
        init_args: the method's other arguments (default: its defaults).
        output: the config file to write (default configs/methods/<Method>/tuned-<track>.yaml).
        progress: show each run's progress (default: when standard error is a terminal).
        executor: where the trials' runs go: `local` (this process) or `ray` (Ray tasks, as `cli.py sweep`).
        parallel: trials asked of Optuna at a time (their runs go to the executor together).
        workers: CPUs of a local Ray instance (default: all).
        cpus_per_run: torch threads (and Ray CPUs) per run.
        gpus_per_run: GPUs per Ray task.
    """
    progress = sys.stderr.isatty() if progress is None else progress
    record = tune(method, track, mapping(space, "space"), trials, tuple(seeds or (100, 101)), mapping(scenario, "scenario"),
                  mapping(init_args, "init_args"), output, progress, executor=executor, parallel=parallel, workers=workers,
                  cpus_per_run=cpus_per_run, gpus_per_run=gpus_per_run)
    best = record["best"]
    print(f"best of {len(record['history'])} trials: trial {best['trial']}, objective {best['value']:.4f} ({', '.join(record['objective']['metrics'])} "
          f"vs Retrain), {json.dumps(best['params'])}\nconfig: {record['config']}")
    return record


def _command(function: Callable, as_positional: bool = True) -> Callable[[list[str]], object]:
    """`function` as a command: its typed arguments and docstring are the options and `--help` (required ones positional
    unless `as_positional` is False)."""
    return lambda argv: auto_cli(function, args=argv, as_positional=as_positional)


COMMANDS: dict[str, Callable[[list[str]], object]] = {"submit": _command(submit_command, as_positional=False), "verify": _command(verify_command),
                                                      "render": _command(render_command),
                                                      "tune": _command(tune_command, as_positional=False)}
