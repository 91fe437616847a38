"""The suites' machinery: a `Suite` (a paper table: dataset, original, scenario grid, rows, evaluation), the
`SUITES` registry, and `run_suite`, which runs a grid (k × seeds × rows), prints the table in the paper's layout plus
a companion table of the other measures, and writes the rows as leaderboard entries of the suite's tracks.

A suite's runs are a sweep (`benchmark.experiment.sweep`: `suite_sweep`), run by the local executor or on Ray; their
result records go under `<results>/suites/<name>/`; a run whose record exists with the same identity and evaluation
(`runner.reusable_record`) is read back, not repeated, so an interrupted suite resumes where it stopped. The tables are written to `--out`
(default `leaderboard/suites/<name>.md`) with the exact command that produced them. The papers' suites are the
other modules of this package, one per paper.
"""

from __future__ import annotations

import shlex
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F

from benchmark.core.errors import UnlearnBenchError
from benchmark.core.paths import atomic_write_bytes, home
from benchmark.core.registry import Registry
from benchmark.experiment import runner
from benchmark.experiment.continual import run_stream, write_stream
from benchmark.experiment.sweep import Sweep, fit_config, plan_sweep, run_sweep
from benchmark.leaderboard.entries import write_entry
from benchmark.leaderboard.tracks import LEADERBOARD, list_tracks, load_track
from benchmark.metrics.accuracy import evaluate_accuracy
from benchmark.metrics.evaluator import Evaluation
from benchmark.metrics.mia import attack_classes, attacks_that_fit
from benchmark.models.pretraining import Pretrained
from benchmark.reports.aggregate import aggregate
from benchmark.reports.figures import plot_curves
from benchmark.reports.tables import align, is_fraction
from datamodules import scenarios
from datamodules.scenarios import Outliers, RandomInstances, UnlearningScenario, WholeClasses
from methods import METHODS


@dataclass(frozen=True)
class Row:
    """One row of a paper table: its label there, the registered method and its hyperparameters; `scenario`: changes to
    each column's scenario (seed 004's "Ours (3 %)" rows: `{"fraction": 0.03}`); `columns`: the labels of the only columns
    it runs in (`column_label`; None: all), as a paper's "–" cells; `seeds`: the only seeds it runs with (None: the
    suite's), as seed 004's Oracles, trained once (its tables' single numbers)."""

    label: str
    method: str
    init: dict = field(default_factory=dict)
    scenario: dict = field(default_factory=dict)
    columns: tuple[str, ...] | None = None
    seeds: tuple[int, ...] | None = None

    def runs_in(self, column: Column, seed: int | None = None) -> bool:
        return (self.columns is None or column_label(column) in self.columns) and (seed is None or self.seeds is None or seed in self.seeds)


@dataclass(frozen=True)
class Request:
    """A column given as a scenario (seed 004: the subclass, its mislabelled twin, a class): its label in the table, the
    scenario's name in `datamodules.scenarios` and its arguments (`seed` and `dataset` are the run's and the suite's)."""

    label: str
    scenario: str
    init: dict = field(default_factory=dict, compare=False, hash=False)


MIA_SAMPLES = 5000
"""The SVM attacks of the suites are fit on the first 5,000 retain rows and the first 5,000 test rows (half of
Fashion-MNIST's test set): an RBF SVM's fit grows about quadratically, and the full 10,000 a side cost 6 s per attack
and run on 2 CPU cores (2.3 s at 5,000)."""


