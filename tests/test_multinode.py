"""One `cli.py fit` run across processes and nodes (issue 22 §1): Lightning's own launcher (MASTER_ADDR / NODE_RANK),
torchrun and SLURM's environment each start two "nodes" on this host (gloo on 127.0.0.1) that make one DDP run: one
record naming the cluster environment, the weights and measures of a two-process run on one node. A launcher that
starts several processes for a one-process trainer is a one-line error; a fit whose process died resumes from its last
checkpoint to the uninterrupted result. SLURM's requeue: test_slurm.py."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from benchmark.perf.scale import CRASH_HALFWAY
from tests.conftest import QUIET, ROOT, records_in, run_here

RUN = ["--model", "FineTune", "--data", "RandomInstances", "--data.k", "7", "--trainer.accelerator", "cpu", *QUIET]
FIT = ["fit", *RUN, "--model.budget.max_epochs", "2"]
TWO_NODES = ["--trainer.strategy", "ddp", "--trainer.devices", "1", "--trainer.num_nodes", "2"]
LAUNCHED = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
            "TORCHELASTIC", "SLURM_")


def slurm(tasks: int, task: int, nodes: int) -> dict[str, str]:
    """What `srun` gives task `task` of `tasks`, one per node, on this host."""
    return {"SLURM_NTASKS": str(tasks), "SLURM_NTASKS_PER_NODE": str(tasks // nodes), "SLURM_NNODES": str(nodes), "SLURM_JOB_ID": "4242",
            "SLURM_JOB_NAME": "ub", "SLURM_NODELIST": "127.0.0.1", "SLURM_LOCALID": "0", "SLURM_PROCID": str(task), "SLURM_NODEID": str(task)}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def together(commands: list[tuple[list[str], dict[str, str]]], logs: Path, timeout: float = 300) -> list[SimpleNamespace]:
    """Start the commands at once, as a launcher starts its nodes (no launcher variables of ours leak in: this may run
    inside a SLURM job), from the repository root; wait for all of them. When one fails the others would wait for it
    until gloo's timeout: then, and on `timeout`, every process group left is killed."""
    logs.mkdir(parents=True, exist_ok=True)
    base = {k: v for k, v in os.environ.items() if not k.startswith(LAUNCHED)} | {"OMP_NUM_THREADS": "1"}
    processes = []
    try:
        for i, (argv, env) in enumerate(commands):
            with open(logs / f"{i}.out", "w") as out, open(logs / f"{i}.err", "w") as err:
                processes.append(subprocess.Popen(argv, cwd=ROOT, env=base | env, stdout=out, stderr=err, start_new_session=True))
        deadline = time.monotonic() + timeout
        while any(p.poll() is None for p in processes) and not any(p.poll() for p in processes) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    return [SimpleNamespace(returncode=p.returncode, stdout=(logs / f"{i}.out").read_text(), stderr=(logs / f"{i}.err").read_text())
            for i, p in enumerate(processes)]


def cli(*args: str) -> list[str]:
    return [sys.executable, "cli.py", *args]


def torchrun(launcher: list[str], args: list[str]) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", *launcher, "cli.py", *args]


def launch(launcher: str, results: Path) -> list[tuple[list[str], dict[str, str]]]:
    """The commands that make the two-process fit `launcher` names, writing to `results`."""
    fit, port = [*FIT, "--results_dir", str(results)], str(free_port())
    if launcher == "one node":
        return [(cli(*fit, "--trainer.strategy", "ddp", "--trainer.devices", "2"), {})]
    if launcher == "node rank":
        return [(cli(*fit, *TWO_NODES), {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "NODE_RANK": str(i)}) for i in range(2)]
    if launcher == "torchrun":
        return [(torchrun(["--nnodes", "2", "--nproc-per-node", "1", "--node-rank", str(i), "--master-addr", "127.0.0.1", "--master-port", port],
                          [*fit, *TWO_NODES]), {}) for i in range(2)]
    return [(cli(*fit, *TWO_NODES), {**slurm(2, i, 2), "MASTER_PORT": port}) for i in range(2)]


ENVIRONMENTS = {"one node": ("LightningEnvironment", 1, 2), "node rank": ("LightningEnvironment", 2, 1), "torchrun": ("TorchElasticEnvironment", 2, 1),
                "slurm": ("SLURMEnvironment", 2, 1)}
"""Each launcher's cluster environment (Lightning's name), its nodes and the devices per node."""


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """`fitted(launcher)`: the processes' outputs and the results folder of the two-process fit `launcher` makes (run once;
    "one node" runs first when asked first: it pretrains the original alone, before its second process starts)."""
    folder, done = tmp_path_factory.mktemp("multinode"), {}

    def get(launcher: str) -> SimpleNamespace:
        if launcher not in done:
            ended = together(launch(launcher, folder / launcher / "results"), folder / launcher / "logs")
            for process in ended:
                assert process.returncode == 0, process.stderr[-3000:]
            done[launcher] = SimpleNamespace(processes=ended, results=folder / launcher / "results")
        return done[launcher]

    get("one node")
    return get


