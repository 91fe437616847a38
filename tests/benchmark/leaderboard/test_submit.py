"""Submitting a method from a user's file, verifying the entry, and refusing what must be refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from benchmark.commands import tools
from benchmark.leaderboard.commands import COMMANDS
from benchmark.leaderboard.schema import load_entry
from benchmark.leaderboard.submit import EntryMismatch, verify
from benchmark.leaderboard.tracks import LEADERBOARD, ROOT, load_track
from datamodules.scenarios import RandomInstances
from tests.conftest import run_here
from tests.benchmark.leaderboard.conftest import TINY_K, continual_track_data, track_data, write_track

EXAMPLE = "leaderboard/example_method.py:GentleAscent"

BAD_METHODS = '''
import torch
import torch.nn.functional as F
from datamodules.access import FORGET_ONLY
from methods.base import UnlearningMethod


class Raising(UnlearningMethod):
    def training_step(self, batch, batch_idx):
        raise RuntimeError("boom")


class NanLoss(UnlearningMethod):
    def training_step(self, batch, batch_idx):
        x, y = batch["forget"]
        return F.cross_entropy(self.model(x), y) * float("nan")


class Greedy(UnlearningMethod):
    data_access = FORGET_ONLY
    train_splits = ("forget", "retain")

    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self.model(batch["retain"][0]), batch["retain"][1])
'''


@pytest.fixture
def tiny(leaderboard):
    """A one-seed track forgetting TINY_K digits images (same original model as the digits tracks)."""
    scenario = RandomInstances(k=TINY_K, seed=0, relabel=True)
    scenario.setup()
    return write_track(leaderboard, track_data("tiny", [{"seed": 0, "request": scenario.request.hash}]))


def cli(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """`python cli.py ARGS` in this process, the leaderboard commands in cli's dispatch; (exit status, last stderr line)."""
    for name, command in COMMANDS.items():
        monkeypatch.setitem(tools.TOOLS, name, command)
    result = run_here(capsys, *args)
    lines = result.stderr.strip().splitlines()
    return result.returncode, lines[-1] if lines else ""


def test_submit_a_method_file_then_verify_and_a_changed_number_fails(tiny, leaderboard, tmp_path, monkeypatch, capsys):
    mine = tmp_path / "elsewhere" / "mine.py"  # a file outside the repository, gone after the submission
    mine.parent.mkdir()
    mine.write_text((ROOT / EXAMPLE.split(":")[0]).read_text())
    code, _ = cli(monkeypatch, capsys, "submit", "--method", f"{mine}:GentleAscent", "--track", "tiny", "--leaderboard", str(leaderboard))
    assert code == 0
    mine.unlink()
    path = leaderboard / "entries" / "tiny" / "GentleAscent.json"
    entry = load_entry(path, tiny)
    kept = leaderboard / entry["source"]["file"]
    assert entry["source"]["file"].startswith("methods/mine-") and kept.read_text() == (ROOT / EXAMPLE.split(":")[0]).read_text()
    assert str(tmp_path) not in path.read_text() + (leaderboard / "README.md").read_text() + (leaderboard / "index.html").read_text()
    assert entry["config"]["hparams"]["optimizer"]["init_args"]["lr"] == 1e-4 and entry["runs"][0]["pretrained_sha256"] == tiny.pretrained["sha256"]
    assert "GentleAscent" in (leaderboard / "README.md").read_text() and "GentleAscent" in (leaderboard / "index.html").read_text()

    code, _ = cli(monkeypatch, capsys, "verify", str(path))
    assert code == 0

    forged = json.loads(path.read_text())
    value = forged["runs"][0]["metrics"]["test/acc"]
    changed = value - 2 * tiny.tolerance if value > 0.5 else value + 2 * tiny.tolerance
    forged["runs"][0]["metrics"]["test/acc"] = changed
    forged["metrics"]["test/acc"].update(values=[changed], mean=changed)  # a well-formed entry with a false number
    path.write_text(json.dumps(forged))
    code, message = cli(monkeypatch, capsys, "verify", str(path))
    assert code == 2
    assert message.startswith("error: verify ") and f"seed 0 test/acc: claimed {changed}, recomputed {value}" in message
    assert "the entry was made on" not in message  # (this machine made it)
    with pytest.raises(EntryMismatch) as same:
        verify(path, leaderboard=leaderboard)
    assert not same.value.other_cpu
    forged["hardware"] = {**forged["hardware"], "cpu": "Another CPU", "cpu_capability": "AVX2"}
    path.write_text(json.dumps(forged))
    with pytest.raises(EntryMismatch, match=r"the entry was made on Another CPU \(AVX2\), this machine is ") as other:
        verify(path, leaderboard=leaderboard)
    assert other.value.other_cpu


