"""The hyperparameter search: never on what the track measures, a fixed budget, the chosen config and its record written."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import time

import pytest
import yaml

from benchmark.core.errors import UnlearnBenchError
from benchmark.core.paths import home
from benchmark.leaderboard.tracks import load_track
from benchmark.core.validation import with_value
from benchmark.leaderboard.tuning import objective_metrics, parse_space, tune
from methods import METHODS
from tests.conftest import ROOT


@pytest.mark.parametrize("space", [{}, {"lr": [1, 0.1]}, {"lr": [0, 1, "log"]}, {"lr": [1, 2, "cubic"]}, {"lr": "0.1"}, {"mode": {"choices": []}}])
def test_a_malformed_search_space_is_refused_in_one_line(space):
    with pytest.raises(UnlearnBenchError) as error:
        parse_space(space)
    assert "\n" not in str(error.value)


def test_a_searched_setting_lands_at_its_dotted_path_without_touching_the_rest():
    base = {"optimizer": {"class_path": "torch.optim.SGD", "init_args": {"momentum": 0.9}}, "ratio": 0.5}
    assert with_value(base, "optimizer.init_args.lr", 0.1) == {"optimizer": {"class_path": "torch.optim.SGD", "init_args": {"momentum": 0.9, "lr": 0.1}}, "ratio": 0.5}
    assert base["optimizer"]["init_args"] == {"momentum": 0.9}


def test_the_objective_reads_neither_the_test_set_nor_the_attacks():
    assert objective_metrics(load_track("digits-peers-class0")) == ("forget/acc", "retain/acc")


def test_tuning_on_a_request_the_track_measures_is_refused():
    """digits-peers-class0's request is the same for every seed: tuning needs another class."""
    with pytest.raises(UnlearnBenchError, match="one of the track's own requests"):
        tune("FineTune", "digits-peers-class0", {"optimizer.init_args.lr": [1e-4, 1e-1, "log"]}, trials=1, seeds=(100,))


def test_a_search_writes_the_best_trials_config_and_its_record(tmp_path):
    output = tmp_path / "tuned.yaml"
    record = tune("FineTune", "digits-peers-class0", {"optimizer.init_args.lr": [1e-4, 1e-1, "log"]}, trials=2, seeds=(100,),
                  scenario={"classes": [1]}, init_args={"budget": {"max_epochs": 1}}, output=str(output))
    assert len(record["history"]) == 2 and record["best"]["value"] == min(t["value"] for t in record["history"])
    config = yaml.safe_load(output.read_text())
    lr = config["init_args"]["optimizer"]["init_args"]["lr"]
    assert lr == record["best"]["params"]["optimizer.init_args.lr"] and config["init_args"]["budget"]["max_epochs"] == 1
    METHODS.get("FineTune")(**config["init_args"])  # the written config is the method's
    assert json.loads(output.with_suffix(".json").read_text())["best"] == record["best"]
    again = tune("FineTune", "digits-peers-class0", {"optimizer.init_args.lr": [1e-4, 1e-1, "log"]}, trials=2, seeds=(100,),
                 scenario={"classes": [1]}, init_args={"budget": {"max_epochs": 1}}, output=str(output))
    assert [t["value"] for t in again["history"]] == [t["value"] for t in record["history"]]  # resumed: no new trial


def test_a_command_mapping_keeps_a_nested_class_path_as_written():
    """`--init_args` with an optimizer's class_path reaches the method as written (jsonargparse would expand it into a
    namespace of every SGD argument, which the method refuses)."""
    from benchmark.leaderboard.commands import mapping

    text = "{optimizer: {class_path: torch.optim.SGD, init_args: {lr: 1e-4, momentum: 0.9}}, budget: {max_epochs: 5}}"
    assert mapping(text, "init_args") == {"optimizer": {"class_path": "torch.optim.SGD", "init_args": {"lr": 1e-4, "momentum": 0.9}}, "budget": {"max_epochs": 5}}
    with pytest.raises(UnlearnBenchError, match="must be a mapping"):
        mapping("[1, 2]", "init_args")


def test_a_search_killed_midway_resumes_without_repeating_a_trial(tmp_path):
    """S4: the driver killed once 3 of 6 trials are complete; the same command ends at 6, the first 3 kept as they were."""
    home = tmp_path / "home"
    args = [sys.executable, "cli.py", "tune", "--method", "FineTune", "--track", "digits-peers-class0", "--trials", "6", "--seeds", "[100]",
            "--space", "{optimizer.init_args.lr: [1e-4, 1e-1, log]}", "--scenario", "{classes: [1]}",
            "--init_args", "{budget: {max_epochs: 1}}", "--output", str(tmp_path / "tuned.yaml"), "--progress", "false"]
    env = {**os.environ, "UNLEARNBENCH_HOME": str(home)}
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline, complete = time.time() + 240, []
    while len(complete) < 3 and process.poll() is None and time.time() < deadline:
        time.sleep(0.2)
        for db in (home / "tuning").glob("*.db"):
            with contextlib.suppress(sqlite3.OperationalError), contextlib.closing(sqlite3.connect(db)) as connection:
                complete = connection.execute("SELECT number, value FROM trials JOIN trial_values USING (trial_id) "
                                              "WHERE state = 'COMPLETE' ORDER BY number").fetchall()
    process.kill()
    assert process.wait(timeout=30) != 0 and 3 <= len(complete) < 6, process.stderr.read()
    rerun = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    history = json.loads((tmp_path / "tuned.json").read_text())["history"]
    assert len(history) == 6 and [(t["trial"], t["value"]) for t in history[:len(complete)]] == complete


def test_trials_run_in_parallel_as_cached_sweep_runs_and_a_rerun_reads_them(tmp_path):
    """`--parallel 2`: two trials asked at once, their runs one sweep (on Ray with `--executor ray`: the executors are
    tested in test_sweep.py)."""
    common = {"method": "FineTune", "track": "digits-peers-class0", "space": {"optimizer.init_args.lr": [1e-4, 1e-1, "log"]}, "trials": 2,
              "seeds": (100,), "scenario": {"classes": [1]}, "init_args": {"budget": {"max_epochs": 1}}, "output": str(tmp_path / "tuned.yaml"),
              "sampler_seed": 7}
    record = tune(**common, parallel=2)
    assert [t["trial"] for t in record["history"]] == [0, 1] and len({t["params"]["optimizer.init_args.lr"] for t in record["history"]}) == 2
    states = [json.loads(p.read_text()) for p in (home() / "tuning" / record["study"] / "runs" / "results").glob("*.json")]
    trials = [s for s in states if s["config"]["model"]["class_path"].endswith("FineTune")]
    assert len(trials) == 2 and all(s["status"] == "done" and len(s["attempts"]) == 1 for s in trials)
    assert tune(**common)["history"] == record["history"]  # (resumed: nothing runs again)


def test_trials_of_the_same_values_share_their_runs():
    record = tune("FineTune", "digits-peers-class0", {"optimizer.init_args.lr": {"choices": [0.01]}}, trials=2, seeds=(100,),
                  scenario={"classes": [1]}, init_args={"budget": {"max_epochs": 1}}, sampler_seed=3, parallel=2,
                  output=str(home() / "shared.yaml"))
    assert [t["trial"] for t in record["history"]] == [0, 1] and record["history"][0]["value"] == record["history"][1]["value"]
    states = [json.loads(p.read_text()) for p in (home() / "tuning" / record["study"] / "runs" / "results").glob("*.json")]
    assert len([s for s in states if s["config"]["model"]["class_path"].endswith("FineTune")]) == 1
