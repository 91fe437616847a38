"""The schema of a leaderboard entry, and its validation: every error names the field and the reason.

An entry (`leaderboard/entries/<track>/<method>.json`, schema version 1)::

    {"schema": 1, "track": str, "track_sha256": str, "method": str,
     "source": {"kind": "registered"} | {"kind": "file", "file": str, "class": str, "sha256": str},
     "config": {"init_args": {...}, "hparams": {...}},          # how to rebuild the method; what it ran with
     "runs": [{"seed": int, "request": str, "scenario": {...}, "pretrained_sha256": str,
               "metrics": {name: number | null}, "diverged": null | {"epoch": int, "step": int},
               "stopped_at": null | {"epoch": int, "step": int}}, ...],   # one per track run, in the track's order
     "metrics": {name: {"values": [number | null, ...], "n": int, "mean": number | null, "std": number | null}},
     "code": {"git_commit": str | null, "versions": {library: str | null}},
     "hardware": {...}, "created": str}

Numbers are JSON numbers (never strings, booleans or NaN); a value a run could not measure (a diverged
model) is null, and then the mean and std are null. `metrics[name]` must hold the runs' values in run
order, and `mean` / `std` must be their mean and sample std (ddof=1) as `benchmark.reports.aggregate` computes them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from benchmark.core.errors import UnlearnBenchError
from benchmark.core.record import finite
from benchmark.reports.aggregate import aggregate

SCHEMA_VERSION = 2
"""2: membership inference as the published code computes it (issue 15: the SVM attacks' first rows, seven more attacks)."""
RELATIVE_TOLERANCE = 1e-9
"""How closely a stored mean / std must match the one recomputed from the values (float round-off only)."""


class EntryError(UnlearnBenchError):
    """An entry file that does not follow the schema; the message names the field and the reason."""


class StaleEntryError(EntryError):
    """An entry that was valid when it was made, under an earlier schema or another version of its track: recompute it."""


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _kind(value: object) -> str:
    return "null" if value is None else "a boolean" if isinstance(value, bool) else f"{type(value).__name__} {value!r}"[:60]


class _Checker:
    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, field: str, reason: str, error: type[EntryError] = EntryError):
        raise error(f"{self.where}: {field}: {reason}")

    def get(self, data: dict, key: str, kind: str, field: str, optional: bool = False):
        name = f"{field}.{key}" if field else key
        if key not in data:
            if optional:
                return None
            self.fail(name, "missing")
        value = data[key]
        ok = {"str": isinstance(value, str), "int": isinstance(value, int) and not isinstance(value, bool),
              "number": _is_number(value), "number|null": value is None or _is_number(value),
              "dict": isinstance(value, dict), "list": isinstance(value, list), "str|null": value is None or isinstance(value, str),
              "dict|null": value is None or isinstance(value, dict)}[kind]
        if not ok:
            self.fail(name, f"expected {kind.replace('|', ' or ')}, got {_kind(value)}")
        return value


