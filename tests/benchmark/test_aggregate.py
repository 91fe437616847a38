"""Aggregation over seeds on hand-built result records: mean ± std, gaps to Retrain, avg gap, missing values; `cli.py aggregate`."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest

from benchmark.commands.tools import TOOLS
from benchmark.core.record import ResultRecord, read_records
from benchmark.reports.aggregate import AVG_GAP_METRICS, aggregate, format_aggregate_table

METRICS = ("forget/acc", "retain/acc", "test/acc", "mia/svm_asr", "rt/epochs")
# VALUES[method][metric] = the values of seeds 0, 1, 2
VALUES = {
    "Original": {"forget/acc": [1.00, 0.99, 1.00], "retain/acc": [1.00, 1.00, 0.99], "test/acc": [0.97, 0.96, 0.98],
                 "mia/svm_asr": [0.80, 0.75, 0.78], "rt/epochs": [0.0, 0.0, 0.0]},
    "Retrain": {"forget/acc": [0.95, 0.97, 0.96], "retain/acc": [1.00, 0.99, 1.00], "test/acc": [0.96, 0.97, 0.95],
                "mia/svm_asr": [0.50, 0.55, 0.52], "rt/epochs": [3.0, 4.0, 2.0]},
    "NegGrad": {"forget/acc": [0.90, 0.99, 0.93], "retain/acc": [0.94, 0.98, 0.96], "test/acc": [0.92, 0.95, 0.91],
                "mia/svm_asr": [0.40, 0.70, 0.45], "rt/epochs": [1.0, 0.0, 2.0]},
}
SCENARIO = {"kind": "random_instances", "k": 144, "relabel": False}


def record(method: str, seed: int, *, scenario_seed: int = 0, dataset: str = "digits", values: dict | None = None, k: int = 144) -> dict:
    """A result record in its file layout (every field a record file has)."""
    metrics = values if values is not None else {name: VALUES[method][name][seed] for name in METRICS}
    request = f"{dataset}-{k}-request-{scenario_seed}"
    return {
        "method": method,
        "dataset": dataset,
        "scenario": {**SCENARIO, "k": k, "seed": scenario_seed},
        "request": {"hash": request, "path": f"requests/{request}.json", "num_forget": k},
        "pretrained": {"arch": "small_cnn", "recipe": dataset, "seed": 0, "checkpoint": None},
        "seed": seed,
        "metrics": metrics,
        "timings": {"cost/seconds": 1.0 + seed},
        "stopped_at": None, "diverged": None, "curves": {}, "config": {}, "git_commit": None, "versions": {},
        "hardware": {"accelerator": "CPUAccelerator", "devices": 1, "world_size": 1, "machine": "x86_64", "cpu_count": 2},
        "created": "2026-01-01T00:00:00+0000",
    }


@pytest.fixture
def records() -> list[dict]:
    # deliberately out of seed order: rows must come back in seed order
    return [record(m, s) for s in (2, 0, 1) for m in ("Original", "Retrain", "NegGrad")]


def by_method(rows: list[dict]) -> dict[str, dict]:
    return {row["method"]: row for row in rows}


def test_mean_std_values_against_numpy(records):
    rows = by_method(aggregate(records))
    assert set(rows) == {"Original", "Retrain", "NegGrad"}
    for method, row in rows.items():
        assert row["n"] == 3
        assert [s["seed"] for s in row["seeds"]] == [0, 1, 2]
        for name in METRICS:
            expected = VALUES[method][name]
            entry = row["metrics"][name]
            assert entry["values"] == expected
            assert entry["n"] == 3
            assert entry["mean"] == pytest.approx(np.mean(expected))
            assert entry["std"] == pytest.approx(np.std(expected, ddof=1))


def test_gaps_are_per_seed_then_averaged(records):
    rows = by_method(aggregate(records))
    neggrad = rows["NegGrad"]
    # by hand: |0.90-0.95|, |0.99-0.97|, |0.93-0.96| → 0.05, 0.02, 0.03 → mean 0.10/3
    assert neggrad["metrics"]["forget/acc"]["gaps"] == pytest.approx([0.05, 0.02, 0.03])
    assert neggrad["metrics"]["forget/acc"]["gap"] == pytest.approx(0.10 / 3)
    # mia: |0.40-0.50|, |0.70-0.55|, |0.45-0.52| = 0.10, 0.15, 0.07 → 0.32/3 (the gap of means would be 0.01/3)
    assert neggrad["metrics"]["mia/svm_asr"]["gap"] == pytest.approx(0.32 / 3)
    gaps = {}
    for name in AVG_GAP_METRICS:
        gaps[name] = np.mean([abs(a - b) for a, b in zip(VALUES["NegGrad"][name], VALUES["Retrain"][name])])
        assert neggrad["metrics"][name]["gap"] == pytest.approx(gaps[name])
    assert neggrad["avg_gap"] == pytest.approx(np.mean(list(gaps.values())))
    per_seed = [np.mean([abs(VALUES["NegGrad"][m][s] - VALUES["Retrain"][m][s]) for m in AVG_GAP_METRICS]) for s in range(3)]
    assert neggrad["avg_gap_std"] == pytest.approx(np.std(per_seed, ddof=1))
    assert neggrad["unpaired"] == [] and neggrad["incomplete"] == {}


def test_retrain_gap_is_zero(records):
    retrain = by_method(aggregate(records))["Retrain"]
    assert retrain["avg_gap"] == 0.0 and retrain["avg_gap_std"] == 0.0
    assert all(entry["gap"] == 0.0 and entry["gap_n"] == 3 for entry in retrain["metrics"].values())


def test_one_seed_has_zero_std():
    rows = by_method(aggregate([record("Retrain", 0), record("NegGrad", 0)]))
    assert rows["NegGrad"]["metrics"]["forget/acc"]["std"] == 0.0
    assert rows["NegGrad"]["avg_gap_std"] == 0.0


def test_none_value_gives_nan_and_is_reported(records):
    diverged = [copy.deepcopy(r) for r in records]
    for r in diverged:
        if r["method"] == "NegGrad" and r["seed"] == 1:
            r["metrics"]["forget/acc"] = None
    row = by_method(aggregate(diverged))["NegGrad"]
    entry = row["metrics"]["forget/acc"]
    assert entry["values"] == [0.90, None, 0.93]
    assert math.isnan(entry["mean"]) and math.isnan(entry["std"]) and math.isnan(entry["gap"])
    assert entry["gaps"][1] is None
    assert math.isnan(row["avg_gap"])
    assert [s["seed"] for s in row["incomplete"]["forget/acc"]] == [1]
    assert row["metrics"]["retain/acc"]["mean"] == pytest.approx(np.mean(VALUES["NegGrad"]["retain/acc"]))  # other metrics unaffected
    table = format_aggregate_table(aggregate(diverged))
    assert "nan" in table and "forget/acc missing (None or absent) in 1 of 3 runs" in table


def test_absent_gap_metric_makes_avg_gap_nan():
    no_mia = [record(m, s, values={k: v[s] for k, v in VALUES[m].items() if k != "mia/svm_asr"}) for s in range(2) for m in ("Retrain", "NegGrad")]
    row = by_method(aggregate(no_mia))["NegGrad"]
    assert math.isnan(row["avg_gap"])
    assert len(row["incomplete"]["mia/svm_asr"]) == 2
    assert not math.isnan(by_method(aggregate(no_mia, gap_metrics=("forget/acc", "test/acc")))["NegGrad"]["avg_gap"])


def test_unpaired_runs_are_reported_and_left_out_of_the_gap(records):
    without = [r for r in records if not (r["method"] == "Retrain" and r["seed"] == 2)]
    row = by_method(aggregate(without))["NegGrad"]
    assert [s["seed"] for s in row["unpaired"]] == [2]
    assert row["metrics"]["forget/acc"]["gap_n"] == 2
    assert row["metrics"]["forget/acc"]["gap"] == pytest.approx((0.05 + 0.02) / 2)
    assert row["metrics"]["forget/acc"]["mean"] == pytest.approx(np.mean(VALUES["NegGrad"]["forget/acc"]))
    assert "no Retrain record for 1 of 3 runs: 0/0/2" in format_aggregate_table(aggregate(without))
    alone = by_method(aggregate([r for r in records if r["method"] != "Retrain"]))["NegGrad"]
    assert math.isnan(alone["metrics"]["forget/acc"]["gap"]) and math.isnan(alone["avg_gap"])


def test_grouping_ignores_the_scenario_seed_only():
    runs = [record(m, 0, scenario_seed=s) for s in (0, 1) for m in ("Retrain", "NegGrad")]
    runs += [record(m, 0, k=100) for m in ("Retrain", "NegGrad")]  # another scenario size: another table
    runs += [record("NegGrad", 0, dataset="fashion_mnist")]  # another dataset
    rows = aggregate(runs)
    assert [(r["dataset"], r["scenario"]["k"], r["method"], r["n"]) for r in rows] == [
        ("digits", 144, "Retrain", 2), ("digits", 144, "NegGrad", 2), ("digits", 100, "Retrain", 1), ("digits", 100, "NegGrad", 1),
        ("fashion_mnist", 144, "NegGrad", 1)]
    assert "seed" not in rows[0]["scenario"]
    assert [s["scenario_seed"] for s in rows[1]["seeds"]] == [0, 1]
    assert rows[1]["unpaired"] == []  # each scenario seed paired with the Retrain of its own request
    assert rows[4]["unpaired"] and math.isnan(rows[4]["avg_gap"])


def test_the_same_run_twice_is_an_error(records):
    with pytest.raises(ValueError, match="same run"):
        aggregate([*records, copy.deepcopy(records[0])])


def test_runs_of_one_method_with_other_hyperparameters_are_rows_of_their_own(records, tmp_path, capsys):
    """`compare`'s NegGrad and `fit --config configs/digits_neggrad.yaml`'s (stop_check step) on the same request and seed."""
    other = [{**copy.deepcopy(r), "hparams": {"budget": {"stop_check": "step"}}} for r in records if r["method"] == "NegGrad"]
    rows = aggregate([*records, *other])
    labels = [r["method"] for r in rows]
    assert labels[:2] == ["Original", "Retrain"] and len(labels) == 4 and all(label.startswith("NegGrad [") for label in labels[2:])
    assert all(r["n"] == 3 and not r["unpaired"] for r in rows[2:])  # both paired with Retrain
    evaluated = [{**copy.deepcopy(r), "pretrained": {**r["pretrained"], "checkpoint": "runs/NegGrad.pt"}} for r in records if r["method"] == "Original"]
    assert sum(r["method"].startswith("Original") for r in aggregate([*records, *evaluated])) == 2  # `test --model Original --pretrained.checkpoint`
    for i, r in enumerate([*records, *other]):
        (tmp_path / f"{i}.json").write_text(json.dumps(r))
    TOOLS["aggregate"]([str(tmp_path)])  # `cli.py aggregate runs/results` after both: a table, not a traceback
    assert "NegGrad [" in capsys.readouterr().out


def test_table(records):
    table = format_aggregate_table(aggregate(records))
    lines = table.splitlines()
    assert "±" in table
    assert lines[1].split(" | ")[:2] == ["method  ", "n"]
    assert all(name in lines[1] for name in ("forget/acc", "retain/acc", "test/acc", "mia/svm_asr", "avg gap"))
    neggrad = next(line for line in lines if line.startswith("NegGrad"))
    assert f"{100 * np.mean(VALUES['NegGrad']['forget/acc']):.2f} ± {100 * np.std(VALUES['NegGrad']['forget/acc'], ddof=1):.2f} (3.33)" in neggrad
    assert "0.00 ± 0.00" in next(line for line in lines if line.startswith("Retrain"))
    assert len({len(line) for line in lines[1:4]}) == 1  # aligned
    only = format_aggregate_table(aggregate(records), metrics=["rt/epochs"], gaps=False)
    assert "Retrain  | 3 |     3 ± 1" in only and "forget/acc" not in only.splitlines()[1]


def test_read_records(tmp_path, records):
    for r in records:
        path = tmp_path / r["dataset"] / r["request"]["hash"] / f"{r['method']}-seed{r['seed']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(r))
    (tmp_path / "requests").mkdir()
    (tmp_path / "requests" / "abc.json").write_text(json.dumps({"dataset": "digits", "forget_indices": [1, 2]}))  # a request file
    (tmp_path / "broken.json").write_text("{")
    (tmp_path / "partial.json").write_text(json.dumps({k: v for k, v in records[0].items() if k != "hardware"}))
    with pytest.warns(UserWarning) as warned:
        loaded = read_records(tmp_path)
    broken, partial = (str(w.message) for w in warned)  # in path order
    assert "broken.json is not readable as JSON" in broken and partial.endswith("partial.json is not a valid result record: hardware: missing; skipped")
    assert len(loaded) == len(records) and all(isinstance(r, ResultRecord) for r in loaded)
    assert by_method(aggregate(loaded)) == by_method(aggregate(records))


def test_nan_is_missing_and_diverged_runs_are_reported(records):
    marked = [copy.deepcopy(r) for r in records]
    for r in marked:
        if r["method"] == "NegGrad" and r["seed"] == 0:
            r["metrics"]["mia/svm_asr"] = float("nan")
            r["diverged"] = {"epoch": 0, "step": 3}
    row = by_method(aggregate(marked))["NegGrad"]
    assert row["metrics"]["mia/svm_asr"]["values"][0] is None and math.isnan(row["metrics"]["mia/svm_asr"]["mean"])
    assert [s["seed"] for s in row["diverged"]] == [0] and [s["seed"] for s in row["incomplete"]["mia/svm_asr"]] == [0]
    assert "NegGrad: training diverged in 1 of 3 runs: 0/0/0" in format_aggregate_table(aggregate(marked))


def test_command_line(tmp_path, records, capsys):
    for r in records:
        (tmp_path / f"{r['method']}-seed{r['seed']}.json").write_text(json.dumps(r))
    rows = TOOLS["aggregate"]([str(tmp_path)])
    assert len(rows) == 3 and "avg gap" in capsys.readouterr().out
    TOOLS["aggregate"]([str(tmp_path), "--metrics", "[rt/epochs]"])
    header = capsys.readouterr().out.splitlines()[1]
    assert "rt/epochs" in header and "forget/acc" not in header
    TOOLS["aggregate"]([str(tmp_path), "--json", "true"])
    assert sorted(row["method"] for row in json.loads(capsys.readouterr().out)) == ["NegGrad", "Original", "Retrain"]
    with pytest.raises(SystemExit):
        TOOLS["aggregate"](["--help"])
    usage = capsys.readouterr().out
    assert all(option in usage for option in ("folder", "--metrics", "--json"))
