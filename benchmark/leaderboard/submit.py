"""Submitting and verifying: run a track's protocol with a method, write its entry; recompute an entry.

A method is a registered name (`NegGrad`) or `path/to/file.py:ClassName`, a subclass of
`methods.base.UnlearningMethod` in the user's own file. Every run starts from the track's original
model (its weight hash checked) on the track's requests (their hashes checked), with the track's
evaluation, through the same `benchmark.runner.run` every command uses.

A method that raises, whose loss is not finite at its very first training step (a broken loss, as
opposed to a training that diverges later, which is a result: null metrics and `diverged`), or that
reads data outside its declared access is refused with a one-line `UnlearnBenchError`; no entry is
written. `verify` recomputes the runs and fails when a value differs from the entry's by more than
the track's `tolerance` (absolute, in the metric's own unit; `cost/*` are timings of a machine and
are not compared), or a value is null on one side only.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import math
import sys
import tempfile
from pathlib import Path

import torch

from benchmark.core.errors import UnlearnBenchError
from benchmark.core.paths import atomic_write_bytes, home
from benchmark.core.validation import differences
from benchmark.experiment import runner
from benchmark.experiment.continual import run_stream
from benchmark.leaderboard.entries import entry_path, run_metrics, write_entry
from benchmark.leaderboard.schema import load_entry
from benchmark.leaderboard.tracks import (
    LEADERBOARD,
    ROOT,
    Track,
    check_original,
    load_track,
    setup_run,
)
from methods.base import describe_error, file_sha256, load_method

def check_init_args(cls: type, init_args: dict) -> None:
    """Raise a one-line error when `cls(**init_args)` would not accept its arguments: a name it does not take (its
    settings listed), or a value its type hint does not allow (`core.validation`: one line naming both)."""
    try:
        inspect.signature(cls).bind(**init_args)
    except TypeError:
        unknown = sorted(set(init_args) - set(inspect.signature(cls).parameters))
        raise UnlearnBenchError(f"{cls.__name__} does not take {', '.join(unknown) or sorted(init_args)}; its settings: "
                                f"{', '.join(inspect.signature(cls).parameters) or 'none'}") from None


def instantiate(cls: type, init_args: dict):
    """`cls(**init_args)`, an argument it does not take reported in one line."""
    check_init_args(cls, init_args)
    return cls(**init_args)


def run_protocol(track: Track, cls: type, init_args: dict | None = None, source: dict | None = None, seeds: list[int] | None = None,
                 results_dir: str | None = None, progress: bool = False) -> tuple[list[dict], str, dict]:
    """Run `cls(**init_args)` on the track's runs (all, or those of `seeds`); return (records, original hash, hparams).

    A continual track's run is its stream unlearned step by step (`benchmark.experiment.continual.run_stream`, each
    step from the previous step's model, every measure at the last step), as `cli.py suite` runs it; a method whose
    result does not depend on the model it starts from (`ignores_original`: Retrain) is run on the last step directly.
    """
    init_args = dict(init_args or {})
    user_file = source_path(source) if source and source.get("kind") == "file" else None
    try:
        instantiate(cls, init_args)  # the arguments checked before any run, not after the first
    except UnlearnBenchError:
        raise
    except Exception as error:  # noqa: BLE001 (a submitted method's failure is reported, not a traceback)
        if user_file is None:
            raise
        raise UnlearnBenchError(f"{cls.__name__}({init_args}) raised {describe_error(error, user_file)}; no entry written") from error
    records, digest, hparams = [], None, {}
    with one_thread():
        for run in track.runs:
            if seeds is None or run["seed"] in seeds:
                record, digest, hparams = _run_one(track, cls, init_args, run["seed"], user_file, results_dir, progress)
                records.append(record)
    if not records:
        raise UnlearnBenchError(f"track {track.name} has no run with seed(s) {seeds}; its seeds: {track.seeds}")
    return records, digest, hparams


@contextlib.contextmanager
def one_thread():
    """Tracks run on one CPU thread: a run's numbers then do not depend on how many cores the machine has
    (the order of floating-point sums in multi-threaded kernels does, and unlearning can amplify it)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _run_one(track: Track, cls: type, init_args: dict, seed: int, user_file: Path | None, results_dir: str | None, progress: bool) -> tuple[dict, str, dict]:
    """One run of the track's protocol: (its record, the original model's hash, the method's hparams)."""
    name = cls.__name__
    scenario = setup_run(track, seed)
    digest = check_original(track, scenario)
    where = f"{name} on track {track.name}, seed {seed}"
    try:
        method = instantiate(cls, init_args)
        hparams = dict(method.hparams)  # (JSON values: `UnlearningMethod.hparams_of`)
        config = {"command": "submit", "track": track.name, "method": name, "init_args": init_args, "hparams": hparams}
        if track.kind == "continual" and not cls.ignores_original:
            step = scenario.step
            record = run_stream(method, scenario.stream, track.make_pretrained(), seed=seed, steps=step, evaluation=track.make_evaluation(),
                                results_dir=results_dir, progress=progress, config=config, measured_steps={step})[-1]
        else:
            record = runner.run(method, scenario, track.make_pretrained(), seed=seed, results_dir=results_dir, progress=progress,
                                evaluation=track.make_evaluation(), config=config)
    except UnlearnBenchError as error:
        raise UnlearnBenchError(f"{where}: {error}; no entry written") from error
    except Exception as error:  # noqa: BLE001 (a submitted method's failure is reported, not a traceback)
        if user_file is None:
            raise
        raise UnlearnBenchError(f"{where}: the method raised {describe_error(error, user_file)}; no entry written") from error
    diverged = record.get("diverged")
    if diverged and diverged.get("epoch", 0) == 0 and diverged.get("step", 0) <= 1:
        raise UnlearnBenchError(f"{where}: the training loss is not finite at the first step (a loss must be finite on the original "
                                "model; a training that diverges later is recorded as diverged); no entry written")
    return record, digest, hparams


