"""The commands beside fit/test: pretrain, compare, datasets, models, request."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Literal

from jsonargparse import auto_cli

from benchmark.commands.analyses import analyze
from benchmark.core.errors import UnlearnBenchError
from benchmark.experiment import runner
from benchmark.experiment.continual import continual
from benchmark.experiment.sweep import run_sweep
from benchmark.leaderboard.commands import COMMANDS as LEADERBOARD_COMMANDS
from benchmark.metrics.evaluator import Evaluation
from benchmark.models import list_models
from benchmark.models.pretraining import RECIPES, Pretrained
from benchmark.reports.aggregate import TABLE_METRICS, aggregate_folder
from benchmark.reports.tables import align, is_fraction
from benchmark.suites import analyze_suite, run_suite
from datamodules.datasets import DATASETS, list_datasets, load_dataset
from datamodules.requests import ForgetRequest
from datamodules.scenarios import NothingForgotten, RandomInstances, WholeClasses
from methods import METHODS, Original


def _cell(name: str, value: float | None | str) -> str:
    """Accuracies and attack scores in %, counts as they are."""
    if isinstance(value, str) or value is None:
        return value or "nan"
    return f"{100 * value:.2f}" if is_fraction(name) else f"{value:g}"


def format_table(records: list[dict]) -> str:
    """Rows = methods, columns = accuracies (in %) on the splits present, and the unlearning cost."""
    columns = [m for m in TABLE_METRICS if any(m in r["metrics"] for r in records)]
    speedups = any("cost/speedup_vs_retrain" in r["timings"] for r in records)
    header = ["method", *columns, "cost/seconds", *(["cost/speedup_vs_retrain"] if speedups else [])]
    rows = [[r["method"] + (" (diverged)" if r.get("diverged") else ""), *(_cell(c, r["metrics"].get(c, "-")) for c in columns), f"{r['timings'].get('cost/seconds', 0.0):.2f}",
             *([f"{r['timings']['cost/speedup_vs_retrain']:.1f}×" if "cost/speedup_vs_retrain" in r["timings"] else "-"] if speedups else [])] for r in records]
    return align(header, rows)


def compare(
    methods: list[str] = ["Original", "Retrain", "FineTune", "NegGrad"],  # noqa: B006
    dataset: str = "digits",
    fraction: float | None = 0.1,
    k: int | None = None,
    classes: list[int] | None = None,
    scenario_seed: int = 0,
    seed: int = 0,
    arch: str = "small_cnn",
    data_root: str | None = None,
    results_dir: str | None = None,
    progress: bool | None = None,
) -> list[dict]:
    """Run several methods on one scenario with default hyperparameters and print their table.

    Args:
        methods: method names (registered) to run, in order.
        dataset: registered dataset name.
        fraction: fraction of the training set to forget at random (ignored with k or classes).
        k: number of random training samples to forget.
        classes: forget these whole classes instead of random samples.
        scenario_seed: seed of the random forget request.
        seed: seed of the unlearning runs.
        arch: model architecture of the original model.
        data_root: where the dataset's files are.
        results_dir: where result records go.
        progress: show progress bars (default: when standard error is a terminal).
    """
    progress = sys.stderr.isatty() if progress is None else progress
    method_classes = [METHODS.get(name) for name in methods]
    records = []
    for cls in method_classes:
        if classes is not None:
            data = {"classes": classes, "dataset": dataset, "data_root": data_root}
            scenario = WholeClasses(**data)
        else:
            data = {"k": k, "fraction": None if k is not None else fraction, "seed": scenario_seed, "dataset": dataset, "data_root": data_root}
            scenario = RandomInstances(**data)
        method = cls()
        config = {"command": "compare", "model": {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": dict(method.hparams)},
                  "data": {"class_path": f"{type(scenario).__module__}.{type(scenario).__qualname__}", "init_args": data},
                  "pretrained": {"arch": arch}, "seed_everything": seed}  # (in the layout `fit` records)
        record = runner.run(method, scenario, Pretrained(arch=arch), seed=seed, results_dir=results_dir, progress=progress, config=config)
        records.append(record)
    print(f"\n{dataset}, {records[0]['scenario']}, request {records[0]['request']['hash'][:16]}, seed {seed}; accuracies in %")
    print(format_table(records))
    return records


def pretrain(dataset: str = "digits", arch: str = "small_cnn", recipe: str | None = None, seed: int = 0, data_root: str | None = None, progress: bool | None = None) -> dict:
    """Train (or load from the cache) the original model and print its train and test accuracy.

    Args:
        dataset: registered dataset name.
        arch: model architecture.
        recipe: pretraining recipe (default: the dataset's own, else `cifar`).
        seed: pretraining seed.
        data_root: where the dataset's files are.
        progress: show progress bars (default: when standard error is a terminal).
    """
    progress = sys.stderr.isatty() if progress is None else progress
    record = runner.run(Original(), NothingForgotten(dataset, data_root=data_root), Pretrained(arch=arch, recipe=recipe, seed=seed), progress=progress,
                        config={"command": "pretrain"}, evaluation=Evaluation(mia=False))
    m = record["metrics"]
    print(f"original {arch} on {dataset} (recipe {record['pretrained']['recipe']}, seed {seed}): train acc {100 * m['retain/acc']:.2f} %, test acc {100 * m['test/acc']:.2f} %")
    return record


def datasets() -> None:
    """List the registered datasets and where each one's data comes from."""
    for name in list_datasets():
        try:
            info = DATASETS.get(name)(None).info
            print(f"{name:16s} found    {info.num_classes} classes, {info.channels}×{info.image_size}×{info.image_size}; {info.source}")
        except Exception as error:  # noqa: BLE001 (report, do not stop the listing)
            print(f"{name:16s} missing  {error}")


def models() -> None:
    """List the registered model architectures (any timm model name works too) and pretraining recipes."""
    print("models:", ", ".join(list_models()), "(+ any timm model name)")
    print("recipes:", ", ".join(RECIPES.names()))


def request(path: str) -> str:
    """Validate a hand-written request file and write its content hash into it; print the hash.

    Args:
        path: the request JSON file (fields as in any request written by a scenario).
    """
    request = ForgetRequest.load(path, check_hash=False)
    data = load_dataset(request.dataset)
    request.validate(data.info.num_classes, data.train.targets)
    request.save(path)
    print(request.hash)
    return request.hash


def sweep(file: str, executor: Literal["local", "ray"] = "local", workers: int | None = None, cpus_per_run: int | None = None,
          gpus_per_run: float = 0.0, retries: int = 2, folder: str | None = None, plan: bool = False) -> dict:
    """Run every run of a sweep file not done yet (methods × scenarios × seeds × overrides, `benchmark/experiment/sweep.py`
    says the format) and print their table; rerun the same command to resume.

    Args:
        file: the sweep YAML file.
        executor: `local` (one run after another, in this process) or `ray` (Ray tasks: `RAY_ADDRESS`'s cluster, or a
            local Ray with `workers` CPUs; needs `pip install -e '.[ray]'`).
        workers: CPUs of a local Ray instance (default: all).
        cpus_per_run: torch threads (and Ray CPUs) per run (default: ray 1; local: torch's own).
        gpus_per_run: GPUs per Ray task (fractions share a GPU).
        retries: how many times a run that raises, or whose process or node dies, is tried again.
        folder: where the sweep's results and records go (default `$UNLEARNBENCH_HOME/sweeps/<name>`).
        plan: list the runs and which are done; run nothing.
    """
    result = run_sweep(file, executor, workers, cpus_per_run, gpus_per_run, retries, folder, plan)
    if result["records"] and not plan:
        print(format_table([{**r, "method": f"{r['method']} seed {r['seed']}"} for r in result["records"]]))
    print(f"{result['runs']} runs: {result['cached']} done before, {result['ran']} ran, {len(result['failed'])} failed; results in {result['folder']}")
    if result["failed"]:
        raise UnlearnBenchError(f"{len(result['failed'])} runs failed: " + "; ".join(f"{k}: {v}" for k, v in result["failed"].items())
                                + "; rerun the command to retry them")
    return result


def _command(function: Callable) -> Callable[[list[str]], object]:
    return lambda argv: auto_cli(function, args=argv)


TOOLS: dict[str, Callable[[list[str]], object]] = {
    "compare": _command(compare),
    "pretrain": _command(pretrain),
    "datasets": _command(datasets),
    "models": _command(models),
    "request": _command(request),
    "aggregate": _command(aggregate_folder),
    "continual": _command(continual),
    "analyze": _command(analyze),
    "sweep": _command(sweep),
}


def suite(name: str, dataset: str | None = None, seeds: list[int] | None = None, ks: list[int] | None = None,
          arch: str | None = None, recipe: str | None = None, results_dir: str | None = None, out: str | None = None,
          progress: bool | None = None, classes: list[list[int]] | None = None, retain_per_class: int | None = None,
          executor: Literal["local", "ray"] = "local", workers: int | None = None, cpus_per_run: int | None = None,
          gpus_per_run: float = 0.0, plan: bool = False) -> str | None:
    """Run a paper table (seed 000 / 001's `instancewise_table1`, `_relabel`, `_continual`, `_table1_batchnorm`, `_table1_authors`; seed 002's `unsir_table1`; an unknown name lists them) and write it under leaderboard/suites/.

    Args:
        name: the suite.
        dataset: the same grid on another dataset (e.g. digits, for a quick check).
        seeds: seeds (each is the forget request's and the run's seed); default: the suite's three.
        ks: forget-set sizes (instance suites); default: the paper's.
        classes: forgotten class sets (class suites, e.g. `'[[0], [1, 2]]'`); default: the paper's.
        retain_per_class: images per retain class in the requests' D_r_sub (class suites); default: the suite's.
        arch: the original model's architecture; default: the suite's.
        recipe: the original's pretraining recipe; default: the suite's (`--arch narrow_resnet18 --recipe
            fashion_mnist_sgd`: the paper-like original, trained with SGD, weight decay and augmentation).
        results_dir: where the runs' records go.
        out: the Markdown file of the tables.
        progress: progress bars (default: when standard error is a terminal).
        executor: `local` (one run after another) or `ray` (the runs as a sweep on Ray, as `cli.py sweep`; then the tables).
        workers: CPUs of a local Ray instance (default: all).
        cpus_per_run: torch threads (and Ray CPUs) per run.
        gpus_per_run: GPUs per Ray task (fractions share a GPU).
        plan: list the runs and which are done (records of earlier local runs count); run nothing.
    """
    return run_suite(name, dataset, seeds, ks, results_dir, out, progress, arch=arch, recipe=recipe, classes=classes, retain_per_class=retain_per_class,
                     executor=executor, workers=workers, cpus_per_run=cpus_per_run, gpus_per_run=gpus_per_run, plan=plan)["path"]


TOOLS["suite"] = _command(suite)


def analyses(name: str, dataset: str | None = None, seeds: list[int] | None = None, ks: list[int] | None = None,
             arch: str | None = None, recipe: str | None = None, results_dir: str | None = None, out: str | None = None,
             figures: bool = True) -> str:
    """Seed 000's qualitative analyses over a suite's finished runs, as numbers in a table under leaderboard/suites/.

    The label pattern, layer-wise CKA, class clusters and D_f's place between them (`benchmark/suites/analyses.py`
    says what each number is), mean ± std per row and k, and the figures of the first k and seed.

    Args:
        name: the suite (run `cli.py suite` with the same grid arguments first).
        dataset: as `cli.py suite`'s.
        seeds: as `cli.py suite`'s.
        ks: as `cli.py suite`'s.
        arch: as `cli.py suite`'s.
        recipe: as `cli.py suite`'s.
        results_dir: where the suite's records are (default `$UNLEARNBENCH_HOME/results/suites/<variant>`).
        out: the Markdown file (default `leaderboard/suites/<variant>-analyses.md`).
        figures: also the PNG figures of every row's run at the first k and seed, beside the table.
    """
    return analyze_suite(name, dataset, seeds, ks, arch, results_dir, out, figures, recipe)


TOOLS["analyses"] = _command(analyses)
TOOLS.update(LEADERBOARD_COMMANDS)