def parse_json(text: str, where: str) -> dict:
    """JSON with NaN / Infinity refused (they are not JSON numbers)."""
    def refuse(token: str):
        raise EntryError(f"{where}: {token} is not a JSON number; a value that could not be measured is null")

    try:
        data = json.loads(text, parse_constant=refuse)
    except json.JSONDecodeError as error:
        raise EntryError(f"{where}: not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise EntryError(f"{where}: an entry must be a JSON object")
    return data


def as_records(entry: dict) -> list[dict]:
    """The entry's runs as minimal result records for `benchmark.reports.aggregate` (one group per track)."""
    return [{"method": entry["method"], "dataset": entry["track"], "scenario": {}, "pretrained": {}, "request": {"hash": run["request"]},
             "seed": run["seed"], "metrics": run["metrics"], "diverged": run.get("diverged")} for run in entry["runs"]]


def summarise(entry: dict) -> dict[str, dict]:
    """Per metric: the runs' values (run order), n, mean and sample std (`benchmark.reports.aggregate`), NaN as None."""
    (row,) = aggregate(as_records(entry), gap_metrics=(), reference="")
    return {name: {"values": m["values"], "n": m["n"], "mean": finite(m["mean"]), "std": finite(m["std"])} for name, m in row["metrics"].items()}


def validate_entry(entry: dict, track=None, where: str = "entry") -> dict:
    """Check `entry` against the schema (and `track`, when given); return it, or raise `EntryError`."""
    c = _Checker(where)
    if c.get(entry, "schema", "int", "") == 1:
        c.fail("schema", "1 predates the membership-inference fix of schema 2 (the SVM attacks now fit on the first retain and test rows, "
               "as the published code does, and seven attacks were added); recompute it with `cli.py submit … --replace true`", StaleEntryError)
    if entry["schema"] != SCHEMA_VERSION:
        c.fail("schema", f"must be {SCHEMA_VERSION}, got {entry['schema']}")
    c.get(entry, "track", "str", "")
    c.get(entry, "track_sha256", "str", "")
    c.get(entry, "method", "str", "")
    source = c.get(entry, "source", "dict", "")
    if c.get(source, "kind", "str", "source") not in ("registered", "file"):
        c.fail("source.kind", f"must be 'registered' or 'file', got {source['kind']!r}")
    if source["kind"] == "file":
        for key in ("file", "class", "sha256"):
            c.get(source, key, "str", "source")
        if source["file"].startswith(("/", "\\")) or ":" in source["file"]:
            c.fail("source.file", f"must be relative to the leaderboard folder (methods/…), not a path of the submitter's machine: {source['file']}")
    config = c.get(entry, "config", "dict", "")
    c.get(config, "init_args", "dict", "config")
    c.get(config, "hparams", "dict", "config")
    runs = c.get(entry, "runs", "list", "")
    if not runs:
        c.fail("runs", "empty")
    for i, run in enumerate(runs):
        field = f"runs[{i}]"
        if not isinstance(run, dict):
            c.fail(field, f"expected dict, got {_kind(run)}")
        c.get(run, "seed", "int", field)
        c.get(run, "request", "str", field)
        c.get(run, "scenario", "dict", field)
        c.get(run, "pretrained_sha256", "str|null", field)
        c.get(run, "diverged", "dict|null", field)
        c.get(run, "stopped_at", "dict|null", field, optional=True)
        for name in c.get(run, "metrics", "dict", field):
            c.get(run["metrics"], name, "number|null", f"{field}.metrics")
        if "cost/seconds" not in run["metrics"]:
            c.fail(f"{field}.metrics.cost/seconds", "missing (the cost of the unlearning)")
    metrics = c.get(entry, "metrics", "dict", "")
    code = c.get(entry, "code", "dict", "")
    c.get(code, "git_commit", "str|null", "code")
    c.get(code, "versions", "dict", "code")
    c.get(entry, "hardware", "dict", "")
    c.get(entry, "created", "str", "")

    names = list(dict.fromkeys(name for run in runs for name in run["metrics"]))
    for name in names:
        if name not in metrics:
            c.fail(f"metrics.{name}", "missing (the runs report it)")
    expected = summarise(entry)
    for name, summary in metrics.items():
        field = f"metrics.{name}"
        if not isinstance(summary, dict):
            c.fail(field, f"expected dict, got {_kind(summary)}")
        values = c.get(summary, "values", "list", field)
        for j, value in enumerate(values):
            if not (value is None or _is_number(value)):
                c.fail(f"{field}.values[{j}]", f"expected number or null, got {_kind(value)}")
        n = c.get(summary, "n", "int", field)
        mean = c.get(summary, "mean", "number|null", field)
        std = c.get(summary, "std", "number|null", field)
        if name not in expected:
            c.fail(field, "no run reports this metric")
        truth = expected[name]
        if values != truth["values"]:
            c.fail(f"{field}.values", f"{values} are not the runs' values {truth['values']} (in run order)")
        if n != truth["n"]:
            c.fail(f"{field}.n", f"{n} is not the number of runs ({truth['n']})")
        for key, claimed in (("mean", mean), ("std", std)):
            right = truth[key]
            if (claimed is None) != (right is None) or claimed is not None and not math.isclose(claimed, right, rel_tol=RELATIVE_TOLERANCE, abs_tol=1e-12):
                what = "mean" if key == "mean" else "sample std (ddof=1)"
                c.fail(f"{field}.{key}", f"{claimed} is not the {what} of its values {values} ({right}; null when a value is null)")

    if track is not None:
        if entry["track"] != track.name:
            c.fail("track", f"'{entry['track']}' but the entry is filed under track '{track.name}'")
        if entry["track_sha256"] != track.sha256:
            c.fail("track_sha256", f"the entry was made under another version of track {track.name} ({entry['track_sha256'][:16]}…, now "
                                   f"{track.sha256[:16]}…); resubmit it", StaleEntryError)
        claimed = [(r["seed"], r["request"]) for r in runs]
        wanted = [(r["seed"], r["request"]) for r in track.runs]
        if claimed != wanted:
            c.fail("runs", f"(seed, request) pairs {[(s, h[:8]) for s, h in claimed]} differ from the track's {[(s, (h or '')[:8]) for s, h in wanted]}")
        if track.pretrained.get("sha256") and any(r["pretrained_sha256"] not in (None, track.pretrained["sha256"]) for r in runs):
            c.fail("runs[].pretrained_sha256", "a run started from another original model than the track's")
    return entry


def load_entry(path: str | Path, track=None) -> dict:
    """Read and validate an entry file."""
    path = Path(path)
    if not path.exists():
        raise EntryError(f"entry file {path} does not exist")
    entry = validate_entry(parse_json(path.read_text(), str(path)), track, str(path))
    if path.stem != entry["method"]:
        raise EntryError(f"{path}: method: '{entry['method']}' must equal the file name '{path.stem}'")
    return entry
