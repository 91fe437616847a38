"""`cli.py suite`: a paper table over k × seeds × rows, in the paper's layout, resumable."""

import json

import pytest

from benchmark.errors import UnlearnBenchError
from benchmark.evaluation import Evaluation
from benchmark.suites import SUITES, Row, Suite, run_suite

TINY = Suite(
    title="tiny", dataset="digits", ks=(8, 12), seeds=(0, 1), evaluation=Evaluation(mia=False),
    rows=(Row("BEFORE", "Original"), Row("FINETUNE", "FineTune", {"max_epochs": 1})),
    companion_metrics=("cost/seconds",),
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    SUITES.register("tiny_test_suite")(TINY)
    folder = tmp_path_factory.mktemp("suite")
    return folder, run_suite("tiny_test_suite", results_dir=str(folder / "runs"), out=str(folder / "tiny.md"), progress=False)


def test_paper_layout_with_mean_and_std_over_seeds(tiny):
    folder, result = tiny
    text = (folder / "tiny.md").read_text()
    header = next(line for line in text.splitlines() if "k = 8" in line)
    assert [cell.strip() for cell in header.split("|")[2:]] == ["k = 8", "k = 12"]
    lines = text.split("```")[1].strip().splitlines()[2:]
    assert [line.split("|")[0].strip() for line in lines] == ["D_f (↓)", "", "D_r (↑)", "", "D_test (↑)", ""]
    assert [line.split("|")[1].strip() for line in lines] == ["BEFORE", "FINETUNE"] * 3
    records = [r for r in result["records"] if r["method"] == "FineTune" and r["scenario"]["k"] == 8]
    values = [100 * r["metrics"]["retain/acc"] for r in records]
    mean, std = (sum(values) / 2, abs(values[0] - values[1]) / 2 ** 0.5)
    assert f"{mean:.2f} ± {std:.2f}" in lines[3]
    assert "python cli.py suite" in text


def test_an_interrupted_suite_resumes_without_rerunning(tiny):
    folder, result = tiny
    before = {r["path"]: r["created"] for r in result["records"]}
    again = run_suite("tiny_test_suite", results_dir=str(folder / "runs"), out=str(folder / "tiny2.md"), progress=False)
    assert {r["path"]: r["created"] for r in again["records"]} == before
    assert len(before) == 2 * 2 * 2 and all(json.loads(open(p).read())["config"]["suite"] == "tiny_test_suite" for p in before)


def test_bad_grid_is_one_line():
    with pytest.raises(UnlearnBenchError, match="ks must be positive"):
        run_suite("instancewise_table1", ks=[0])
    with pytest.raises(UnlearnBenchError, match="multiple of k_cl"):
        run_suite("instancewise_continual", dataset="digits", ks=[12], seeds=[0])
