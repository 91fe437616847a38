"""Shared fixtures: an isolated UNLEARNBENCH_HOME per session, helpers to run the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from benchmark.core.record import read_records
from cli import cli_main

ROOT = Path(__file__).resolve().parents[1]
QUIET = ["--trainer.enable_progress_bar", "false"]


def pytest_configure(config) -> None:
    """Under pytest-xdist (`-n`), each worker gets its share of the cores: torch's threads default to every core,
    and N workers × all cores oversubscribe them (small convolutions then run several times slower)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers:
        threads = max(1, (os.cpu_count() or 1) // workers)
        os.environ["OMP_NUM_THREADS"] = str(threads)  # for the CLI subprocesses and DDP workers
        torch.set_num_threads(threads)


@pytest.fixture(scope="session", autouse=True)
def bench_home(tmp_path_factory) -> Path:
    """All caches, requests and records of the test session live in one temporary folder."""
    home = tmp_path_factory.mktemp("unlearnbench_home")
    os.environ["UNLEARNBENCH_HOME"] = str(home)
    return home


def run_cli(*args: str, timeout: int = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python cli.py ARGS` in a subprocess (as a user runs it), from the repository root."""
    return subprocess.run([sys.executable, "cli.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


def records_in(folder: Path) -> list[dict]:
    """The result records under `folder`, in path order, in their file layout."""
    return [record.to_dict() for record in read_records(folder)]


def run_here(capsys, *args: str) -> SimpleNamespace:
    """`cli.py ARGS` in this process (what `run_cli` does without a new interpreter's start-up): exit status and output."""
    capsys.readouterr()
    try:
        cli_main(list(args))
        code = 0
    except SystemExit as exit_info:
        code = exit_info.code
    out = capsys.readouterr()
    return SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err)
