"""The renderer: tables and page from the entries alone, ranked by the track's rule, stable, up to date."""

from __future__ import annotations

import html
import shutil

import pytest

from benchmark.core.errors import UnlearnBenchError
from benchmark.leaderboard.entries import load_entries, write_entry
from benchmark.leaderboard.render import rank, render
from benchmark.leaderboard.tracks import LEADERBOARD, list_tracks, load_track
from tests.benchmark.leaderboard.conftest import fake_record, track_data, write_track

RUNS = [{"seed": 0, "request": "a" * 64}, {"seed": 1, "request": "b" * 64}]
RETRAIN = {"forget/acc": [0.90, 0.92], "retain/acc": [1.0, 1.0], "test/acc": [0.95, 0.96], "mia/svm_asr": [0.5, 0.5]}


def shifted(by: float) -> dict:
    return {name: [v - by for v in values] for name, values in RETRAIN.items()}


@pytest.fixture
def filled(leaderboard):
    track = write_track(leaderboard, track_data("fake", RUNS))
    for method, values, diverged in [("Retrain", RETRAIN, None), ("Original", shifted(-0.05), None), ("Close", shifted(0.01), None),
                                     ("Far", shifted(0.3), None), ("Unstable", shifted(0.0), 1)]:
        records = [fake_record(method, r["seed"], r["request"], {n: (None if diverged == r["seed"] else v[i]) for n, v in values.items()},
                               {"epoch": 2, "step": 5} if diverged == r["seed"] else None) for i, r in enumerate(RUNS)]
        write_entry(track, method, records, leaderboard=leaderboard)
    return leaderboard, track


def test_rows_follow_the_ranking_rule_and_references_are_listed_unranked(filled):
    leaderboard, track = filled
    rows = rank(track, load_entries(track, leaderboard))
    assert [r["method"] for r in rows] == ["Retrain", "Close", "Original", "Far", "Unstable"]
    assert [r["rank"] for r in rows] == [None, 1, None, 2, None]
    assert rows[1]["avg_gap"] == pytest.approx(0.01) and rows[2]["avg_gap"] == pytest.approx(0.05)
    assert rows[4]["avg_gap"] is None and rows[4]["notes"] == ["diverged in 1/2 runs"]


def test_the_goal_rule_ranks_the_rows_at_the_goal_first_then_by_what_they_keep(leaderboard):
    """Seed 000's criterion: D_f misclassified in every run first, then D_r, then D_test; the gap is still shown."""
    ranking = {"rule": "goal", "reference": "Retrain", "goal_metric": "forget/acc", "goal_value": 0.0, "keep_metrics": ["retain/acc", "test/acc"]}
    track = write_track(leaderboard, track_data("goal", RUNS, ranking=ranking))
    rows = {"Retrain": (0.9, 1.0, 0.95), "Original": (1.0, 1.0, 0.96), "Keeps": (0.0, 0.6, 0.5), "KeepsLess": (0.0, 0.6, 0.4),
            "Collapses": (0.0, 0.1, 0.1), "NotThere": ((0.0, 0.25), 0.9, 0.9)}
    for method, (forget, retain, test) in rows.items():
        forgets = forget if isinstance(forget, tuple) else (forget, forget)
        records = [fake_record(method, r["seed"], r["request"], {"forget/acc": forgets[i], "retain/acc": retain, "test/acc": test, "mia/svm_asr": 0.5})
                   for i, r in enumerate(RUNS)]
        write_entry(track, method, records, leaderboard=leaderboard)
    ranked = rank(track, load_entries(track, leaderboard))
    assert [(r["method"], r["rank"]) for r in ranked if not r["reference"]] == [("Keeps", 1), ("KeepsLess", 2), ("Collapses", 3), ("NotThere", 4)]
    assert all(r["avg_gap"] is not None for r in ranked)
    render(leaderboard)
    assert "ranking: the paper's goal — first the rows with `forget/acc` = 0 % in every run" in (leaderboard / "README.md").read_text()
    assert track.sha256 == write_track(leaderboard, track_data("goal", RUNS)).sha256  # a new rule keeps the track's entries


@pytest.mark.parametrize(("ranking", "message"), [({"rule": "avg_gap", "goal_value": 0.0}, "belong to the goal rule"),
                                                  ({"rule": "goal", "goal": 0.0}, "unknown")])
def test_a_bad_ranking_is_one_line(leaderboard, ranking, message):
    with pytest.raises(UnlearnBenchError, match=message):
        write_track(leaderboard, track_data("bad", RUNS, ranking=ranking))


