"""Where UnlearnBench keeps what it produces: `$UNLEARNBENCH_HOME`, by default `./runs`."""

import os
from pathlib import Path


def home() -> Path:
    return Path(os.environ.get("UNLEARNBENCH_HOME", "runs"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `path` whole or not at all: an interrupted run never leaves a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
