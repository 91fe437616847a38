"""Continual runs: each step starts from the previous step's model, records its step and k, and a rerun resumes."""

import json
import shutil

import torch

from benchmark import training
from benchmark.core.record import load_record
from benchmark.experiment import runner
from benchmark.experiment.continual import run_stream, write_stream
from benchmark.metrics.evaluator import Evaluation
from benchmark.models.pretraining import Pretrained
from cli import cli_main
from methods import NegGrad


def test_steps_chain_models_record_step_and_k_and_resume(tmp_path, monkeypatch, capsys):
    stream = write_stream("digits", k_cl=3, steps=3, seed=1, request_dir=str(tmp_path))
    starts, runs = [], []
    obtain, run = training.obtain_original, runner.run

    def recording_obtain(scenario, pretrained, progress=True):
        model = obtain(scenario, pretrained, progress)
        starts.append({k: v.clone() for k, v in model.state_dict().items()})
        return model

    def counting_run(method, scenario, *args, **kwargs):
        runs.append(scenario.step)
        return run(method, scenario, *args, **kwargs)

    monkeypatch.setattr(training, "obtain_original", recording_obtain)
    monkeypatch.setattr(runner, "run", counting_run)
    options = {"pretrained": Pretrained(), "evaluation": Evaluation(mia=False), "results_dir": str(tmp_path / "results"), "progress": False}
    first_two = run_stream(NegGrad(budget={"max_epochs": 2, "stop": "none"}), stream, steps=2, **options)  # then "interrupted"
    records = run_stream(NegGrad(budget={"max_epochs": 2, "stop": "none"}), stream, **options)
    assert runs == [1, 2, 3]  # steps 1 and 2 were not run again
    assert records[:2] == first_two

    assert [(r["scenario"]["step"], r["scenario"]["k"], r["request"]["num_forget"]) for r in records] == [(1, 3, 3), (2, 6, 6), (3, 9, 9)]
    assert all("forgotten/acc" in r["metrics"] and "forget/acc" in r["metrics"] for r in records)
    assert records[0]["pretrained"]["checkpoint"] is None
    for t in (1, 2):
        assert records[t]["pretrained"]["checkpoint"] == records[t - 1]["weights"]
        saved = torch.load(records[t - 1]["weights"], weights_only=True)["state_dict"]
        assert all(torch.equal(starts[t][k], saved[k]) for k in saved)  # step t + 1 started from step t's model
        assert not all(torch.equal(starts[t][k], starts[0][k]) for k in saved)  # which is not the original

    requests = [json.loads(open(r["request"]["path"]).read())["forget_indices"] for r in records]
    chunks = [set(requests[0]), set(requests[1]) - set(requests[0]), set(requests[2]) - set(requests[1])]
    assert all(len(c) == 3 for c in chunks) and len(set().union(*chunks)) == 9  # disjoint chunks, cumulative requests
    assert requests[1][:3] == requests[0] and requests[2][:6] == requests[1]

    cli_main(["continual", "--method", "NegGrad", "--method.budget.max_epochs", "2", "--method.budget.stop", "none", "--stream", str(stream), "--evaluation.mia", "false",
              "--results_dir", str(tmp_path / "results"), "--progress", "false"])
    assert runs == [1, 2, 3]  # all recorded: the command only prints
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if line.startswith("step"))
    assert [c.strip() for c in header.split("|")] == ["step", "k", "forget/acc", "forgotten/acc", "retain/acc", "test/acc", "cost/seconds"]
    assert [line.split("|")[:2] for line in lines[-3:]] == [[f"{t}    ", f" {3 * t} "] for t in (1, 2, 3)]


def test_a_step_from_another_start_is_another_run(tmp_path):
    stream = write_stream("digits", k_cl=3, steps=1, seed=2, request_dir=str(tmp_path))
    options = {"evaluation": Evaluation(mia=False), "results_dir": str(tmp_path / "results"), "progress": False}
    (first,) = run_stream(NegGrad(budget={"max_epochs": 2, "stop": "none"}), stream, Pretrained(), **options)
    other = tmp_path / "other.pt"
    shutil.copy(first["weights"], other)  # the same weights, given as a checkpoint file
    (second,) = run_stream(NegGrad(budget={"max_epochs": 2, "stop": "none"}), stream, Pretrained(checkpoint=str(other)), **options)
    assert second["path"] != first["path"] and second["pretrained"]["checkpoint"] == str(other)
    assert load_record(first["path"]).pretrained.checkpoint is None  # the first run's record is not overwritten
    (again,) = run_stream(NegGrad(budget={"max_epochs": 2, "stop": "none"}), stream, Pretrained(), **options)
    assert again["path"] == first["path"] and again["created"] == first["created"]  # the same run is found again, not rerun


def test_only_the_measured_steps_get_the_attacks(tmp_path):
    stream = write_stream("digits", k_cl=6, steps=2, seed=3, request_dir=str(tmp_path))
    records = run_stream(NegGrad(budget={"max_epochs": 1, "stop": "none"}), stream, Pretrained(), evaluation=Evaluation(mia=True), measured_steps={2},
                         results_dir=str(tmp_path / "results"), progress=False)
    assert "mia/svm_asr" not in records[0]["metrics"] and "retain/acc" in records[0]["metrics"]
    assert "mia/svm_asr" in records[1]["metrics"]
