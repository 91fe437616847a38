"""Entries: one JSON file per (track, method), built from the result records `runner.run` returns.

`write_entry(track, method_name, records, init_args=...)` is the one way an entry is made (by
`submit`, and by any suite that runs a track's protocol itself); see `benchmark.leaderboard`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path

from benchmark.core.paths import atomic_write_bytes
from benchmark.core.record import ResultRecord, as_layout, finite
from benchmark.leaderboard.schema import (
    SCHEMA_VERSION,
    EntryError,
    StaleEntryError,
    load_entry,
    summarise,
    validate_entry,
)
from benchmark.leaderboard.tracks import LEADERBOARD, Track, load_track


def run_metrics(record: ResultRecord | Mapping) -> dict[str, float | None]:
    """A record's metrics and its unlearning cost (`cost/*` from its timings), NaN as None."""
    record = as_layout(record)
    metrics = {name: finite(value) for name, value in record["metrics"].items()}
    return {**metrics, **{name: finite(value) for name, value in record.get("timings", {}).items() if name.startswith("cost/")}}


def entry_path(track: str, method: str, leaderboard: Path = LEADERBOARD) -> Path:
    return Path(leaderboard) / "entries" / track / f"{method}.json"


def build_entry(track: Track, method_name: str, records: list[ResultRecord | Mapping], init_args: dict | None = None, hparams: dict | None = None,
                source: dict | None = None, pretrained_sha256: str | None = None) -> dict:
    """A valid entry of `method_name` on `track` from one result record per track run (see `write_entry`)."""
    where = f"{method_name} on track {track.name}"
    by_run = {}
    for record in map(as_layout, records):
        key = (record["seed"], record["request"]["hash"])
        if key not in {(r["seed"], r["request"]) for r in track.runs}:
            raise EntryError(f"{where}: the record of seed {record['seed']} (request {record['request']['hash'][:16]}…) is not a run of the track")
        if record["method"] != method_name:
            raise EntryError(f"{where}: a record of method {record['method']} was given")
        if key in by_run:
            raise EntryError(f"{where}: two records for seed {record['seed']}")
        pretrained = record.get("pretrained") or {}
        for field in ("arch", "recipe", "seed"):
            if field in pretrained and field in track.pretrained and pretrained[field] != track.pretrained[field]:
                raise EntryError(f"{where}: a record's original model has {field} {pretrained[field]!r}, the track says {track.pretrained[field]!r}")
        by_run[key] = record
    missing = [r["seed"] for r in track.runs if (r["seed"], r["request"]) not in by_run]
    if missing:
        raise EntryError(f"{where}: no record for seed(s) {missing}; a track's entry needs every one of its runs")
    ordered = [by_run[(r["seed"], r["request"])] for r in track.runs]
    first = ordered[0]
    entry = {
        "schema": SCHEMA_VERSION,
        "track": track.name,
        "track_sha256": track.sha256,
        "method": method_name,
        "source": source or {"kind": "registered"},
        "config": {"init_args": dict(init_args or {}), "hparams": json.loads(json.dumps(hparams if hparams is not None else first.get("config", {}), default=str))},
        "runs": [{"seed": r["seed"], "request": r["request"]["hash"], "scenario": r.get("scenario", {}), "pretrained_sha256": pretrained_sha256,
                  "metrics": run_metrics(r), "diverged": r.get("diverged"), "stopped_at": r.get("stopped_at")} for r in ordered],
        "code": {"git_commit": first.get("git_commit"), "versions": first.get("versions", {})},
        "hardware": first.get("hardware", {}),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    entry["metrics"] = summarise(entry)
    return validate_entry(entry, track, where)


def write_entry(track: Track | str, method_name: str, records: list[ResultRecord | Mapping], init_args: dict | None = None, hparams: dict | None = None,
                source: dict | None = None, pretrained_sha256: str | None = None, leaderboard: Path = LEADERBOARD) -> Path:
    """Build, validate and atomically write `entries/<track>/<method_name>.json`; return its path.

    Args:
        track: a `Track` or a track name (read from `leaderboard/tracks/`).
        method_name: the registered method name (the entry's file name; `verify` rebuilds the method from it).
        records: the result records of the track's runs, one per seed (`ResultRecord`s, or their layout as `runner.run` returns them).
        init_args: the arguments the method was constructed with (`verify` constructs it again with them).
        hparams: the resolved hyperparameters to show (default: the first record's `config`).
        source: `{"kind": "registered"}` (default) or `{"kind": "file", "file", "class", "sha256"}`.
        pretrained_sha256: the original model's weight hash the runs started from, when checked.
        leaderboard: the leaderboard folder.
    """
    track = track if isinstance(track, Track) else load_track(track, leaderboard)
    entry = build_entry(track, method_name, records, init_args, hparams, source, pretrained_sha256)
    path = entry_path(track.name, method_name, leaderboard)
    atomic_write_bytes(path, (json.dumps(entry, indent=1, allow_nan=False) + "\n").encode())
    return path


def load_entries(track: Track, leaderboard: Path = LEADERBOARD, stale: list[str] | None = None) -> list[dict]:
    """Every entry of `track`, validated, in file-name order (an invalid file raises `EntryError`).

    With a `stale` list, an entry made under an earlier schema or another version of the track is not returned but
    its method's name is appended to `stale` (the page lists it as awaiting recomputation); without, it raises.
    """
    entries = []
    for path in sorted((Path(leaderboard) / "entries" / track.name).glob("*.json")):
        try:
            entries.append(load_entry(path, track))
        except StaleEntryError:
            if stale is None:
                raise
            stale.append(path.stem)
    return entries
