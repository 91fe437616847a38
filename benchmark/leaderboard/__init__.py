"""The leaderboard: tracks, entries (validated JSON, one per track and method), submit / verify, the renderer.

RobustBench's "leaderboard as data": `leaderboard/tracks/<track>.yaml` fixes a protocol (see
`tracks`), `leaderboard/entries/<track>/<Method>.json` holds one method's runs on it (see `schema`),
and `leaderboard/README.md` and `leaderboard/index.html` are generated from those files (`render`).

For code that runs a track's protocol itself (e.g. a paper's suite) and wants to publish the result::

    from benchmark.leaderboard import load_track, write_entry
    track = load_track("fashion_mnist-random-k128")
    records = [runner.run(Adv(attack={"n_adv": 20}), track.make_scenario(r["seed"]), track.make_pretrained(), seed=r["seed"],
                          evaluation=track.make_evaluation()) for r in track.runs]   # or tracks.setup_run(track, seed): hashes checked
    write_entry(track, "Adv", records, init_args={"n_adv": 20})   # validated; raises EntryError naming the field

`write_entry(track, method_name, records, init_args=None, hparams=None, source=None, pretrained_sha256=None,
leaderboard=LEADERBOARD)` needs exactly one record per track run (matched by seed and request hash), all of
method `method_name` and the track's original model; `init_args` are what `verify` constructs the registered
method with again. Metrics are stored per seed with mean ± std (`benchmark.reports.aggregate`); null where a run
could not measure them (diverged). Then `render()` regenerates the tables.
"""

from benchmark.leaderboard.entries import build_entry, load_entries, write_entry
from benchmark.leaderboard.render import rank, render
from benchmark.leaderboard.schema import EntryError, load_entry, validate_entry
from benchmark.leaderboard.submit import load_method, submit, verify
from benchmark.leaderboard.tracks import (
           LEADERBOARD,
           Track,
           TrackError,
           list_tracks,
           load_track,
           stamp,
           state_dict_sha256,
)

__all__ = ["LEADERBOARD", "Track", "TrackError", "EntryError", "build_entry", "list_tracks", "load_entries", "load_entry", "load_method",
           "load_track", "rank", "render", "stamp", "state_dict_sha256", "submit", "validate_entry", "verify", "write_entry"]
