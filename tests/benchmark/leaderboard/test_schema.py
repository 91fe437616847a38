"""The entry schema: typed numbers, required fields, means and stds that are those of the per-seed values."""

from __future__ import annotations

import copy
import json

import pytest

from benchmark.leaderboard.entries import build_entry, write_entry
from benchmark.leaderboard.schema import EntryError, StaleEntryError, load_entry, validate_entry
from benchmark.reports.aggregate import aggregate
from tests.benchmark.leaderboard.conftest import fake_record, track_data, write_track

RUNS = [{"seed": 0, "request": "a" * 64}, {"seed": 1, "request": "b" * 64}, {"seed": 2, "request": "c" * 64}]
VALUES = {"forget/acc": [0.25, 0.5, 1.0], "retain/acc": [0.9, 0.95, 0.97], "test/acc": [0.8, 0.85, 0.9], "mia/svm_asr": [0.5, 0.6, 0.7]}


@pytest.fixture
def track(leaderboard):
    return write_track(leaderboard, track_data("fake", RUNS))


def records(method="FineTune", values=VALUES, diverged_seed=None):
    out = []
    for i, run in enumerate(RUNS):
        diverged = {"epoch": 3, "step": 9} if run["seed"] == diverged_seed else None
        metrics = {name: None if diverged else v[i] for name, v in values.items()}
        out.append(fake_record(method, run["seed"], run["request"], metrics, diverged))
    return out


def test_an_entry_holds_the_per_seed_values_and_their_mean_and_std_as_aggregate_computes(track):
    entry = build_entry(track, "FineTune", records())
    (row,) = aggregate(records())
    for name in VALUES:
        assert entry["metrics"][name]["values"] == VALUES[name]
        assert entry["metrics"][name]["mean"] == pytest.approx(row["metrics"][name]["mean"])
        assert entry["metrics"][name]["std"] == pytest.approx(row["metrics"][name]["std"])
    assert [r["metrics"]["cost/seconds"] for r in entry["runs"]] == [0.5, 1.5, 2.5]


@pytest.mark.parametrize("change, field, reason", [
    (lambda e: e["runs"][1]["metrics"].update({"forget/acc": "0.5"}), "runs[1].metrics.forget/acc", "expected number or null, got str"),
    (lambda e: e["runs"][0]["metrics"].update({"test/acc": True}), "runs[0].metrics.test/acc", "a boolean"),
    (lambda e: e["metrics"]["test/acc"].update({"mean": "0.85"}), "metrics.test/acc.mean", "expected number or null, got str"),
    (lambda e: e["runs"][0].update({"seed": 0.0}), "runs[0].seed", "expected int"),
    (lambda e: e.pop("code"), "code", "missing"),
    (lambda e: e["config"].pop("init_args"), "config.init_args", "missing"),
    (lambda e: e["runs"][2]["metrics"].pop("cost/seconds"), "runs[2].metrics.cost/seconds", "missing"),
    (lambda e: e["metrics"].pop("retain/acc"), "metrics.retain/acc", "missing"),
    (lambda e: e["metrics"]["forget/acc"].update({"mean": 0.6}), "metrics.forget/acc.mean", "is not the mean of its values"),
    (lambda e: e["metrics"]["forget/acc"].update({"std": 0.1}), "metrics.forget/acc.std", "is not the sample std"),
    (lambda e: e["metrics"]["forget/acc"].update({"values": [0.25, 0.5, 0.9]}), "metrics.forget/acc.values", "are not the runs' values"),
    (lambda e: e.update({"track_sha256": "0" * 64}), "track_sha256", "another version of track fake"),
    (lambda e: e["runs"][1].update({"request": "d" * 64}), "runs", "differ from the track's"),
])
def test_the_schema_rejects_a_bad_entry_naming_the_field_and_the_reason(track, change, field, reason):
    entry = build_entry(track, "FineTune", records())
    bad = copy.deepcopy(entry)
    change(bad)
    with pytest.raises(EntryError) as error:
        validate_entry(bad, track, "bad.json")
    assert f"bad.json: {field}: " in str(error.value) and reason in str(error.value), str(error.value)
    assert "\n" not in str(error.value)


def test_a_diverged_run_is_null_never_a_number(track):
    entry = build_entry(track, "NegGrad", records("NegGrad", diverged_seed=1))
    assert entry["runs"][1]["diverged"] == {"epoch": 3, "step": 9}
    assert entry["metrics"]["forget/acc"]["values"] == [0.25, None, 1.0]
    assert entry["metrics"]["forget/acc"]["mean"] is None and entry["metrics"]["forget/acc"]["std"] is None
    claimed = copy.deepcopy(entry)
    claimed["metrics"]["forget/acc"]["mean"] = 0.625  # the mean of the measured values only
    with pytest.raises(EntryError, match="is not the mean of its values"):
        validate_entry(claimed, track)


def test_files_with_nan_or_a_wrong_name_are_rejected(track, leaderboard):
    path = write_entry(track, "FineTune", records(), leaderboard=leaderboard)
    assert load_entry(path, track)["method"] == "FineTune"
    path.write_text(path.read_text().replace('"forget/acc": 0.25', '"forget/acc": NaN', 1))
    with pytest.raises(EntryError, match="NaN is not a JSON number; a value that could not be measured is null"):
        load_entry(path, track)
    renamed = path.with_name("Other.json")
    renamed.write_text(json.dumps(build_entry(track, "FineTune", records())))
    with pytest.raises(EntryError, match="must equal the file name 'Other'"):
        load_entry(renamed, track)


def test_write_entry_needs_one_record_per_track_run(track, leaderboard):
    with pytest.raises(EntryError, match=r"no record for seed\(s\) \[2\]"):
        write_entry(track, "FineTune", records()[:2], leaderboard=leaderboard)
    stray = fake_record("FineTune", 7, "e" * 64, {"forget/acc": 0.1})
    with pytest.raises(EntryError, match="the record of seed 7 .* is not a run of the track"):
        write_entry(track, "FineTune", [*records(), stray], leaderboard=leaderboard)
    assert not (leaderboard / "entries").exists()


def test_an_entry_from_before_the_mia_fix_is_stale_listed_as_pending_and_refused_by_verify(track, leaderboard):
    """Schema 1 computed the SVM attacks on a random draw of retain rows: such an entry is not shown as a result."""
    from benchmark.leaderboard.commands import verify_command
    from benchmark.leaderboard.entries import load_entries
    from benchmark.leaderboard.render import render

    write_entry(track, "FineTune", records(), leaderboard=leaderboard)
    old = write_entry(track, "NegGrad", records("NegGrad"), leaderboard=leaderboard)
    old.write_text(old.read_text().replace('"schema": 2', '"schema": 1', 1))
    with pytest.raises(StaleEntryError, match="schema: 1 predates the membership-inference fix of schema 2"):
        load_entry(old, track)
    stale: list[str] = []
    assert [e["method"] for e in load_entries(track, leaderboard, stale=stale)] == ["FineTune"] and stale == ["NegGrad"]
    render(leaderboard)
    assert "Awaiting recomputation under the current schema and track version: NegGrad" in (leaderboard / "README.md").read_text()
    with pytest.raises(StaleEntryError, match="predates"):
        verify_command([str(old)], leaderboard=str(leaderboard))
