"""`cli.py analyze RECORD`: seed 000's confusion, t-SNE (before / after) and CKA figures of a finished run, beside its record."""

from pathlib import Path

import pytest
from PIL import Image

from benchmark.experiment import runner
from benchmark.experiment.continual import run_stream, write_stream
from benchmark.metrics.evaluator import Evaluation
from benchmark.models.pretraining import Pretrained
from cli import cli_main
from datamodules.scenarios import RandomInstances
from methods import NegGrad

ANALYSES = {"confusion_forget.png": "Label confusion", "tsne_before.png": "t-SNE", "tsne.png": "t-SNE", "cka_forget.png": "Layer-wise linear CKA",
            "cka_retain.png": "Layer-wise linear CKA"}


def assert_analyses(record: dict, method: str) -> None:
    folder = Path(record["path"]).with_name(Path(record["path"]).stem + "-figures")
    for name, what in ANALYSES.items():
        with Image.open(folder / name) as image:
            title = image.info["Title"]
            assert image.size[0] > 100 and title.startswith(what), title
            assert ("before unlearning" if name == "tsne_before.png" else method) in title
    assert "forget" in Image.open(folder / "cka_forget.png").info["Title"] and "retain" in Image.open(folder / "cka_retain.png").info["Title"]


def test_analyze_a_finished_digits_run(tmp_path, capsys):
    record = runner.run(NegGrad(budget={"max_epochs": 2, "stop": "none"}), RandomInstances(k=24, seed=3), Pretrained(), results_dir=str(tmp_path),
                        progress=False, evaluation=Evaluation(mia=False))
    assert "figures" not in record
    cli_main(["analyze", record["path"]])
    assert_analyses(record, "NegGrad")
    assert len(capsys.readouterr().out.splitlines()) == 7  # write_figures' six figures and the t-SNE before


def test_analyze_a_continual_step(tmp_path):
    stream = write_stream("digits", k_cl=8, steps=2, seed=4, request_dir=str(tmp_path))
    _, step_2 = run_stream(NegGrad(budget={"max_epochs": 2, "stop": "none"}), stream, Pretrained(), evaluation=Evaluation(mia=False), results_dir=str(tmp_path / "results"), progress=False)
    cli_main(["analyze", step_2["path"]])
    assert_analyses(step_2, "NegGrad")


def test_a_missing_record_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["analyze", str(tmp_path / "none.json")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"error: result record {tmp_path / 'none.json'} does not exist"]