@pytest.mark.parametrize("method, reason", [
    ("Raising", "the method raised RuntimeError: boom at "),
    ("NanLoss", "the training loss is not finite at the first step"),
    ("Greedy", "Greedy declared access to forget set and cannot read the 'retain' split"),
])
def test_a_broken_method_file_is_one_line_and_writes_no_entry(method, reason, tiny, leaderboard, tmp_path, monkeypatch, capsys):
    (tmp_path / "bad_methods.py").write_text(BAD_METHODS)
    code, message = cli(monkeypatch, capsys, "submit", "--method", f"{tmp_path / 'bad_methods.py'}:{method}", "--track", "tiny",
                        "--leaderboard", str(leaderboard))
    assert code == 2
    assert message.startswith(f"error: {method} on track tiny, seed 0: ") and reason in message and message.endswith("no entry written"), message
    assert not (leaderboard / "entries").exists()


def test_a_registered_method_and_init_args(tiny, leaderboard, monkeypatch, capsys):
    code, _ = cli(monkeypatch, capsys, "submit", "--method", "FineTune", "--track", "tiny", "--init_args", "{budget: {max_epochs: 1}}",
                  "--leaderboard", str(leaderboard), "--no_render", "true")
    assert code == 0
    entry = load_entry(leaderboard / "entries" / "tiny" / "FineTune.json", tiny)
    assert entry["source"] == {"kind": "registered"} and entry["config"]["init_args"] == {"budget": {"max_epochs": 1}}
    assert entry["runs"][0]["metrics"]["cost/epochs"] == 1

    path = leaderboard / "entries" / "tiny" / "FineTune.json"
    before = path.read_text()
    args = ["submit", "--method", "FineTune", "--track", "tiny", "--init_args", "{budget: {max_epochs: 2}}", "--leaderboard", str(leaderboard), "--no_render", "true"]
    code, line = cli(monkeypatch, capsys, *args)
    assert code == 2 and "holds FineTune with another configuration (init_args.budget.max_epochs: 1 there, 2 here); give --replace true" in line, line
    assert path.read_text() == before
    code, _ = cli(monkeypatch, capsys, *args, "--replace", "true")
    assert code == 0 and load_entry(path, tiny)["runs"][0]["metrics"]["cost/epochs"] == 2


@pytest.mark.parametrize("change, message", [
    (lambda d: d["pretrained"].update(sha256="0" * 64), "the local original small_cnn (recipe digits, seed 0) hashes to"),
    (lambda d: d["runs"][0].update(request="0" * 64), "tiny, seed 0: the local forget request hashes to"),
    (lambda d: d["pretrained"].update(arch="resnet9000"), "unknown model 'resnet9000'"),
])
def test_submit_refuses_a_setup_that_does_not_hash_to_the_track(change, message, tiny, leaderboard, monkeypatch, capsys):
    data = track_data("tiny", list(tiny.runs))
    change(data)
    write_track(leaderboard, data)
    code, line = cli(monkeypatch, capsys, "submit", "--method", "FineTune", "--track", "tiny", "--leaderboard", str(leaderboard))
    assert code == 2 and line.startswith("error: ") and message in line, line
    assert not (leaderboard / "entries").exists()


