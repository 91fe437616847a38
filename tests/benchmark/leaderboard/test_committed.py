"""The committed digits entries are reproducible: `verify` recomputes them within the tracks' tolerance.

Every run of every digits entry is recomputed, except that `SLOW` methods (Adv, AdvImp: 100-step PGD for 20
examples per forget image, about 30 s per run on one thread) are recomputed on their first seed of one track
only, to keep the suite within its time budget; `python cli.py verify 'leaderboard/entries/digits-*/*.json'`
verifies them all.
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
            seeds = track.seeds[:1] if entry["method"] in SLOW else None
            report = verify(LEADERBOARD / "entries" / name / f"{entry['method']}.json", seeds=seeds)
            assert report["seeds"] == (seeds or track.seeds) and not report["problems"]
            checked.append((name, entry["method"]))
    every = {"Original", "Retrain", "FineTune", "NegGrad", "Correct", "Oracle", "RAWP", "Adv", "AdvImp"}
    assert {method for track, method in checked if track == SLOW_CHECKED_ON} == every
