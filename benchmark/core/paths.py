"""Where UnlearnBench keeps what it produces: `$UNLEARNBENCH_HOME`, by default `./runs`."""

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def home() -> Path:
    return Path(os.environ.get("UNLEARNBENCH_HOME", "runs"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `path` whole or not at all: an interrupted run never leaves a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")  # (a writer's own: threads write too)
    tmp.write_bytes(data)
    os.replace(tmp, path)


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the file `path` (created if missing) until the block ends: processes started together
    (`torchrun`, `srun`) that would each make the same cache entry wait for the first and then read what it made.
    Where `fcntl` is missing (Windows) nothing is locked."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