def test_a_continual_track_runs_the_stream_as_the_suite_does_and_verifies(leaderboard, tmp_path, monkeypatch, capsys):
    """A method's continual run is the stream unlearned step after step (the suite's `run_stream`), so its entry has the
    suite's numbers and `verify` recomputes it; Retrain, whose result does not depend on the model a step starts from,
    is one retraining per run at the track's step."""
    from benchmark.experiment.continual import run_stream
    from methods import METHODS

    track = write_track(leaderboard, continual_track_data("tiny-continual", leaderboard, seeds=(0,)))
    args = ["--track", "tiny-continual", "--leaderboard", str(leaderboard), "--no_render", "true"]
    code, _ = cli(monkeypatch, capsys, "submit", "--method", "FineTune", "--init_args", "{budget: {max_epochs: 1}}", *args)
    path = leaderboard / "entries" / "tiny-continual" / "FineTune.json"
    entry = load_entry(path)
    assert code == 0 and [run["scenario"]["step"] for run in entry["runs"]] == [2]
    suite_way = run_stream(METHODS.get("FineTune")(budget={"max_epochs": 1}), track.scenario["init_args"]["stream"], track.make_pretrained(),
                           seed=0, steps=2, evaluation=track.make_evaluation(), results_dir=str(tmp_path), progress=False, measured_steps={2})
    assert entry["runs"][0]["metrics"]["forgotten/acc"] == suite_way[-1]["metrics"]["forgotten/acc"]
    assert entry["runs"][0]["metrics"]["retain/acc"] == suite_way[-1]["metrics"]["retain/acc"]
    code, _ = cli(monkeypatch, capsys, "verify", str(path))
    assert code == 0
    code, _ = cli(monkeypatch, capsys, "submit", "--method", "Retrain", *args)
    entry = load_entry(leaderboard / "entries" / "tiny-continual" / "Retrain.json")
    assert code == 0 and [run["scenario"]["step"] for run in entry["runs"]] == [2]
    assert entry["metrics"]["forgotten/acc"]["n"] == 1  # (one run; forgotten/acc scores every image of the stream so far)


@pytest.mark.parametrize("args, message", [
    (["--method", "Forgetful", "--track", "digits-class0"], "unknown method 'Forgetful'; known: ActivationMask, Adv, AdvImp"),
    (["--method", "FineTune", "--track", "nope"], "unknown track 'nope'; known: digits-class0, "),
    (["--method", "missing.py:X", "--track", "digits-class0"], "method file missing.py does not exist"),
    (["--method", f"{EXAMPLE}x", "--track", "digits-class0"], "no class 'GentleAscentx'; its UnlearningMethod subclasses: GentleAscent"),
    (["--method", "FineTune", "--track", "digits-class0", "--init_args", "{lr: 0.1, speed: 2}"], "FineTune does not take lr, speed; its settings: optimizer, budget, batchnorm"),
    (["--method", "FineTune", "--track", "digits-class0", "--init_args", "{optimizer: {init_args: {lr: -1}}}"], "Invalid learning rate: -1"),
    (["--method", "FineTune", "--track", "digits-class0", "--init_args", "{budget: {max_epochs: -1}}"], "budget.max_epochs = -1 is not allowed; an integer > 0"),
    (["--method", "FineTune", "--track", "digits-class0", "--init_args", "[1, 2]"], "--init_args must be a mapping"),
    (["--method", "FineTune", "--track", "digits-class0", "--init_args", "{optimizer: {class_path: torch.optim.SGD, init_args: {lr: -1}}}"],
     "Invalid learning rate: -1"),
])
def test_bad_submit_arguments_are_one_line(args, message, leaderboard, monkeypatch, capsys):
    code, line = cli(monkeypatch, capsys, "submit", *args, "--leaderboard", str(leaderboard))
    assert code == 2 and line.startswith("error: ") and message in line, line


def test_the_committed_tracks_are_valid_and_stamped():
    from benchmark.leaderboard.tracks import list_tracks

    names = list_tracks()
    assert {"digits-random10", "digits-class0"} <= set(names)
    for name in names:
        track = load_track(name)
        assert track.path == LEADERBOARD / "tracks" / f"{name}.yaml" and track.ranking.reference == "Retrain"
        if name.startswith("digits"):
            assert track.pretrained["sha256"] and all(r["request"] for r in track.runs)
    guide = (ROOT / "README.md").read_text().split("## Leaderboard: adding your method in four steps")[1].split("\n## ")[0]
    assert "example_method.py:GentleAscent" in guide and (ROOT / "leaderboard" / "example_method.py").exists()


def test_ctrl_c_during_submit_says_no_entry_was_written(leaderboard, tmp_path):
    home = tmp_path / "home"
    args = ["submit", "--method", "FineTune", "--track", "digits-class0", "--init_args", "{budget: {max_epochs: 500}}", "--leaderboard", str(leaderboard), "--no_render", "true"]
    process = subprocess.Popen([sys.executable, "cli.py", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "UNLEARNBENCH_HOME": str(home)},
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # CI may start us with SIGINT ignored
    deadline = time.time() + 120
    while not (home / "requests").exists() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(3)  # well into the 500 epochs of the first seed
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130 and err.strip().splitlines()[-1] == "error: interrupted; no entry was written", err
    assert not (leaderboard / "entries").exists()