def submit(track: str | Track, method: str, init_args: dict | None = None, leaderboard: Path = LEADERBOARD,
           results_dir: str | None = None, progress: bool = False, replace: bool = False) -> Path:
    """Run the track's protocol with `method` (a registered name or `file.py:Class`) and write its entry; a method
    file is kept beside the entries (`leaderboard/methods/`), so that `verify` and a pull request carry it.

    An entry of the same method with another configuration (init args, or method file) is not replaced unless `replace`."""
    track = track if isinstance(track, Track) else load_track(track, leaderboard)
    cls, source = load_method(method)
    check_replacement(entry_path(track.name, cls.__name__, leaderboard), init_args or {}, source, replace)
    results_dir = results_dir or str(home() / "leaderboard" / track.name)
    records, digest, hparams = run_protocol(track, cls, init_args, source, results_dir=results_dir, progress=progress)
    if source["kind"] == "file":
        source = keep_method_file(source, Path(leaderboard))
    return write_entry(track, cls.__name__, records, init_args=init_args, hparams=hparams, source=source, pretrained_sha256=digest, leaderboard=leaderboard)


def check_replacement(path: Path, init_args: dict, source: dict, replace: bool) -> None:
    """Refuse (before any run) to replace an entry made with another configuration, naming what differs."""
    if replace or not path.exists():
        return
    existing = json.loads(path.read_text())
    there = {"init_args": existing["config"]["init_args"], "source": {k: existing["source"].get(k) for k in ("kind", "class", "sha256")}}
    here = {"init_args": json.loads(json.dumps(init_args)), "source": {k: source.get(k) for k in ("kind", "class", "sha256")}}
    differ = differences(there, here)
    if differ:
        raise UnlearnBenchError(f"{path} holds {existing['method']} with another configuration ({'; '.join(differ)}); "
                                "give --replace true to replace it")


def keep_method_file(source: dict, leaderboard: Path) -> dict:
    """Copy a submitted method file to `<leaderboard>/methods/<name>-<sha256[:8]>.py`; return the source naming it
    relative to the leaderboard folder (no path of the submitter's machine in an entry)."""
    original = Path(source["file"])
    kept = Path("methods") / f"{original.stem}-{source['sha256'][:8]}.py"
    if not (leaderboard / kept).exists():
        atomic_write_bytes(leaderboard / kept, original.read_bytes())
    return {**source, "file": kept.as_posix()}


def source_path(source: dict, leaderboard: Path = LEADERBOARD) -> Path:
    """Where an entry's method file is: relative to the leaderboard folder (`methods/…`, as `submit` keeps it),
    or to the repository (entries made before), or absolute (a submission being run)."""
    path = Path(source["file"])
    if path.is_absolute():
        return path
    return leaderboard / path if (leaderboard / path).exists() else ROOT / path


