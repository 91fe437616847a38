"""The leaderboard commands: `submit`, `verify`, `render` (`COMMANDS[name](argv)`, dispatched by `cli.py`)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from benchmark.errors import UnlearnBenchError
from benchmark.leaderboard.tracks import LEADERBOARD, list_tracks


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)


def _init_args(text: str) -> dict:
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = None
    if not isinstance(value, dict):
        raise UnlearnBenchError(f"--init_args must be a YAML / JSON mapping such as '{{lr: 1e-4, max_epochs: 5}}', got {text!r}")
    return value


def submit_command(argv: list[str]) -> Path:
    """`submit --method NAME|file.py:Class --track T`: run the track's protocol over its seeds and write the entry."""
    from benchmark.leaderboard.render import render
    from benchmark.leaderboard.submit import submit

    parser = _Parser(prog="cli.py submit", description=submit_command.__doc__)
    parser.add_argument("--method", required=True, help="a registered method (NegGrad) or path/to/file.py:ClassName (a subclass of methods.base.UnlearningMethod)")
    parser.add_argument("--track", required=True, help=f"a track name ({', '.join(list_tracks()) or 'see leaderboard/tracks'}) or a track YAML file")
    parser.add_argument("--init_args", default="{}", help="the method's constructor arguments as YAML/JSON, e.g. '{lr: 1e-4}' (default: its defaults)")
    parser.add_argument("--leaderboard", default=str(LEADERBOARD), help="the leaderboard folder (tracks/, entries/; default: the repository's)")
    parser.add_argument("--results_dir", default=None, help="where the runs' result records go (default $UNLEARNBENCH_HOME/leaderboard/<track>)")
    parser.add_argument("--no_render", action="store_true", help="do not regenerate README.md and index.html")
    parser.add_argument("--progress", action="store_true", help="show progress bars")
    args = parser.parse_args(argv)
    path = submit(args.track, args.method, _init_args(args.init_args), Path(args.leaderboard), args.results_dir, args.progress)
    print(f"entry: {path}")
    if not args.no_render:
        for written in render(Path(args.leaderboard)):
            print(f"rendered: {written}")
    return path


def verify_command(argv: list[str]) -> list[dict]:
    """`verify ENTRY...`: recompute entries (files, or folders of them) and fail when a value differs beyond the track's tolerance."""
    from benchmark.leaderboard.submit import verify

    parser = _Parser(prog="cli.py verify", description=verify_command.__doc__)
    parser.add_argument("entries", nargs="+", help="entry JSON files or folders (e.g. leaderboard/entries/digits-random10)")
    parser.add_argument("--seeds", type=int, nargs="*", default=None, help="recompute only these seeds' runs (default: all)")
    parser.add_argument("--leaderboard", default=None, help="the leaderboard folder (default: the one holding the entry)")
    parser.add_argument("--progress", action="store_true", help="show progress bars")
    args = parser.parse_args(argv)
    paths = []
    for given in map(Path, args.entries):
        paths += sorted(given.glob("*.json")) if given.is_dir() else [given]
    reports = []
    for path in paths:
        leaderboard = Path(args.leaderboard) if args.leaderboard else path.resolve().parents[2]
        reports.append(verify(path, args.seeds, leaderboard, args.progress))
    print(json.dumps([{k: r[k] for k in ("method", "track", "seeds", "numbers", "max_abs_difference", "tolerance")} for r in reports], indent=1))
    return reports


def render_command(argv: list[str]) -> list[Path]:
    """`render`: regenerate leaderboard/README.md and leaderboard/index.html from the tracks and entries."""
    from benchmark.leaderboard.render import render

    parser = _Parser(prog="cli.py render", description=render_command.__doc__)
    parser.add_argument("--leaderboard", default=str(LEADERBOARD), help="the leaderboard folder (default: the repository's)")
    args = parser.parse_args(argv)
    written = render(Path(args.leaderboard))
    for path in written:
        print(f"rendered: {path}")
    return written


COMMANDS: dict[str, Callable[[list[str]], object]] = {"submit": submit_command, "verify": verify_command, "render": render_command}
