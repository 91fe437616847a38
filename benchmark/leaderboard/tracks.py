"""Tracks: everything of a leaderboard table but the method, as a YAML file in `leaderboard/tracks/`.

A track fixes the dataset, the original model (architecture, pretraining recipe and seed, and the
SHA-256 of its weights), the scenario (a scenario class and its arguments, one forget request per
run, each with its content hash), the seeds, the evaluation, the metric columns, the ranking rule
and the tolerance `verify` allows. Run `i` of a track uses the unlearning seed `runs[i].seed`, and
sets the scenario argument `scenario.seed_arg` (if any) to that seed, so the forget set varies
with it. `submit` refuses to run when the local original model or a request does not hash to what
the track says.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from benchmark.core.errors import UnlearnBenchError
from benchmark.core.hashing import state_dict_sha256
from benchmark.core.paths import atomic_write_bytes
from benchmark.experiment import runner
from benchmark.metrics.evaluator import Evaluation
from benchmark.models.pretraining import Pretrained
from benchmark.reports.aggregate import AVG_GAP_METRICS, REFERENCE
from datamodules import scenarios

ROOT = Path(__file__).resolve().parents[2]
LEADERBOARD = ROOT / "leaderboard"
"""The repository's leaderboard folder: `tracks/`, `entries/<track>/`, the generated README.md and index.html."""

RANKING_RULES = ("avg_gap", "goal")
KINDS = ("single", "continual")
DEFAULT_TOLERANCE = 0.02


class TrackError(UnlearnBenchError):
    """A track file that cannot be used, or a local setup that does not match a track."""


@dataclass(frozen=True)
class Ranking:
    """How rows are ordered. `avg_gap`: mean over `gap_metrics` of the per-seed |m − m_reference|, lower is better.
    `goal` (a paper's own criterion, e.g. seed 000's "misclassify D_f, keep D_r and D_test"): first the rows whose
    `goal_metric` equals `goal_value` in every run, then the others; within each, higher means of `keep_metrics`
    first, compared in their order. The gap to the reference is shown under both rules."""

    rule: str = "avg_gap"
    reference: str = REFERENCE
    gap_metrics: tuple[str, ...] = AVG_GAP_METRICS
    goal_metric: str = "forget/acc"
    goal_value: float = 0.0
    keep_metrics: tuple[str, ...] = ("retain/acc", "test/acc")


