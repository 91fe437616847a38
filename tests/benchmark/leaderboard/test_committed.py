"""The committed digits entries are reproducible: `verify` recomputes them within the tracks' tolerance.

The test recomputes every run of every digits entry except those of `SLOW` methods, which take minutes per run
on 2 cores (Retrain: a full retraining; Adv, AdvImp: 100-step PGD for 20 examples per forget image) and would
break the suite's time budget; `python cli.py verify leaderboard/entries/digits-*` verifies them all.
"""

from __future__ import annotations

from benchmark.leaderboard.entries import load_entries
from benchmark.leaderboard.submit import verify
from benchmark.leaderboard.tracks import LEADERBOARD, load_track

DIGITS_TRACKS = ("digits-random10", "digits-class0")
SLOW = ("Retrain", "Adv", "AdvImp")


def test_the_cheap_digits_entries_verify():
    checked = []
    for name in DIGITS_TRACKS:
        track = load_track(name)
        for entry in load_entries(track):
            if entry["method"] not in SLOW:
                report = verify(LEADERBOARD / "entries" / name / f"{entry['method']}.json")
                assert report["seeds"] == track.seeds and not report["problems"]
                checked.append((name, entry["method"]))
    assert {"Original", "FineTune", "NegGrad"} <= {method for _, method in checked}