def test_only_a_missing_value_the_table_shows_is_noted(filled):
    """A value absent in some runs is noted when it is one of the track's columns, not when it is a record's extra
    (e.g. `cost/cached`, which a cached Retrain run has and a fresh one may not)."""
    leaderboard, track = filled
    for method, extra in [("Shown", {"mia/efficacy": None}), ("Extra", {"cost/cached": None})]:
        records = [fake_record(method, r["seed"], r["request"], {**{n: v[i] for n, v in RETRAIN.items()}, "mia/efficacy": 0.5,
                                                                 "cost/cached": 1.0, **(extra if i == 0 else {})}) for i, r in enumerate(RUNS)]
        write_entry(track, method, records, leaderboard=leaderboard)
    notes = {r["method"]: r["notes"] for r in rank(track, load_entries(track, leaderboard))}
    assert notes["Shown"] == ["values missing in seeds [0]"] and notes["Extra"] == []


def test_the_tables_show_every_row_with_nulls_and_flags(filled):
    leaderboard, _ = filled
    render(leaderboard)
    readme = (leaderboard / "README.md").read_text()
    table = [line for line in readme.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| rank | method | avg gap ↓ | `forget/acc` | `retain/acc` | `test/acc` |")
    assert table[1].startswith("| ref. | Retrain (reference) | 0.00 ± 0.00 | 91.00 ± 1.41 |")
    assert table[2].startswith("| 1 | Close | 1.00 ± 0.00 | 90.00 ± 1.41 |")
    assert table[5].startswith("| — | Unstable | — | — | — |") and table[5].endswith("| diverged in 1/2 runs |")
    assert "**Note:**" not in readme  # a ranked method (Close) is nearer to Retrain than the do-nothing Original
    page = (leaderboard / "index.html").read_text()
    assert '<div class="scroll"><table class="board"' in page.replace("\n", "")  # wide tables scroll, not cut
    assert "<script src" not in page and "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert page.count("<svg") == 1 and "Not plotted (no value): Unstable (diverged 1/2)" in page


def test_the_page_says_what_the_ranking_rewards_when_doing_nothing_wins(leaderboard):
    """Retrain keeps ~91 % of D_f here: the do-nothing Original is nearer to it than a method that forgets."""
    track = write_track(leaderboard, track_data("fake", RUNS))
    forgets = {**RETRAIN, "forget/acc": [0.0, 0.0]}
    for method, values in [("Retrain", RETRAIN), ("Original", shifted(-0.05)), ("Forgets", forgets)]:
        write_entry(track, method, [fake_record(method, r["seed"], r["request"], {n: v[i] for n, v in values.items()}) for i, r in enumerate(RUNS)],
                    leaderboard=leaderboard)
    render(leaderboard)
    expected = ("Retrain itself still classifies 91.0 % of the forget images correctly (forget/acc), so the unranked Original, which "
                "forgets nothing, has an average gap of 5.00 against the #1 method's 22.75")
    assert expected in (leaderboard / "README.md").read_text() and html.escape(expected) in (leaderboard / "index.html").read_text()


def test_rendering_twice_gives_identical_files(filled):
    leaderboard, _ = filled
    first = {p.name: p.read_bytes() for p in render(leaderboard)}
    second = {p.name: p.read_bytes() for p in render(leaderboard)}
    assert first == second and set(first) == {"README.md", "index.html"}


def test_the_committed_readme_and_page_are_what_the_renderer_gives(tmp_path):
    copy = tmp_path / "leaderboard"
    shutil.copytree(LEADERBOARD, copy, ignore=shutil.ignore_patterns("*.png"))
    render(copy)
    for name in ("README.md", "index.html"):
        assert (copy / name).read_text() == (LEADERBOARD / name).read_text(), f"leaderboard/{name} is stale: run `python cli.py render`"


def test_every_committed_entry_is_valid():
    """Every digits entry is current; an entry of another track may await recomputation (listed on the page as such)."""
    entries = {name: load_entries(load_track(name), stale=[] if not name.startswith("digits") else None) for name in list_tracks()}
    for track in ("digits-random10", "digits-class0"):
        methods = {e["method"] for e in entries[track]}
        assert {"Original", "Retrain", "FineTune", "NegGrad", "Correct", "Adv", "AdvImp", "Oracle", "RAWP"} <= methods, (track, methods)


def test_points_on_the_same_spot_keep_readable_labels(filled):
    """Original and FineTune often sit on the same point: their names must not be drawn over each other."""
    import re

    from benchmark.leaderboard.render import LABEL_HEIGHT, plot_svg

    _, track = filled
    same = {"forget/acc": {"mean": 1.0}, "test/acc": {"mean": 0.97}}
    rows = [{"method": name, "metrics": same, "reference": name == "Original", "diverged": 0, "n": 3} for name in ("Original", "FineTune", "Close")]
    svg = plot_svg(track, rows)
    ys = [float(re.search(rf'<text x="[\d.]+" y="([\d.]+)">{name}</text>', svg).group(1)) for name in ("Original", "FineTune", "Close")]
    assert all(abs(a - b) >= LABEL_HEIGHT for i, a in enumerate(ys) for b in ys[i + 1:]), ys