@pytest.mark.parametrize("launcher", ENVIRONMENTS)
def test_each_launcher_makes_one_run_that_writes_one_record_naming_its_world(fitted, launcher):
    run = fitted(launcher)
    (record,) = records_in(run.results)
    assert sorted(p.name for p in Path(record["path"]).parent.iterdir()) == sorted([Path(record["path"]).name, Path(record["weights"]).name])
    environment, nodes, devices = ENVIRONMENTS[launcher]
    assert {k: record["hardware"][k] for k in ("cluster_environment", "num_nodes", "devices", "world_size")} == {
        "cluster_environment": environment, "num_nodes": nodes, "devices": devices, "world_size": 2}
    assert [p.stdout.count("result record:") for p in run.processes] == [1] + [0] * (len(run.processes) - 1)  # rank 0 alone


def test_the_launchers_give_the_weights_and_measures_of_two_processes_on_one_node(fitted):
    (reference,) = records_in(fitted("one node").results)
    weights = torch.load(reference["weights"], weights_only=True)["state_dict"]
    for launcher in ("node rank", "torchrun", "slurm"):
        (record,) = records_in(fitted(launcher).results)
        assert record["metrics"] == reference["metrics"], launcher
        other = torch.load(record["weights"], weights_only=True)["state_dict"]
        assert other.keys() == weights.keys() and all(torch.equal(other[k], weights[k]) for k in weights), launcher


def test_one_process_measures_the_same_on_the_weights_of_two_nodes(fitted, tmp_path, capsys):
    (record,) = records_in(fitted("slurm").results)
    tested = run_here(capsys, "test", "--model", "Original", "--data", "RandomInstances", "--data.k", "7", "--pretrained.checkpoint", record["weights"],
                      "--trainer.accelerator", "cpu", "--results_dir", str(tmp_path), *QUIET)
    assert tested.returncode == 0, tested.stderr
    (evaluated,) = records_in(tmp_path)
    assert evaluated["hardware"]["world_size"] == 1 and evaluated["metrics"] == record["metrics"]


@pytest.mark.parametrize("launched", [{"WORLD_SIZE": "2"}, slurm(2, 0, 1)], ids=["WORLD_SIZE", "SLURM_NTASKS"])
def test_several_processes_for_a_one_process_trainer_is_a_one_line_error(launched, monkeypatch, tmp_path, capsys):
    for name, value in launched.items():
        monkeypatch.setenv(name, value)
    result = run_here(capsys, *FIT, "--results_dir", str(tmp_path))
    expected = (f"error: {next(iter(launched))}=2 processes were started but the trainer's world is 1 process (--trainer.num_nodes 1 x "
                "--trainer.devices 1, strategy SingleDeviceStrategy): each would be a run of its own; give --trainer.strategy ddp")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(expected)
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_torchrun_with_two_processes_and_one_device_is_an_error_not_two_runs(tmp_path):
    """The issue's case: `torchrun --nproc-per-node 2 cli.py fit` with the default strategy and devices."""
    (ended,) = together([(torchrun(["--nnodes", "1", "--nproc-per-node", "2", "--master-addr", "127.0.0.1", "--master-port", str(free_port())],
                                   [*FIT, "--results_dir", str(tmp_path / "results")]), {})], tmp_path / "logs")
    assert ended.returncode != 0
    assert "error: WORLD_SIZE=2 processes were started but the trainer's world is 1 process" in ended.stderr, ended.stderr[-3000:]
    assert not (tmp_path / "results").exists()


def test_a_run_whose_process_dies_resumes_from_its_last_checkpoint_to_the_uninterrupted_result(fitted, tmp_path):
    """T4: a process of the two-node fit dies at the start of epoch 2 of 2; the same command with `--ckpt_path last`
    resumes from the checkpoint of epoch 1 and ends with the weights and measures of the uninterrupted run."""
    (tmp_path / "crash.py").write_text(CRASH_HALFWAY)
    args = ["fit", "--model", f"{tmp_path / 'crash.py'}:CrashHalfway", "--model.marker", str(tmp_path / "died"), "--model.at", "1", *RUN[2:],
            "--model.budget.max_epochs", "2", *TWO_NODES, "--trainer.enable_checkpointing", "true", "--trainer.callbacks+=ModelCheckpoint",
            "--trainer.callbacks.dirpath", str(tmp_path / "checkpoints"), "--trainer.callbacks.save_last", "true", "--ckpt_path", "last",
            "--results_dir", str(tmp_path / "results")]

    def two_nodes(logs: str, at: int) -> list[SimpleNamespace]:
        port, argv = str(free_port()), list(args)
        argv[argv.index("--model.at") + 1] = str(at)
        return together([(cli(*argv), {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "NODE_RANK": str(i)}) for i in range(2)], tmp_path / logs)

    assert any(p.returncode for p in two_nodes("killed", at=1)) and (tmp_path / "died").exists() and not (tmp_path / "results").exists()
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()
    (tmp_path / "died").unlink()
    resumed = two_nodes("resumed", at=0)  # (a process would die again if the fit started over from epoch 0)
    assert [p.returncode for p in resumed] == [0, 0], resumed[0].stderr[-3000:]
    (record,), (uninterrupted,) = records_in(tmp_path / "results"), records_in(fitted("node rank").results)
    assert record["metrics"] == uninterrupted["metrics"]
    weights, reference = torch.load(record["weights"], weights_only=True)["state_dict"], torch.load(uninterrupted["weights"], weights_only=True)["state_dict"]
    assert all(torch.equal(weights[k], reference[k]) for k in reference)
