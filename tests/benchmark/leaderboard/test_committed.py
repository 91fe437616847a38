"""The committed digits entries are reproducible: `verify` recomputes them within the tracks' tolerance.

The first seed's run of every digits entry is recomputed, and `SLOW` methods (Adv, AdvImp: 100-step PGD for 20
examples per forget image, about 30 s per run on one thread) on one track only, to keep the suite within its
time budget; `python cli.py verify 'leaderboard/entries/digits-*/*.json'` recomputes every run of every entry.
"""

from __future__ import annotations

from benchmark.leaderboard.entries import load_entries
from benchmark.leaderboard.submit import verify
from benchmark.leaderboard.tracks import LEADERBOARD, load_track

DIGITS_TRACKS = ("digits-random10", "digits-class0")
SLOW = ("Adv", "AdvImp")
SLOW_CHECKED_ON = "digits-random10"


def test_the_digits_entries_verify():
    checked = []
    for name in DIGITS_TRACKS:
        track = load_track(name)
        for entry in load_entries(track):
            if entry["method"] in SLOW and name != SLOW_CHECKED_ON:
                continue
            report = verify(LEADERBOARD / "entries" / name / f"{entry['method']}.json", seeds=track.seeds[:1])
            assert report["seeds"] == track.seeds[:1] and not report["problems"]
            checked.append((name, entry["method"]))
    every = {"Original", "Retrain", "FineTune", "NegGrad", "Correct", "Oracle", "RAWP", "Adv", "AdvImp"}
    assert {method for track, method in checked if track == SLOW_CHECKED_ON} == every