@dataclass(frozen=True)
class Suite:
    """A paper table: everything fixed but the method, and the rows to run."""

    title: str
    dataset: str
    ks: tuple[int, ...]
    rows: tuple[Row, ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    relabel: bool = False
    k_cl: int | None = None
    """Continual suites: images per step; `ks` are then the cumulative sizes read off the stream (multiples of k_cl)."""
    arch: str = "narrow_cnn_bn"
    """The CPU variant's original model (≥99% train / ≥90% test accuracy on Fashion-MNIST, see `benchmark/models/small_cnn.py`).
    With BatchNorm, like the papers' ResNets: without it (`narrow_cnn`) gradient ascent inflated the weights until they
    overflowed in most runs (`leaderboard/suites/README.md`)."""
    recipe: str | None = None
    """The original's pretraining recipe (`benchmark.models.pretraining.RECIPES`; default: the dataset's)."""
    evaluation: Evaluation = field(default_factory=lambda: Evaluation(mia=True, relearn=True, mia_samples=MIA_SAMPLES))
    track: str | None = None
    """The leaderboard track of each k (`{k}` is replaced; a class suite's `{classes}`, as `1-2`): the suite's runs become those tracks' entries. A continual
    suite's one track takes its runs at the track's step, and its stream is the track's for every seed."""
    main_metrics: tuple[str, ...] = ("forget/acc", "retain/acc", "test/acc")
    companion_metrics: tuple[str, ...] = ("rt/epochs", "mia/svm_asr", "mia/efficacy", "mia/loss_auc", "cost/seconds")
    records: str | None = None
    """The suite whose records folder this one shares: a run of the same method, hyperparameters, original, request,
    seed and evaluation is read back from it, not repeated (e.g. Table 1's train-mode runs in a BatchNorm-mode table)."""
    classes: tuple[tuple[int, ...], ...] | None = None
    """Class suites (seed 002): the forgotten class sets, a column each (`WholeClasses`); their requests draw D_r_sub
    with the run's seed. `ks` then names nothing."""
    retain_per_class: int | None = None
    """Class suites: images per retain class in the request's D_r_sub (what UNSIR trains on)."""
    rhos: tuple[float, ...] | None = None
    """Outlier suites (seed 003 Table 2): ρ per column (`Outliers`: a seeded group of a fraction ρ of the training set
    trained with shuffled labels, then forgotten); each (ρ, seed) is its own training set, so its own original."""
    metric_labels: dict = field(default_factory=dict, hash=False)
    """The table's names of its metrics, over `SPLIT_LABELS` (seed 004's "D_e", better high or low by scenario)."""
    requests: tuple[Request, ...] | None = None
    """Suites whose columns are scenarios of their own (seed 004): a `Request` each; a column's original is the one its
    training set asks for (a mislabelled twin's is trained on its corrupted labels)."""


Column = int | float | tuple[int, ...] | Request
"""A table column: a forget-set size k, a class suite's forgotten classes, an outlier suite's ρ, or a `Request`."""


def columns(suite: Suite) -> tuple[Column, ...]:
    return suite.requests or suite.classes or suite.rhos or suite.ks


def column_of(record: dict) -> Column:
    """The column a run's record belongs to: the one `run_suite` tagged it with, else read off its request's scenario."""
    if "column" in record:
        return record["column"]
    scenario = record["scenario"]
    kind = scenario.get("kind")
    return tuple(scenario["classes"]) if kind == "whole_classes" else scenario["rho"] if kind == "outliers" else scenario["k"]


def column_label(column: Column) -> str:
    if isinstance(column, Request):
        return column.label
    if isinstance(column, tuple):
        return f"classes {'/'.join(map(str, column))}"
    return f"ρ = {column}" if isinstance(column, float) else f"k = {column}"


def track_name(suite: Suite, column: Column) -> str:
    """The leaderboard track of a column: `suite.track` with `{k}` or `{classes}` (e.g. `3-4-5-6`) filled in."""
    if isinstance(column, tuple):
        return suite.track.format(classes="-".join(map(str, column)))
    return suite.track.format(k=column)


def scenario_spec(suite: Suite, column: Column, seed: int, changes: dict | None = None) -> tuple[type, dict]:
    """The scenario class and arguments of one column and seed (with a row's `changes` to its scenario)."""
    changes = changes or {}
    if isinstance(column, Request):
        return getattr(scenarios, column.scenario), {**column.init, **changes, "seed": seed, "dataset": suite.dataset}
    if isinstance(column, tuple):
        return WholeClasses, {"classes": list(column), "retain_per_class": suite.retain_per_class, "seed": seed, "dataset": suite.dataset, **changes}
    if isinstance(column, float):
        return Outliers, {"rho": column, "seed": seed, "dataset": suite.dataset, **changes}
    return RandomInstances, {"k": column, "seed": seed, "relabel": suite.relabel, "dataset": suite.dataset, **changes}


def make_scenario(suite: Suite, column: Column, seed: int, changes: dict | None = None) -> UnlearningScenario:
    """The forget request of one column and seed (with a row's `changes` to its scenario), set up."""
    cls, init = scenario_spec(suite, column, seed, changes)
    scenario = cls(**init)
    scenario.setup()
    return scenario


SUITES: Registry[Suite] = Registry("suite")
SPLIT_LABELS = {"forgotten/acc": "D_f so far (↓)", "forget/acc": "D_f (↓)", "retain/acc": "D_r (↑)", "test/acc": "D_test (↑)", "relabel/acc": "D_f new labels (↑)",
                "test_forget/acc": "A_Df, test (↓)", "test_retain/acc": "A_Dr, test (↑)", "test/best_acc": "D_test, best epoch (↑)",
                "noise/best_acc": "noise, true labels, best epoch (↑)",
                "noise/acc": "noise, true labels (↑)"}


def suite_dir(name: str, results_dir: str | None = None) -> Path:
    return Path(results_dir) if results_dir else home() / "results" / "suites" / name


def original(suite: Suite, leaderboard: Path | None = None) -> Pretrained:
    """The original model: the suite's track's (its committed checkpoint, so the entries reproduce on every machine)
    when the suite runs on the track's dataset, model and recipe; else a committed checkpoint of that original
    (`leaderboard/tracks/checkpoints/<dataset>-<arch>-<recipe>-seed0.pt`) when there is one and no column trains on
    corrupted labels (outlier suites, seed 004's mislabelled twin) and no U-LiRA (whose shadow originals are trained with the
    recipe, so the original must be too); else the local pretraining of `suite.arch` with
    `suite.recipe`, one per training set."""
    leaderboard = leaderboard or LEADERBOARD
    local = Pretrained(arch=suite.arch, recipe=suite.recipe)
    recipe = local.recipe_name(suite.dataset)
    names = {track_name(suite, k) for k in columns(suite)} & set(list_tracks(leaderboard)) if suite.track else set()
    for track in (load_track(name, leaderboard) for name in sorted(names)):
        pretrained = track.make_pretrained()
        if (track.dataset, pretrained.arch, pretrained.recipe_name(track.dataset)) == (suite.dataset, suite.arch, recipe):
            return pretrained
    if suite.rhos or suite.requests or suite.evaluation.ulira:
        return local
    committed = leaderboard / "tracks" / "checkpoints" / f"{suite.dataset}-{suite.arch}-{recipe}-seed0.pt"
    return replace(local, checkpoint=str(committed)) if committed.exists() else local


def row_run(suite: Suite, row: Row, k: Column, seed: int, scenario: RandomInstances | None = None) -> tuple:
    """The method, scenario (set up; `scenario` when given, the same column and seed) and original of one run of a row."""
    return METHODS.get(row.method)(**row.init), scenario or make_scenario(suite, k, seed, row.scenario), original(suite)


def row_note(suite: Suite, name: str, row: Row) -> dict:
    """What a suite's run records as its `config`."""
    return {"command": "suite", "suite": name, "arch": suite.arch, "recipe": suite.recipe, "row": row.label, "method": row.method, "init": row.init}


def run_row(suite: Suite, name: str, row: Row, k: Column, seed: int, results_dir: Path, progress: bool) -> dict:
    """One run of one row (or its record, when an identical run already wrote one)."""
    method, scenario, pretrained = row_run(suite, row, k, seed)
    evaluation = evaluation_at(suite, {name: len(scenario.splits[name]) for name in scenario.eval_split_names})
    done = runner.reusable_record(runner.method_run_path(method, scenario, pretrained, seed, str(results_dir)), evaluation)
    return done or runner.run(method, scenario, pretrained, seed=seed, config=row_note(suite, name, row), results_dir=str(results_dir),
                              progress=progress, evaluation=evaluation)


def suite_sweep(suite: Suite, name: str, results_dir: Path) -> Sweep:
    """The suite's runs (continual suites aside) as a sweep (`benchmark.experiment.sweep`): the same runs `run_row`
    makes, as `cli.py fit` configs, their records in the suite's folder, each attempt under `<folder>/sweep/`."""
    configs, notes, recorded = [], [], 0
    for k in columns(suite):
        for seed in suite.seeds:
            for row in (row for row in suite.rows if row.runs_in(k, seed)):
                method, scenario, pretrained = row_run(suite, row, k, seed)
                cls, init = scenario_spec(suite, k, seed, row.scenario)
                evaluation = evaluation_at(suite, {name: len(scenario.splits[name]) for name in scenario.eval_split_names})
                if runner.reusable_record(runner.method_run_path(method, scenario, pretrained, seed, str(results_dir)), evaluation):
                    recorded += 1  # (run before, by the local executor)
                    continue
                configs.append((fit_config(type(method), row.init, cls, init, pretrained, evaluation, seed), f"{row.label} {column_label(k)} seed={seed}"))
                notes.append(row_note(suite, name, row))
    return replace(plan_sweep(name, configs, results_dir / "sweep", records=results_dir, notes=notes), recorded=recorded)


def evaluation_at(suite: Suite, sizes: dict[str, int]) -> Evaluation:
    """The suite's evaluation without the attacks its splits are too small for at these sizes (seed 001's k = 4 has
    too few forget images for the cross-validated attacks, `mia/scrub_loss` and `mia/simple`); the table says which."""
    if not suite.evaluation.mia:
        return suite.evaluation
    kept, dropped = attacks_that_fit(suite.evaluation.mia_attacks, sizes)
    return replace(suite.evaluation, mia_attacks=kept) if dropped else suite.evaluation


def attacks_left_out(suite: Suite, records: list[dict]) -> str:
    """The header line naming the attacks `evaluation_at` left out of the runs of each k ("" when none)."""
    if not suite.evaluation.mia:
        return ""
    wanted, notes = set(attack_classes(suite.evaluation.mia_attacks)), {}
    for record in records:
        chosen = (record.get("evaluation") or {}).get("mia_attacks")
        if chosen is not None and wanted - set(chosen):
            notes[column_of(record)] = sorted(wanted - set(chosen))
    return ("Membership attacks not computed, D_f being too small for them: " +
            "; ".join(f"{column_label(k)}: {', '.join(f'`{name}`' for name in names)}" for k, names in sorted(notes.items())) + ".\n\n") if notes else ""


def run_seconds(records: list[dict]) -> float:
    """Seconds the runs of `records` took (preparation, unlearning and evaluation; not reading data or models),
    whichever invocation of a resumable suite ran them. Work a run read from a cache (`cost/reused_seconds`) is
    counted once, by the run that did it."""
    return sum(t.get("cost/seconds", 0.0) - t.get("cost/reused_seconds", 0.0) + t.get("eval/seconds", 0.0) for t in (r["timings"] for r in records))


def track_stream(suite: Suite, leaderboard: Path | None = None) -> Path | None:
    """The stream file of the suite's continual track (when it has one, on the track's dataset and model)."""
    if not (suite.k_cl and suite.track):
        return None
    track = load_track(suite.track, leaderboard or LEADERBOARD)
    if (track.dataset, track.pretrained["arch"]) != (suite.dataset, suite.arch):
        return None
    return Path(track.make_scenario(suite.seeds[0]).stream)


def run_continual(suite: Suite, name: str, results_dir: Path, progress: bool, leaderboard: Path | None = None) -> tuple[list[dict], float]:
    """Each row over a stream per seed (`benchmark.continual.run_stream`, resumable): the continual track's stream
    for every seed when the suite runs on the track's dataset and model, else one drawn per seed. Returns the
    records at the `ks` read points and the seconds all steps took (`run_seconds`)."""
    if any(k % suite.k_cl for k in suite.ks):
        raise UnlearnBenchError(f"suite {name}: every k must be a multiple of k_cl={suite.k_cl}, got ks={list(suite.ks)}")
    steps, records, seconds = max(suite.ks) // suite.k_cl, [], 0.0
    shared = track_stream(suite, leaderboard)
    for seed in suite.seeds:
        stream = shared or write_stream(suite.dataset, suite.k_cl, steps, seed, suite.relabel, request_dir=str(results_dir / "streams"))
        for row in suite.rows:
            config = row_note(suite, name, row)
            steps_run = run_stream(METHODS.get(row.method)(**row.init), stream, original(suite, leaderboard), seed=seed, steps=steps,
                                   results_dir=str(results_dir / row.label), progress=progress, config=config, evaluation=suite.evaluation,
                                   measured_steps={k // suite.k_cl for k in suite.ks})
            records += [{**r, "config": {**r["config"], **config}, "row": row.label} for r in steps_run if r["scenario"]["k"] in suite.ks]
            seconds += run_seconds(steps_run)
            print(f"{row.label} seed={seed}: {steps} steps done", file=sys.stderr, flush=True)
    return records, seconds


def _cell(row: dict | None, metric: str) -> str:
    """mean ± std over the seeds (in % for accuracies and attacks); `nan (d/n)` when d of n runs diverged."""
    entry = (row or {}).get("metrics", {}).get(metric)
    if entry is None:
        return "–"
    if entry["mean"] != entry["mean"]:
        return f"nan ({len(row['diverged'])}/{row['n']} diverged)" if row["diverged"] else "nan"
    scale = 100.0 if is_fraction(metric) else 1.0
    return f"{scale * entry['mean']:.2f} ± {scale * entry['std']:.2f}"


def tables(suite: Suite, records: list[dict]) -> tuple[str, str]:
    """The paper's layout (row groups per split, a row per suite row, a column per k) and the companion table, from
    `records` tagged with their row's label (`row`)."""
    groups: dict[tuple[str, int], list[dict]] = {}
    for r in records:
        costs = {m: r["timings"][m] for m in ("cost/seconds", *suite.companion_metrics) if m.startswith("cost/") and r["timings"].get(m) is not None}
        with_cost = {**r, "metrics": {**r["metrics"], **costs},
                     "scenario": {k: v for k, v in r["scenario"].items() if k != "stream"}}  # (a stream per seed)
        groups.setdefault((r["row"], column_of(r)), []).append(with_cost)
    by = {key: aggregate(group)[0] for key, group in groups.items()}

    def lines(metrics: tuple[str, ...], title) -> list[list[str]]:
        return [[title(m) if i == 0 else "", row.label, *(_cell(by.get((row.label, k)), m) for k in columns(suite))]
                for m in metrics for i, row in enumerate(suite.rows)]

    header = [column_label(k) for k in columns(suite)]
    return (align(["", "", *header], lines(suite.main_metrics, lambda m: {**SPLIT_LABELS, **suite.metric_labels}.get(m, m))),
            align(["measure", "", *header], lines(suite.companion_metrics, str)))


def suite_variant(name: str, dataset: str | None = None, seeds: list[int] | None = None, ks: list[int] | None = None,
                  arch: str | None = None, recipe: str | None = None, classes: list[list[int]] | None = None,
                  retain_per_class: int | None = None) -> tuple[Suite, str]:
    """The suite with the given grid and its variant's name (`<name>[-<dataset>][-<arch>][-<recipe>]`, naming what is
    not the suite's own), which names its records' folder and its tables."""
    registered = SUITES.get(name)
    if registered.rhos and (ks is not None or classes is not None):
        raise UnlearnBenchError(f"suite {name} is an outlier suite: its columns are the fractions ρ of mislabelled training images, not {'ks' if ks is not None else 'classes'}")
    if (ks is not None and registered.classes) or (classes is not None and not registered.classes):
        kind, given_kind = ("a class suite: its columns are forgotten class sets (--classes)", "ks") if registered.classes else \
            ("an instance suite: its columns are forget-set sizes (--ks)", "classes")
        raise UnlearnBenchError(f"suite {name} is {kind}, not {given_kind}")
    given = {"dataset": dataset, "seeds": seeds, "ks": ks, "arch": arch, "recipe": recipe,
             "classes": tuple(tuple(c) for c in classes) if classes is not None else None, "retain_per_class": retain_per_class}
    suite = replace(registered, **{k: tuple(v) if isinstance(v, list) else v for k, v in given.items() if v is not None})
    if suite.classes is not None and (not suite.classes or not all(suite.classes)):
        raise UnlearnBenchError(f"suite {name}: classes must be non-empty class sets, got {[list(c) for c in suite.classes]}")
    if any(k < 1 for k in suite.ks) or not suite.seeds:
        raise UnlearnBenchError(f"suite {name}: ks must be positive and seeds not empty, got ks={list(suite.ks)}, seeds={list(suite.seeds)}")
    return suite, name + "".join(f"-{value}" for value, default in ((suite.dataset, registered.dataset), (suite.arch, registered.arch), (suite.recipe, registered.recipe)) if value != default)


def original_summary(suite: Suite) -> str:
    """How the original fits before unlearning (seed 000's lesson: a saturated original leaves gradient ascent nothing
    to work with): its train and test accuracy, and per k its mean cross-entropy and median true-class probability
    on D_f, averaged over the suite's seeds. An outlier suite's originals are one per column and seed: the train and
    test accuracy are then the first's, and each column says its originals' mean test accuracy."""
    pretrained, parts, train, model = original(suite), [], None, None
    for k in columns(suite):
        losses, medians, tests = [], [], []
        for seed in suite.seeds:
            scenario = make_scenario(suite, k, seed)
            if model is None or suite.rhos or suite.requests:  # (else one original for every k and seed)
                model = runner.obtain_original(scenario, pretrained, progress=False).eval()
            device = next(model.parameters()).device
            if suite.rhos:
                tests.append(evaluate_accuracy(model, scenario.eval_loader("test", shard=False), scenario.info.num_classes, device))
            if train is None:
                sizes = {name: len(scenario.splits[name]) for name in ("forget", "retain")}
                accuracy = {name: evaluate_accuracy(model, scenario.eval_loader(name, shard=False), scenario.info.num_classes, device)
                            for name in ("forget", "retain", "test")}
                train = (sum(sizes[n] * accuracy[n] for n in sizes) / sum(sizes.values()), accuracy["test"])
            with torch.no_grad():
                outputs = [(model(x.to(device)), y.to(device)) for x, y, *_ in scenario.eval_loader("forget", shard=False)]
            logits, labels = torch.cat([o for o, _ in outputs]), torch.cat([y for _, y in outputs])
            losses.append(float(F.cross_entropy(logits, labels)))
            medians.append(float(logits.softmax(1).gather(1, labels[:, None]).median()))
        parts.append(f"{column_label(k)}: mean CE {sum(losses) / len(losses):.2g}, median p_y {sum(medians) / len(medians):.6f}"
                     + (f", its originals' test accuracy {100 * sum(tests) / len(tests):.2f} %" if tests else ""))
    return (f"The original before unlearning: train accuracy {100 * train[0]:.2f} %, test {100 * train[1]:.2f} %; on D_f (mean over "
            f"the seeds) {'; '.join(parts)}.")


def records_variant(suite: Suite, name: str, variant: str) -> str:
    """The name of the records folder of a suite variant: its own, or that of the suite it shares records with."""
    return (suite.records or name) + variant[len(name):]


def run_suite(name: str, dataset: str | None = None, seeds: list[int] | None = None, ks: list[int] | None = None,
              results_dir: str | None = None, out: str | None = None, progress: bool | None = None, arch: str | None = None,
              recipe: str | None = None, classes: list[list[int]] | None = None, retain_per_class: int | None = None,
              executor: Literal["local", "ray"] = "local", workers: int | None = None, cpus_per_run: int | None = None,
              gpus_per_run: float = 0.0, plan: bool = False) -> dict:
    """Run a paper table (the modules of `benchmark/suites/`) and write its tables; interrupted suites resume.

    Args:
        name: the suite (`instancewise_table1`, `instancewise_relabel`).
        dataset: run the same grid on another dataset (e.g. `digits` for a quick check).
        seeds: the seeds (each is the forget request's seed and the unlearning run's seed).
        ks: the forget-set sizes (instance suites).
        classes: the forgotten class sets (class suites), e.g. `[[0], [1, 2]]`.
        retain_per_class: images per retain class in D_r_sub (class suites; e.g. 50 on digits, which has ~145 a class).
        arch: the original model's architecture (default: the suite's).
        recipe: the original's pretraining recipe (default: the suite's), e.g. `fashion_mnist_sgd` with `narrow_resnet18`
            for the paper-like original.
        results_dir: where the runs' records go (default `$UNLEARNBENCH_HOME/results/suites/<name>`).
        out: the Markdown file of the tables (default `leaderboard/suites/<name>[-<dataset>][-<arch>][-<recipe>].md`,
            where dataset, arch and recipe are named when they are not the suite's; their records likewise go to their own folder).
        progress: progress bars (default: when standard error is a terminal).
        executor: where the suite's runs (a sweep, `benchmark.experiment.sweep`) go: `local` (one after another, in
            this process) or `ray` (`RAY_ADDRESS`'s cluster or a local one); the tables then come from their records.
        workers: CPUs of a local Ray instance (default: all).
        cpus_per_run: torch threads (and Ray CPUs) per run.
        gpus_per_run: GPUs per Ray task (fractions share a GPU).
        plan: list the suite's runs and which are done; run nothing.
    """
    suite, variant = suite_variant(name, dataset, seeds, ks, arch, recipe, classes, retain_per_class)
    progress = sys.stderr.isatty() if progress is None else progress
    folder = suite_dir(records_variant(suite, name, variant), results_dir)
    if (plan or executor != "local") and suite.k_cl:
        raise UnlearnBenchError(f"suite {name} is continual: each step starts from the previous step's model, so its runs are a chain; "
                                "run it with the local executor, without --plan")
    start, records = time.perf_counter(), []
    if suite.k_cl:
        records, seconds = run_continual(suite, name, folder, progress)
    else:  # the runs as a sweep (any executor), then the tables from their records
        swept = run_sweep(suite_sweep(suite, name, folder), executor, workers, cpus_per_run, gpus_per_run, plan=plan)
        if swept["failed"]:
            raise UnlearnBenchError(f"suite {name}: {len(swept['failed'])} of its runs failed ({'; '.join(swept['failed'].values())}); "
                                    "rerun the command to retry them")
        if plan:
            return {"suite": suite, "records": swept["records"], "path": None, "entries": [], "plan": swept}
        records = [{**run_row(suite, name, row, k, seed, folder, progress), "row": row.label, "column": k}
                   for k in columns(suite) for seed in suite.seeds for row in suite.rows if row.runs_in(k, seed)]
    if not suite.k_cl:
        seconds = run_seconds(records)
    main, companion = tables(suite, records)
    entries = write_entries(suite, records) if suite.track and suite == replace(SUITES.get(name), seeds=suite.seeds, ks=suite.ks, classes=suite.classes) else []
    command = "python cli.py suite " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if len(sys.argv) > 1 and sys.argv[1] == "suite" else f"python cli.py suite {name}"
    summary = ("" if suite.k_cl else f"{original_summary(suite)}\n\n") + attacks_left_out(suite, records)
    text = (f"# {suite.title}\n\n{suite.dataset}, {suite.arch}, seeds {list(suite.seeds)}; mean ± std in % (rt/epochs in epochs, cost in seconds); "
            f"nan (d/n diverged): d of the n runs diverged (non-finite outputs).\n\n{summary}Produced by `{command}`: its runs took {seconds:.0f} s in all (unlearning and evaluation, summed over the runs' records, whichever invocation of this resumable command ran them); this invocation {time.perf_counter() - start:.0f} s.\n\n```\n{main}\n```\n\nCompanion measures:\n\n```\n{companion}\n```\n")
    target = Path(out) if out else Path("leaderboard") / "suites" / f"{variant}.md"
    figure = curves_figure(suite, records, target.with_name(f"{target.stem}-curves.png"))
    if figure:
        text += f"\nCurves (mean ± std over the seeds; epoch 0 is before the first epoch, after a masking method's masking):\n\n![curves]({figure.name})\n"
    atomic_write_bytes(target, text.encode())
    print(text)
    for entry in entries:
        print(f"leaderboard entry: {entry}")
    return {"suite": suite, "records": records, "path": str(target), "entries": entries}


def curves_figure(suite: Suite, records: list[dict], path: Path) -> Path | None:
    """The per-epoch curves of the suite's main metrics (of `{split}/acc` for `{split}/best_acc`), a panel per column
    and metric, a line per row that has curves (Retrain's final value only: a reference line), None when no run
    recorded any."""
    panels = {}
    for k in columns(suite):
        for main in suite.main_metrics:
            metric = main.removesuffix("/best_acc") + "/acc" if main.endswith("/best_acc") else main  # (the curve it is the best of)
            lines = {}
            for row in suite.rows:
                runs = [[100 * v for v in r["curves"][metric]] for r in records
                        if r["row"] == row.label and column_of(r) == k and metric in (r.get("curves") or {})]
                if row.method == "Retrain":  # a reference, as the paper's dashed line: its training from scratch is not unlearning
                    runs = [run[-1:] for run in runs]
                if runs:
                    lines[row.label] = runs
            if lines:
                panels[f"{column_label(k)}: {SPLIT_LABELS.get(metric, metric)}"] = lines
    return plot_curves(panels, path, title=suite.title.split(":")[0]) if panels else None


def write_entries(suite: Suite, records: list[dict], leaderboard: Path | None = None) -> list[str]:
    """Each row's runs of each k as an entry of the k's track, when they cover all the track's seeds
    (so paper tables and leaderboard are the same data); `cli.py render` then shows them."""
    leaderboard = leaderboard or LEADERBOARD
    written = []
    if suite.k_cl:  # one track: the stream's runs at the track's step
        track = load_track(suite.track, leaderboard)
        tracks = {track.scenario["init_args"]["step"] * suite.k_cl: track}
    else:
        known = set(list_tracks(leaderboard))
        tracks = {k: load_track(track_name(suite, k), leaderboard) for k in columns(suite) if track_name(suite, k) in known}
        for k in sorted(set(columns(suite)) - set(tracks)):
            print(f"no entries for {column_label(k)}: there is no track {track_name(suite, k)}", file=sys.stderr)
    for k, track in tracks.items():
        for row in suite.rows:
            runs = [r for r in records if r["row"] == row.label and column_of(r) == k]
            if sorted(r["seed"] for r in runs) != track.seeds:
                print(f"no entry for {row.label} on {track.name}: the suite ran seeds {sorted(r['seed'] for r in runs)}, the track has {track.seeds}", file=sys.stderr)
                continue
            written.append(str(write_entry(track, row.method, runs, init_args=row.init, leaderboard=leaderboard)))
    return written
