"""SLURM's requeue on one host (issue 22 §1): a requeued job's `hpc_ckpt_*` is never what `trainer.test` evaluates, and
SIGUSR1 before the time limit checkpoints, requeues the job (a fake `scontrol`) and its relaunch resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import torch

from benchmark.perf.scale import CRASH_HALFWAY
from tests.conftest import ROOT, records_in
from tests.test_multinode import LAUNCHED, RUN, cli, free_port, slurm, together


def test_on_slurm_the_fitted_weights_are_evaluated_not_an_hpc_checkpoint(tmp_path):
    """A requeued job: `hpc_ckpt_1.ckpt` holds the fit after epoch 1 (as Lightning's SIGUSR1 handler would have saved it);
    the rerun resumes its fit from it (Lightning's SLURM behaviour) and trains epoch 2. Lightning's `trainer.test(model)`
    would then evaluate hpc_ckpt_1 again; the record must hold the weights at the end of the fit."""
    root, fitted = tmp_path / "root", tmp_path / "fitted"
    one_task = slurm(1, 0, 1)
    common = [*RUN, "--trainer.default_root_dir", str(root)]
    checkpoints = ["--trainer.enable_checkpointing", "true", "--trainer.callbacks+=ModelCheckpoint", "--trainer.callbacks.save_top_k", "-1"]
    (first,) = together([(cli("fit", *common, "--model.budget.max_epochs", "1", *checkpoints, "--trainer.callbacks.dirpath", str(root),
                              "--trainer.callbacks.filename", "hpc_ckpt_1", "--results_dir", str(tmp_path / "first")), one_task)], tmp_path / "logs1")
    assert first.returncode == 0, first.stderr[-3000:]
    (requeued,) = together([(cli("fit", *common, "--model.budget.max_epochs", "2", *checkpoints, "--trainer.callbacks.dirpath", str(fitted),
                                 "--trainer.callbacks.filename", "{epoch}", "--results_dir", str(tmp_path / "requeued")), one_task)], tmp_path / "logs2")
    assert requeued.returncode == 0, requeued.stderr[-3000:]
    assert [p.name for p in fitted.iterdir()] == ["epoch=1.ckpt"]  # it resumed from hpc_ckpt_1: epoch 0 was not trained again

    def model_weights(path: Path) -> dict[str, torch.Tensor]:
        return {k.removeprefix("model."): v for k, v in torch.load(path, weights_only=True)["state_dict"].items() if k.startswith("model.")}

    (record,) = records_in(tmp_path / "requeued")
    evaluated, at_end, requeue = torch.load(record["weights"], weights_only=True)["state_dict"], model_weights(fitted / "epoch=1.ckpt"), model_weights(root / "hpc_ckpt_1.ckpt")
    assert evaluated.keys() == at_end.keys() == requeue.keys()
    assert all(torch.equal(evaluated[k], at_end[k]) for k in at_end)
    assert not all(torch.equal(evaluated[k], requeue[k]) for k in requeue)

    (tested,) = together([(cli("test", *common, "--model.budget.max_epochs", "2", "--results_dir", str(tmp_path / "requeued")), one_task)], tmp_path / "logs3")
    assert tested.returncode == 0, tested.stderr[-3000:]
    (record,) = records_in(tmp_path / "requeued")  # `cli.py test` of the fit's saved weights, hpc_ckpt_1 beside it
    assert all(torch.equal(torch.load(record["weights"], weights_only=True)["state_dict"][k], at_end[k]) for k in at_end)


def test_sigusr1_on_slurm_checkpoints_requeues_the_job_and_its_relaunch_resumes(tmp_path):
    """T5: SLURM's warning before the time limit (`--signal=SIGUSR1@120`): Lightning saves `hpc_ckpt_1.ckpt` in the
    job's root dir and runs `scontrol requeue <job id>` (a fake on PATH records it); the relaunched job resumes from it
    (a process would die if it started over: `CrashHalfway` at epoch 0) and writes its record."""
    (tmp_path / "crash.py").write_text(CRASH_HALFWAY)
    (tmp_path / "bin").mkdir()
    scontrol = tmp_path / "bin" / "scontrol"
    scontrol.write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path / 'scontrol.calls'}\n")
    scontrol.chmod(0o755)
    root, marker = tmp_path / "root", tmp_path / "died"
    marker.touch()  # (the first launch never dies)
    argv = cli("fit", "--model", f"{tmp_path / 'crash.py'}:CrashHalfway", "--model.marker", str(marker), "--model.at", "0", *RUN[2:],
               "--model.budget.max_epochs", "12", "--trainer.default_root_dir", str(root), "--trainer.enable_checkpointing", "true",
               "--trainer.callbacks+=ModelCheckpoint", "--trainer.callbacks.dirpath", str(tmp_path / "epochs"), "--results_dir", str(tmp_path / "results"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(LAUNCHED)} | slurm(1, 0, 1) | {
        "OMP_NUM_THREADS": "1", "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}", "MASTER_PORT": str(free_port())}
    with open(tmp_path / "first.err", "w") as err:
        first = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not list((tmp_path / "epochs").glob("*.ckpt")) and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)  # (the fit is under way once its first epoch's checkpoint is there)
        first.send_signal(signal.SIGUSR1)
        while not (root / "hpc_ckpt_1.ckpt").exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # (SLURM ends the job at its time limit)
        first.wait()
    assert (root / "hpc_ckpt_1.ckpt").exists(), (tmp_path / "first.err").read_text()[-3000:]
    assert (tmp_path / "scontrol.calls").read_text().split() == ["requeue", "4242"]
    assert not (tmp_path / "results").exists()
    marker.unlink()
    (requeued,) = together([(argv, slurm(1, 0, 1) | {"PATH": env["PATH"], "MASTER_PORT": str(free_port())})], tmp_path / "logs")
    assert requeued.returncode == 0, requeued.stderr[-3000:]
    (record,) = records_in(tmp_path / "results")
    assert record["method"] == "CrashHalfway" and not marker.exists()  # (resumed: epoch 0 not trained again)
