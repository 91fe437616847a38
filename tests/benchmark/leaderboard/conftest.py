"""Helpers of the leaderboard tests: a small track on digits, fake result records, a leaderboard folder in tmp."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from benchmark.leaderboard.tracks import LEADERBOARD, load_track

TINY_K = 16


def track_data(name: str, runs: list[dict], **changes) -> dict:
    """A track like digits-random10 (same original model), forgetting TINY_K images."""
    data = yaml.safe_load((LEADERBOARD / "tracks" / "digits-random10.yaml").read_text())
    data.update(name=name, runs=runs, **changes)
    data["scenario"] = {**data["scenario"], "init_args": {"dataset": "digits", "k": TINY_K, "relabel": True}}
    return data


@pytest.fixture
def leaderboard(tmp_path) -> Path:
    """An empty leaderboard folder with the repository's digits track files."""
    folder = tmp_path / "leaderboard"
    (folder / "tracks").mkdir(parents=True)
    for path in (LEADERBOARD / "tracks").glob("digits-*.yaml"):
        shutil.copy(path, folder / "tracks" / path.name)
    return folder


def continual_track_data(name: str, folder: Path, seeds=(0, 1), k_cl: int = 6, steps: int = 2) -> dict:
    """A continual track on digits: a stream of `steps` chunks of `k_cl` training images (in `folder`/streams), entered
    at its last step; every seed runs the same stream."""
    from benchmark.experiment.continual import write_stream
    from datamodules.scenarios import ContinualStep

    stream = write_stream("digits", k_cl=k_cl, steps=steps, seed=5, request_dir=str(folder / "streams"))
    last = ContinualStep(stream=str(stream), step=steps)
    last.setup()
    data = track_data(name, [{"seed": s, "request": last.request.hash} for s in seeds])
    data.update(kind="continual", scenario={"class": "ContinualStep", "init_args": {"stream": str(stream), "step": steps}})
    return data


def write_track(folder: Path, data: dict):
    path = folder / "tracks" / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_track(path)


def fake_record(method: str, seed: int, request: str, metrics: dict, diverged: dict | None = None) -> dict:
    """A result record as `runner.run` returns it, with the fields an entry takes."""
    return {"method": method, "dataset": "digits", "scenario": {"kind": "random_instances", "k": TINY_K, "seed": seed, "relabel": True},
            "request": {"hash": request}, "pretrained": {"arch": "small_cnn", "recipe": "digits", "seed": 0, "checkpoint": None}, "seed": seed,
            "metrics": metrics, "timings": {"cost/seconds": 0.5 + seed, "eval/seconds": 1.0}, "stopped_at": None, "diverged": diverged,
            "config": {"command": "test"}, "git_commit": "abc", "versions": {"torch": "x"}, "hardware": {"accelerator": "CPUAccelerator"}}
