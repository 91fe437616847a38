"""The result record: what one run wrote, `<results>/<dataset>/<request hash>/<Method>-seed<seed>.json`.

`ResultRecord` is its typed form and this module the only one that reads or writes a record file:
`load_record` (one file), `read_records` (every record under a folder), `dump_record`. `RECORD_SCHEMA` is
the file's JSON Schema (draft 2020-12); `schema_error` checks a JSON value against it, and `from_dict`
refuses whatever does not follow it. `to_dict` gives the file's layout, key order included.

A measure that could not be computed (non-finite outputs) is `null` in `metrics`; `curves` keep their
NaN, as `json` writes it.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmark.core.errors import UnlearnBenchError
from benchmark.core.paths import atomic_write_bytes


def finite(value: float | None) -> float | None:
    """`value`, or None when it is None or not finite: how records and entries hold a measure that could not be
    computed (their JSON has no NaN)."""
    return None if value is None or not math.isfinite(value) else value


def run_identity(method: str, hparams: Mapping[str, Any], pretrained: Mapping[str, Any] | None = None,
                 numerics: Mapping[str, Any] | None = None) -> str:
    """What made a run's weights, as 8 hex digits of the SHA-256 of canonical JSON: the method, its resolved
    hyperparameters, (for a record's file name) the original model (`OriginalModel`'s fields) and the trainer's
    settings that change what the fit computes (`ResultRecord.numerics`; none: Lightning's defaults)."""
    content = {"method": method, "hparams": hparams, **({"pretrained": pretrained} if pretrained is not None else {}),
               **({"numerics": dict(numerics)} if numerics else {})}
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:8]


class RecordError(UnlearnBenchError):
    """A file or value that is not a result record; the message names it and the first problem."""


@dataclass(frozen=True)
class RequestInfo:
    """The forget request the run unlearned."""

    hash: str
    path: str
    num_forget: int


@dataclass(frozen=True)
class OriginalModel:
    """The model the run started from: a pretraining (arch, recipe, seed), or `checkpoint` when given."""

    arch: str
    recipe: str
    seed: int
    checkpoint: str | None


@dataclass(frozen=True)
class Hardware:
    """Where the run ran (`cost/speedup_vs_retrain` compares runs of equal hardware only).

    `cpu` and `cpu_capability` (the instruction set PyTorch's CPU kernels use: AVX2, AVX512, …) matter to
    reproducibility: floating-point sums differ between instruction sets, and a run that collapses the model
    amplifies the difference. Records written before they were recorded hold `cpu_count` = torch threads and
    no `threads`, `cpu`, `cpu_capability`.

    `devices` are per node: `world_size` = `num_nodes` × `devices` processes. `cluster_environment` names what started
    them (Lightning's `trainer.strategy.cluster_environment`: `LightningEnvironment` = Lightning itself,
    `TorchElasticEnvironment` = torchrun, `SLURMEnvironment` = srun); None for a one-process strategy. Records written
    before they were recorded hold neither (they ran on one node)."""

    accelerator: str
    devices: int
    world_size: int
    machine: str
    cpu_count: int
    threads: int | None = None
    cpu: str | None = None
    cpu_capability: str | None = None
    num_nodes: int | None = None
    cluster_environment: str | None = None


@dataclass(frozen=True)
class ResultRecord:
    """One run of one method on one forget request: its setting, measures, cost and provenance."""

    method: str
    dataset: str
    scenario: dict[str, Any]
    request: RequestInfo
    pretrained: OriginalModel
    seed: int
    metrics: dict[str, float | None]
    """`{split}/acc`, `mia/*`, … (`null`: not computable, the model's outputs were non-finite)."""
    timings: dict[str, float]
    """`cost/*` of the unlearning (`cost/seconds`, …) and `eval/seconds`."""
    stopped_at: dict[str, int] | None
    """`{"epoch", "step"}` where the stop criterion held, or None."""
    diverged: dict[str, int] | None
    """`{"epoch", "step"}` where the training became non-finite, or None."""
    curves: dict[str, list[float]]
    config: dict[str, Any]
    git_commit: str | None
    versions: dict[str, str | None]
    hardware: Hardware
    created: str
    hparams: dict[str, Any] | None = None
    """The method's resolved hyperparameters, its base settings (`optimizer`, `budget`, `batchnorm`) included."""
    evaluation: dict[str, Any] | None = None
    """What the evaluation measured and how (`Evaluation`'s fields, e.g. `mia_samples`: None = the attacks' published rows)."""
    numerics: dict[str, Any] | None = None
    """The trainer's settings that change what the fit computes where they are not Lightning's defaults (`precision`,
    `accumulate_grad_batches`, `gradient_clip_val` / `_algorithm`, `limit_train_batches`, `max_steps`); None: all
    defaults. Part of the run's identity (`run_identity`), so a bf16 run never overwrites the fp32 one."""
    figures: list[str] | None = None
    """The PNGs written beside the record (absent from the file when None, as are `weights` and `path`)."""
    weights: str | None = None
    path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The record file's JSON layout, key order included."""
        return {key: value for key, value in asdict(self).items() if value is not None or key not in OPTIONAL}

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "result record") -> ResultRecord:
        """The record `data` (a record file's JSON) holds; `RecordError` naming `where` and the first problem otherwise."""
        problem = schema_error(data, RECORD_SCHEMA)
        if problem:
            raise RecordError(f"{where} is not a valid result record: {problem}")
        return cls(**{**data, "request": RequestInfo(**data["request"]), "pretrained": OriginalModel(**data["pretrained"]),
                      "hardware": Hardware(**data["hardware"])})