@dataclass(frozen=True)
class Track:
    name: str
    title: str
    description: str
    dataset: str
    pretrained: dict
    scenario: dict
    runs: tuple[dict, ...]
    evaluation: dict = field(default_factory=dict)
    metrics: tuple[str, ...] = ()
    ranking: Ranking = Ranking()
    references: tuple[str, ...] = ("Original", "Retrain")
    tolerance: float = DEFAULT_TOLERANCE
    kind: str = "single"
    """`single`: every run starts from the original model; `continual`: a run is a stream of steps (entries come from `cli.py suite`)."""
    path: Path | None = None

    @property
    def seeds(self) -> list[int]:
        return [run["seed"] for run in self.runs]

    def protocol(self) -> dict:
        """What an entry depends on: everything but title, description, file location and the ranking (how entries are
        ordered is not what they measure, so a track may change its rule without its entries being recomputed)."""
        pretrained = {k: v for k, v in self.pretrained.items() if k != "checkpoint"}  # where the weights are is not what they are
        protocol = {"dataset": self.dataset, "pretrained": pretrained, "scenario": self.scenario, "runs": list(self.runs),
                    "evaluation": self.evaluation, "metrics": list(self.metrics), "tolerance": self.tolerance}
        return {**protocol, "kind": self.kind} if self.kind != "single" else protocol

    @property
    def sha256(self) -> str:
        """Hash of `protocol()`: an entry records it, so an entry made under another protocol is refused."""
        return hashlib.sha256(json.dumps(self.protocol(), sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    def make_pretrained(self) -> Pretrained:
        """The original model: the track's committed `checkpoint` (relative to the repository) when it names one,
        so every machine starts from the same weights, else the local pretraining with the track's recipe and seed."""
        checkpoint = self.pretrained.get("checkpoint")
        return Pretrained(arch=self.pretrained["arch"], recipe=self.pretrained.get("recipe"), seed=self.pretrained.get("seed", 0),
                          checkpoint=str(ROOT / checkpoint) if checkpoint else None)

    def make_evaluation(self) -> Evaluation:
        return Evaluation(**self.evaluation)

    def make_scenario(self, seed: int, **overrides):
        """The scenario of the run with unlearning seed `seed` (not yet set up)."""
        cls, args = self.scenario_spec(seed, **overrides)
        return cls(**args)

    def scenario_spec(self, seed: int, **overrides) -> tuple[type, dict]:
        """The scenario class and arguments of the run with unlearning seed `seed`."""
        name = self.scenario["class"]
        cls = getattr(scenarios, name, None) if "." not in name else getattr(importlib.import_module(name.rsplit(".", 1)[0]), name.rsplit(".", 1)[1])
        if cls is None:
            raise TrackError(f"track {self.name}: unknown scenario class '{name}'; known: {', '.join(scenarios.__all__)}")
        args = {**self.scenario.get("init_args", {}), **overrides}
        for key in ("path", "stream"):  # request files named in a track are relative to the repository
            if isinstance(args.get(key), str) and not Path(args[key]).is_absolute():
                args[key] = str(ROOT / args[key])
        if self.scenario.get("seed_arg"):
            args[self.scenario["seed_arg"]] = seed
        return cls, args


def track_path(name_or_path: str | Path, leaderboard: Path = LEADERBOARD) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        return path
    return Path(leaderboard) / "tracks" / f"{name_or_path}.yaml"


def list_tracks(leaderboard: Path = LEADERBOARD) -> list[str]:
    return sorted(p.stem for p in (Path(leaderboard) / "tracks").glob("*.yaml"))


def load_track(name_or_path: str | Path, leaderboard: Path = LEADERBOARD) -> Track:
    """Read and check a track file (by name, from `leaderboard/tracks/`, or by path)."""
    path = track_path(name_or_path, leaderboard)
    if not path.exists():
        raise TrackError(f"unknown track '{name_or_path}'; known: {', '.join(list_tracks(leaderboard)) or 'none'} (in {Path(leaderboard) / 'tracks'})")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise TrackError(f"track file {path} is not valid YAML ({str(error).splitlines()[0]})") from None
    return parse_track(data, path)


def _need(data: dict, key: str, kind: type | tuple, where: str):
    if key not in data:
        raise TrackError(f"{where}: missing field '{key}'")
    if not isinstance(data[key], kind) or isinstance(data[key], bool) and kind is not bool:
        raise TrackError(f"{where}: field '{key}' must be {getattr(kind, '__name__', kind)}, got {type(data[key]).__name__}")
    return data[key]


def parse_track(data: object, path: Path | None = None) -> Track:
    where = f"track file {path}" if path else "track"
    if not isinstance(data, dict):
        raise TrackError(f"{where} must hold a mapping")
    name = _need(data, "name", str, where)
    if path is not None and path.stem != name:
        raise TrackError(f"{where}: name '{name}' must equal the file name '{path.stem}'")
    pretrained = _need(data, "pretrained", dict, where)
    for key in ("arch", "sha256"):
        _need(pretrained, key, (str, type(None)) if key == "sha256" else str, f"{where}: pretrained")
    scenario = _need(data, "scenario", dict, where)
    _need(scenario, "class", str, f"{where}: scenario")
    runs = _need(data, "runs", list, where)
    if not runs:
        raise TrackError(f"{where}: runs is empty")
    for i, run in enumerate(runs):
        if not isinstance(run, dict):
            raise TrackError(f"{where}: runs[{i}] must be a mapping with seed and request")
        _need(run, "seed", int, f"{where}: runs[{i}]")
        _need(run, "request", (str, type(None)), f"{where}: runs[{i}]")
    seeds = [run["seed"] for run in runs]
    if seeds != sorted(set(seeds)):
        raise TrackError(f"{where}: the runs' seeds must be distinct and increasing, got {seeds}")
    ranking = dict(data.get("ranking") or {})
    if ranking.get("rule", "avg_gap") not in RANKING_RULES:
        raise TrackError(f"{where}: ranking rule '{ranking['rule']}' unknown; known: {', '.join(RANKING_RULES)}")
    unknown = sorted(set(ranking) - {"rule", "reference", "gap_metrics", "goal_metric", "goal_value", "keep_metrics"})
    if unknown or (ranking.get("rule") != "goal" and {"goal_metric", "goal_value", "keep_metrics"} & set(ranking)):
        raise TrackError(f"{where}: ranking keys {unknown or sorted({'goal_metric', 'goal_value', 'keep_metrics'} & set(ranking))} "
                         f"{'unknown' if unknown else 'belong to the goal rule'}; a ranking has rule, reference, gap_metrics "
                         "and, under rule goal, goal_metric, goal_value, keep_metrics")
    if not isinstance(ranking.get("goal_value", 0.0), (int, float)) or isinstance(ranking.get("goal_value"), bool):
        raise TrackError(f"{where}: ranking goal_value must be a number")
    evaluation = dict(data.get("evaluation") or {})
    try:
        Evaluation(**evaluation)
    except TypeError as error:
        raise TrackError(f"{where}: evaluation: {error}") from None
    if data.get("kind", "single") not in KINDS:
        raise TrackError(f"{where}: kind '{data['kind']}' unknown; known: {', '.join(KINDS)}")
    tolerance = data.get("tolerance", DEFAULT_TOLERANCE)
    if not isinstance(tolerance, (int, float)) or isinstance(tolerance, bool) or tolerance < 0:
        raise TrackError(f"{where}: tolerance must be a non-negative number")
    return Track(
        name=name, title=str(data.get("title", name)), description=str(data.get("description", "")).strip(),
        dataset=_need(data, "dataset", str, where), pretrained=dict(pretrained), scenario=dict(scenario),
        runs=tuple(dict(run) for run in runs), evaluation=evaluation,
        metrics=tuple(data.get("metrics") or ("forget/acc", "retain/acc", "test/acc", "mia/svm_asr", "cost/seconds")),
        ranking=Ranking(rule=ranking.get("rule", "avg_gap"), reference=ranking.get("reference", REFERENCE),
                        gap_metrics=tuple(ranking.get("gap_metrics") or AVG_GAP_METRICS),
                        **{k: tuple(v) if isinstance(v, list) else v for k, v in ranking.items() if k in ("goal_metric", "goal_value", "keep_metrics")}),
        references=tuple(data.get("references") or ("Original", "Retrain")), tolerance=float(tolerance), kind=data.get("kind", "single"), path=path,
    )


# ---- checking (and stamping) the local setup against a track ----

def setup_run(track: Track, seed: int, **scenario_overrides):
    """The run's scenario, set up, after checking that its request hashes to what the track says."""
    run = next((r for r in track.runs if r["seed"] == seed), None)
    if run is None:
        raise TrackError(f"track {track.name} has no run with seed {seed}; its seeds: {track.seeds}")
    scenario = track.make_scenario(seed, **scenario_overrides)
    scenario.setup()
    if scenario.info.name != track.dataset:
        raise TrackError(f"track {track.name}: the scenario's dataset is {scenario.info.name}, the track says {track.dataset}")
    if run["request"] is None:
        raise TrackError(f"track {track.name}: seed {seed} has no request hash; stamp the track first (benchmark.leaderboard.tracks.stamp)")
    if scenario.request.hash != run["request"]:
        raise TrackError(f"track {track.name}, seed {seed}: the local forget request hashes to {scenario.request.hash[:16]}…, the track says "
                         f"{run['request'][:16]}… (different dataset files or scenario code)")
    return scenario


def check_original(track: Track, scenario) -> str:
    """Obtain the original model (pretrained and cached on a miss) and check its weights' hash; return the hash."""
    model = runner.obtain_original(scenario, track.make_pretrained(), progress=False)
    digest = state_dict_sha256(model)
    if track.pretrained["sha256"] is None:
        raise TrackError(f"track {track.name} has no checkpoint hash; stamp the track first")
    if digest != track.pretrained["sha256"]:
        raise TrackError(f"track {track.name}: the local original {track.pretrained['arch']} (recipe {track.pretrained.get('recipe')}, seed "
                         f"{track.pretrained.get('seed', 0)}) hashes to {digest[:16]}…, the track says {track.pretrained['sha256'][:16]}…; "
                         "its numbers would not be comparable")
    return digest


def stamp(path: str | Path) -> Track:
    """Fill in a track file's request hashes and original-model hash from the local setup (for track authors)."""
    path = Path(path)
    data = yaml.safe_load(path.read_text())
    track = parse_track({**data, "pretrained": {**data["pretrained"], "sha256": None},
                         "runs": [{**r, "request": None} for r in data["runs"]]}, path)
    for run in data["runs"]:
        scenario = track.make_scenario(run["seed"])
        scenario.setup()
        run["request"] = scenario.request.hash
    data["pretrained"]["sha256"] = state_dict_sha256(runner.obtain_original(scenario, track.make_pretrained(), progress=False))
    header = "".join(line + "\n" for line in path.read_text().splitlines() if line.startswith("#"))
    atomic_write_bytes(path, (header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)).encode())
    return load_track(path)