def method_of(entry: dict, leaderboard: Path = LEADERBOARD) -> tuple[type, dict]:
    """The method class an entry was made with; a method file must still hash to what the entry says."""
    source = entry["source"]
    if source["kind"] == "registered":
        return load_method(entry["method"])
    path = source_path(source, leaderboard)
    if not path.exists():
        raise UnlearnBenchError(f"the method file {source['file']} of entry {entry['track']}/{entry['method']} does not exist")
    if file_sha256(path) != source["sha256"]:
        raise UnlearnBenchError(f"the method file {source['file']} changed since entry {entry['track']}/{entry['method']} was made (sha256 differs)")
    return load_method(f"{path}:{source['class']}")


def compare_runs(claimed: dict, recomputed: dict, tolerance: float, names: tuple[str, str] = ("claimed", "recomputed")) -> list[str]:
    """The differences beyond `tolerance` between a claimed run and a recomputed one (`cost/*` not compared), each
    value named by `names`."""
    problems, (first, second) = [], names
    if (claimed.get("diverged") is None) != (recomputed.get("diverged") is None):
        problems.append(f"seed {claimed['seed']} diverged: {first} {claimed.get('diverged')}, {second} {recomputed.get('diverged')}")
    for name, value in claimed["metrics"].items():
        if name.startswith("cost/"):
            continue
        again = recomputed["metrics"].get(name, math.nan)
        if value is None and again is None:
            continue
        if value is None or again is None or not math.isfinite(again) or abs(value - again) > tolerance:
            problems.append(f"seed {claimed['seed']} {name}: {first} {value}, {second} {again}")
    return problems


class EntryMismatch(UnlearnBenchError):
    """`verify` recomputed values beyond the track's tolerance; `other_cpu`: the entry was made on another CPU model or
    instruction set than this machine's, where floating-point sums differ (a warning in the committed-entries test)."""

    def __init__(self, message: str, other_cpu: bool) -> None:
        super().__init__(message)
        self.other_cpu = other_cpu


def same_cpu(claimed: dict, here: dict) -> bool:
    """Whether two records' hardware name the same CPU model and instruction set (floating-point sums then agree)."""
    return (claimed.get("cpu"), claimed.get("cpu_capability")) == (here.get("cpu"), here.get("cpu_capability"))


def _hardware_note(claimed: dict, here: dict) -> str:
    """Why values may differ when the entry was made on another CPU (empty when the CPUs are alike)."""
    def cpu(hardware: dict) -> str:
        return f"{hardware.get('cpu') or 'an unrecorded CPU'} ({hardware.get('cpu_capability') or 'instruction set unrecorded'})"
    if same_cpu(claimed, here):
        return ""
    return (f" (the entry was made on {cpu(claimed)}, this machine is {cpu(here)}: floating-point sums differ between "
            "instruction sets, and a run that collapses the model amplifies the difference)")


def verify(path: str | Path, seeds: list[int] | None = None, leaderboard: Path = LEADERBOARD, progress: bool = False) -> dict:
    """Recompute an entry's runs (all, or those of `seeds`); raise `EntryMismatch` if a value differs beyond the tolerance."""
    path = Path(path)
    track = load_track(path.parent.name, leaderboard)
    entry = load_entry(path, track)
    cls, source = method_of(entry, Path(leaderboard))
    with tempfile.TemporaryDirectory(prefix="unlearnbench-verify-") as results_dir:
        records, _, _ = run_protocol(track, cls, entry["config"]["init_args"], source, seeds=seeds, results_dir=results_dir, progress=progress)
    recomputed = {r["seed"]: {"seed": r["seed"], "metrics": run_metrics(r), "diverged": r.get("diverged")} for r in records}
    checked = [run for run in entry["runs"] if run["seed"] in recomputed]
    problems = [p for run in checked for p in compare_runs(run, recomputed[run["seed"]], track.tolerance)]
    compared = [(v, recomputed[run["seed"]]["metrics"].get(n)) for run in checked for n, v in run["metrics"].items() if not n.startswith("cost/")]
    largest = max((abs(a - b) for a, b in compared if a is not None and b is not None), default=0.0)
    report = {"entry": str(path), "track": track.name, "method": entry["method"], "seeds": sorted(recomputed), "numbers": len(compared),
              "max_abs_difference": largest, "tolerance": track.tolerance, "problems": problems}
    if problems:
        shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
        claimed, here = entry.get("hardware", {}), records[0]["hardware"]
        raise EntryMismatch(f"verify {path}: {len(problems)} value(s) differ beyond the tolerance {track.tolerance}: {shown}"
                            f"{_hardware_note(claimed, here)}", other_cpu=not same_cpu(claimed, here))
    print(f"ok {entry['method']} on {track.name}: {len(compared)} values of seeds {sorted(recomputed)} within {track.tolerance} "
          f"(largest difference {largest:.3g})", file=sys.stderr)
    return report