OPTIONAL = ("hparams", "evaluation", "numerics", "figures", "weights", "path")


def _object(properties: dict[str, dict], optional: tuple[str, ...] = ()) -> dict:
    return {"type": "object", "properties": properties, "required": [k for k in properties if k not in optional], "additionalProperties": False}


_STRING, _INTEGER, _NUMBER = {"type": "string"}, {"type": "integer"}, {"type": "number"}
_STRING_OR_NULL = {"type": ["string", "null"]}
_STEP = {**_object({"epoch": _INTEGER, "step": _INTEGER}), "type": ["object", "null"]}

RECORD_SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "UnlearnBench result record",
    **_object({
        "method": _STRING,
        "dataset": _STRING,
        "scenario": {"type": "object"},
        "request": _object({"hash": _STRING, "path": _STRING, "num_forget": _INTEGER}),
        "pretrained": _object({"arch": _STRING, "recipe": _STRING, "seed": _INTEGER, "checkpoint": _STRING_OR_NULL}),
        "seed": _INTEGER,
        "metrics": {"type": "object", "additionalProperties": {"type": ["number", "null"]}},
        "timings": {"type": "object", "additionalProperties": _NUMBER},
        "stopped_at": _STEP,
        "diverged": _STEP,
        "curves": {"type": "object", "additionalProperties": {"type": "array", "items": _NUMBER}},
        "config": {"type": "object"},
        "git_commit": _STRING_OR_NULL,
        "versions": {"type": "object", "additionalProperties": _STRING_OR_NULL},
        "hardware": _object({"accelerator": _STRING, "devices": _INTEGER, "world_size": _INTEGER, "machine": _STRING, "cpu_count": _INTEGER,
                             "threads": _INTEGER, "cpu": _STRING_OR_NULL, "cpu_capability": _STRING_OR_NULL, "num_nodes": _INTEGER,
                             "cluster_environment": _STRING_OR_NULL},
                            optional=("threads", "cpu", "cpu_capability", "num_nodes", "cluster_environment")),
        "created": _STRING,
        "hparams": {"type": "object"},
        "evaluation": {"type": ["object", "null"]},
        "numerics": {"type": "object"},
        "figures": {"type": "array", "items": _STRING},
        "weights": _STRING,
        "path": _STRING,
    }, optional=OPTIONAL),
}
"""The record file's JSON Schema (the subset `schema_error` checks: type, properties, required,
additionalProperties, items). NaN passes as a number: `curves` may hold it."""

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def schema_error(value: object, schema: Mapping[str, Any], where: str = "") -> str | None:
    """The first place where `value` breaks `schema` (`"request.hash: expected string, got int"`), or None."""
    name = where or "the record"
    kinds = schema.get("type")
    kinds = [kinds] if isinstance(kinds, str) else kinds
    if kinds and not any(_TYPES[kind](value) for kind in kinds):
        shown = "null" if value is None else type(value).__name__
        return f"{name}: expected {' or '.join(kinds)}, got {shown}"
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for key in schema.get("required", ()):
            if key not in value:
                return f"{where + '.' if where else ''}{key}: missing"
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            inner = f"{where}.{key}" if where else str(key)
            sub = properties.get(key, extra)
            if sub is False:
                return f"{inner}: not a field of a result record"
            if isinstance(sub, Mapping) and (problem := schema_error(item, sub, inner)):
                return problem
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            if problem := schema_error(item, schema["items"], f"{name}[{i}]"):
                return problem
    return None


def is_record(data: object) -> bool:
    """Whether a JSON value looks like a result record at all (not a request file, a config, …), valid or not."""
    return isinstance(data, dict) and isinstance(data.get("method"), str) and isinstance(data.get("request"), dict) and "metrics" in data


def _parse(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise RecordError(f"result record {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RecordError(f"result record {path} is not readable as JSON ({error})") from None


def load_record(path: str | Path) -> ResultRecord:
    """The record in `path`; `RecordError` (one line naming the file) when it is missing, not JSON or not a record."""
    data = _parse(Path(path))
    if not isinstance(data, dict):
        raise RecordError(f"{path} is not a valid result record: expected a JSON object")
    return ResultRecord.from_dict(data, str(path))


def read_records(folder: str | Path) -> list[ResultRecord]:
    """Every result record under `folder` (recursively, `*.json`), in path order.

    JSON files that are not records (forget requests, configs) are skipped; a file that is not JSON, or that
    looks like a record but does not follow the schema, is skipped with a warning naming it.
    """
    records = []
    for path in sorted(Path(folder).rglob("*.json")):
        try:
            data = _parse(path)
            if is_record(data):
                records.append(ResultRecord.from_dict(data, str(path)))
        except RecordError as error:
            warnings.warn(f"{error}; skipped", stacklevel=2)
    return records


def dump_record(record: ResultRecord, path: str | Path) -> None:
    """Write `record` to `path` atomically (an interrupted run leaves the old file or none, never half a record)."""
    atomic_write_bytes(Path(path), json.dumps(record.to_dict(), indent=1, sort_keys=False).encode())


def as_layout(record: ResultRecord | Mapping[str, Any]) -> Mapping[str, Any]:
    """A record in its file's layout, whether given as a `ResultRecord` or already as that layout (as
    `runner.run` returns it, or the partial records an entry's runs make for `aggregate`)."""
    return record.to_dict() if isinstance(record, ResultRecord) else record

