"""`cli.py sweep`: a sweep file's runs, keyed by what they compute, resumable, the same on one process and on Ray."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import pytest
import ray
import yaml

from benchmark.core.errors import UnlearnBenchError
from benchmark.experiment.sweep import load_sweep, read_state, run_sweep
from benchmark.perf.scale import CRASH_HALFWAY
from tests.conftest import ROOT, run_here

BASE = {"data": {"class_path": "RandomInstances", "init_args": {"dataset": "digits", "k": 12}}, "trainer": {"accelerator": "cpu"},
        "evaluation": {"mia": False}}
ONE_EPOCH = {"budget": {"max_epochs": 1}}


def write_sweep(folder: Path, **spec) -> Path:
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump({"base": BASE, **spec}))
    return path


def test_keys_ignore_placement_and_change_with_what_a_run_computes(tmp_path):
    path = write_sweep(tmp_path, methods=[{"class_path": "FineTune", "init_args": ONE_EPOCH}], seeds=[0, 1],
                       overrides={"trainer.devices": [1, 2], "data.init_args.data_root": [None, "/elsewhere"],
                                  "model.init_args.optimizer.init_args.lr": [0.01, 0.1]})
    sweep = load_sweep(path, tmp_path / "out")
    assert sweep.duplicates == 2 * 2 * 2 * 2 - 4  # devices and data_root are placement: 4 runs (seed × lr)
    assert len({run.key for run in sweep.runs}) == len(sweep.runs) == 4


def test_callbacks_that_change_the_arithmetic_are_in_the_key_and_the_others_are_placement(tmp_path):
    """ChannelsLast / Compile runs are other runs (their records' `numerics` differ); a progress bar is not."""
    plain, bar, nhwc = None, [{"class_path": "lightning.pytorch.callbacks.RichProgressBar"}], [{"class_path": "benchmark.callbacks.ChannelsLast"}]
    path = write_sweep(tmp_path, methods=[{"class_path": "FineTune", "init_args": ONE_EPOCH}], overrides={"trainer.callbacks": [plain, bar, nhwc]})
    sweep = load_sweep(path, tmp_path / "out")
    assert sweep.duplicates == 1 and len(sweep.runs) == 2
    assert load_sweep(write_sweep(tmp_path, methods=[{"class_path": "FineTune", "init_args": ONE_EPOCH}]), tmp_path / "out").runs[0].key == sweep.runs[0].key


def test_a_model_override_applies_to_the_methods_that_take_it(tmp_path):
    path = write_sweep(tmp_path, methods=["Retrain", "FineTune"], overrides={"model.init_args.budget.max_epochs": [1, 2]})
    sweep = load_sweep(path, tmp_path / "out")  # (Retrain takes no budget: one Retrain run, two FineTune runs)
    assert [run.label for run in sweep.runs] == ["Retrain RandomInstances seed 0", "FineTune RandomInstances seed 0 model.init_args.budget.max_epochs=1",
                                                 "FineTune RandomInstances seed 0 model.init_args.budget.max_epochs=2"] and sweep.duplicates == 1
    with pytest.raises(UnlearnBenchError, match=r"^override model.init_args.budgt.max_epochs: no method of the sweep takes 'budgt'$"):
        load_sweep(write_sweep(tmp_path, methods=["Retrain", "FineTune"], overrides={"model.init_args.budgt.max_epochs": 2}), tmp_path / "out")


def test_a_bad_run_config_is_refused_in_one_line_before_anything_runs(tmp_path):
    path = write_sweep(tmp_path, methods=["Retrain", {"class_path": "FineTune", "init_args": {"budget": {"max_epoch": 2}}}])
    with pytest.raises(UnlearnBenchError, match=r"^sweep sweep.yaml, FineTune RandomInstances seed 0: 'methods.FineTune': Group 'budget' does not accept option 'max_epoch'$"):
        load_sweep(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    path = write_sweep(tmp_path, methods=["FineTune"], base={**BASE, "trainer": {"acelerator": "cpu"}})
    with pytest.raises(UnlearnBenchError, match="trainer.acelerator is not a setting"):
        load_sweep(path, tmp_path / "out")


def test_runs_wait_for_the_retrain_run_of_their_request_and_seed(tmp_path):
    path = write_sweep(tmp_path, methods=[{"class_path": "FineTune", "init_args": ONE_EPOCH}, "Retrain"], seeds=[0, 1])
    sweep = load_sweep(path, tmp_path / "out")
    retrains = {run.label.split()[-1]: run.key for run in sweep.runs if run.label.startswith("Retrain")}
    assert [run.label.split()[0] for run in sweep.runs] == ["Retrain", "Retrain", "FineTune", "FineTune"]
    assert [run.depends_on for run in sweep.runs[2:]] == [retrains["0"], retrains["1"]]


def test_ray_retries_a_lost_run_a_rerun_runs_nothing_and_local_gives_the_same_records(tmp_path):
    """S1: 2 methods × 2 seeds on Ray, one run's process dies on its first try → 4 records, 5 executions; the retry
    resumes from the epoch its first try finished. S2: the same command again → nothing runs, Ray is not started. S5:
    the local executor gives the same metrics (its runs never die: the resumed run's equal the uninterrupted run's)."""
    (tmp_path / "crash.py").write_text(CRASH_HALFWAY)  # (at epoch 1 of 2: on its first step)
    marker = tmp_path / "crashed"
    crashing = {"budget": {"max_epochs": 2}, "marker": str(marker), "at": 1}
    path = write_sweep(tmp_path, methods=[{"class_path": "FineTune", "init_args": ONE_EPOCH},
                                          {"class_path": "crash.py:CrashHalfway", "init_args": crashing}], seeds=[0, 1])
    on_ray = run_sweep(path, "ray", workers=2, cpus_per_run=1, folder=tmp_path / "ray", progress=False)
    assert marker.exists() and on_ray["failed"] == {} and on_ray["ran"] == 4 and len(on_ray["records"]) == 4
    sweep = load_sweep(path, tmp_path / "ray")
    attempts = {run.label: [(a["status"], a["resumed"]) for a in read_state(sweep.folder, run.key)["attempts"]] for run in sweep.runs}
    assert sum(map(len, attempts.values())) == 5
    assert sorted(attempts.values()).count([("done", False)]) == 3
    assert [("running", False), ("done", True)] in attempts.values()  # (the lost attempt never ended)
    assert not (tmp_path / "ray" / "checkpoints").exists() or not any((tmp_path / "ray" / "checkpoints").iterdir())
    assert not ray.is_initialized()

    started = time.perf_counter()
    again = run_sweep(path, "ray", folder=tmp_path / "ray", progress=False)
    assert again["ran"] == 0 and again["cached"] == 4 and not ray.is_initialized()
    assert time.perf_counter() - started < 3

    local = run_sweep(path, "local", cpus_per_run=1, folder=tmp_path / "local", progress=False)
    assert local["ran"] == 4
    by_key = {r["config"]["sweep"]["key"]: r for r in on_ray["records"]}
    for record in local["records"]:
        assert record["metrics"] == by_key[record["config"]["sweep"]["key"]]["metrics"]


def test_the_command_plans_and_resumes(tmp_path, capsys):
    path = write_sweep(tmp_path, methods=[{"class_path": "FineTune", "init_args": ONE_EPOCH}], seeds=[3])
    out = tmp_path / "out"
    planned = run_here(capsys, "sweep", str(path), "--folder", str(out), "--plan", "true")
    assert planned.returncode == 0 and "to run" in planned.stdout and "1 runs: 0 done before, 0 ran" in planned.stdout
    ran = run_here(capsys, "sweep", str(path), "--folder", str(out))
    assert ran.returncode == 0 and "FineTune seed 3" in ran.stdout and "1 runs: 0 done before, 1 ran, 0 failed" in ran.stdout
    (state,) = [json.loads(p.read_text()) for p in (out / "results").glob("*.json")]
    assert state["status"] == "done" and Path(state["record"]).exists() and state["config"]["seed_everything"] == 3
    assert "1 runs: 1 done before, 0 ran" in run_here(capsys, "sweep", str(path), "--folder", str(out)).stdout
    assert "sweep" in sys.modules["benchmark.commands.tools"].TOOLS


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "sweeps").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_sweep_expands_to_valid_runs(path, tmp_path):
    sweep = load_sweep(path, tmp_path)
    assert sweep.runs and sweep.duplicates == 0 and not tmp_path.joinpath("results").exists()


def test_a_run_on_a_node_that_leaves_mid_sweep_is_retried_on_another(tmp_path):
    """S3: two fake Ray nodes of one CPU each on this host; the first is removed while both run: its run is retried."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    try:
        leaving = [cluster.add_node(num_cpus=1) for _ in range(2)][0]
        ray.init(address=cluster.address, logging_level="WARNING", log_to_driver=False)
        path = write_sweep(tmp_path, methods=[{"class_path": "FineTune", "init_args": {"budget": {"max_epochs": 20}}}], seeds=[0, 1])
        sweep, result = load_sweep(path, tmp_path / "out"), {}
        thread = threading.Thread(target=lambda: result.update(run_sweep(path, "ray", cpus_per_run=1, folder=sweep.folder, progress=False)))
        thread.start()
        deadline = time.time() + 240
        while time.time() < deadline and [(read_state(sweep.folder, r.key) or {}).get("status") for r in sweep.runs] != ["running"] * 2:
            time.sleep(0.2)
        time.sleep(2)  # (into the runs' epochs)
        cluster.remove_node(leaving)
        thread.join(timeout=300)
        assert result["failed"] == {} and result["ran"] == 2 and len(result["records"]) == 2
        attempts = sorted([a["status"] for a in read_state(sweep.folder, r.key)["attempts"]] for r in sweep.runs)
        assert attempts == [["done"], ["running", "done"]]  # (the attempt on the lost node never ended)
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_a_run_of_several_processes_is_refused_in_one_line_before_anything_runs(executor, tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"base": {**BASE, "trainer": {"accelerator": "cpu", "devices": 2, "strategy": "ddp"}},
                                    "methods": [{"class_path": "FineTune", "init_args": ONE_EPOCH}]}))
    with pytest.raises(UnlearnBenchError, match="a sweep's run is one process, and this run asks trainer.devices / num_nodes > 1") as error:
        run_sweep(path, executor, folder=tmp_path / "out", progress=False)
    assert "\n" not in str(error.value) and not ray.is_initialized() and not (tmp_path / "out" / "results").exists()
