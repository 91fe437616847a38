"""Continual unlearning runs (seed 000 Table 3): one method over the steps of a stream, each step from the last one's model.

Step t is an ordinary run (`runner.run`) of a fresh copy of the method on `ContinualStep(stream, t)`, whose original
model is the unlearned model step t − 1 saved (`Pretrained(checkpoint=…)`), the pretrained model at step 1. Each
step writes its own result record (its scenario says `step` and the cumulative `k`); a step whose record exists is
not run again, so an interrupted stream resumes where it stopped.
"""

from __future__ import annotations

import sys
from collections.abc import Collection
from dataclasses import replace
from pathlib import Path

import methods  # noqa: F401  (registers the methods `--method` names)
from benchmark.core.paths import home
from benchmark.experiment import runner
from benchmark.metrics.evaluator import Evaluation
from benchmark.models.pretraining import Pretrained
from benchmark.reports.tables import align, is_fraction
from datamodules.datasets import load_dataset
from datamodules.scenarios import ContinualStep
from datamodules.scenarios.continual import draw_stream
from methods import NegGrad, UnlearningMethod

STEP_METRICS = ("forget/acc", "forgotten/acc", "retain/acc", "test/acc")


def write_stream(dataset: str = "digits", k_cl: int = 8, steps: int = 16, seed: int = 0, relabel: bool = False,
                 data_root: str | None = None, request_dir: str | None = None) -> Path:
    """Draw a random stream (`draw_stream`) and save it as `<request_dir>/<hash>.json`; return its path."""
    stream = draw_stream(load_dataset(dataset, data_root), k_cl, steps, seed, relabel)
    folder = Path(request_dir) if request_dir else home() / "requests" / dataset
    return stream.save(folder / f"{stream.hash[:16]}.json")


def run_stream(method: UnlearningMethod, stream: str | Path, pretrained: Pretrained, seed: int = 0, steps: int | None = None,
               evaluation: Evaluation | None = None, trainer_kwargs: dict | None = None, results_dir: str | None = None,
               progress: bool = True, config: dict | None = None, measured_steps: Collection[int] | None = None, **scenario_kwargs) -> list[dict]:
    """Run `method` (a template: each step gets a fresh copy) over the first `steps` steps of the stream file
    (default: all); return one record per step (in the file layout `runner.run` returns), read from disk for the steps
    already done.

    `measured_steps`: the steps (from 1) that get every measure of `evaluation`; the others measure the accuracies
    only (default: every step gets every measure). Suites measure attacks and relearn time at the table's k only.
    """
    accuracy_only = Evaluation(mia=False, seed=(evaluation or Evaluation()).seed)
    name, records = type(method).__name__, []
    checkpoint = pretrained.checkpoint
    first = ContinualStep(stream=str(stream), step=1, **scenario_kwargs)
    first.setup()  # checks the whole stream
    for step in range(1, (first.request.scenario["steps"] if steps is None else steps) + 1):
        scenario = first if step == 1 else ContinualStep(stream=str(stream), step=step, **scenario_kwargs)
        scenario.setup()
        start = replace(pretrained, checkpoint=checkpoint)
        path = runner.method_run_path(method, scenario, start, seed, results_dir)  # (a step from another start: another file)
        measured = evaluation if measured_steps is None or step in measured_steps else accuracy_only
        record = runner.reusable_record(path, measured)
        if record is None:
            data = {"class_path": f"{ContinualStep.__module__}.ContinualStep", "init_args": {"stream": str(stream), "step": step, **scenario_kwargs}}
            model = {"class_path": f"{type(method).__module__}.{name}", "init_args": dict(method.hparams)}
            record = runner.run(method.fresh_copy(), scenario, start, seed=seed, trainer_kwargs=trainer_kwargs, results_dir=results_dir,
                                config={**(config or {}), "model": model, "data": data}, progress=progress, evaluation=measured)
        checkpoint = record["weights"]
        records.append(record)
    return records


def format_steps(records: list[dict]) -> str:
    """One row per step: the step, the cumulative k, accuracies in % (`forget` = the step's chunk, `forgotten` =
    every chunk so far) and the step's unlearning cost."""
    header = ["step", "k", *STEP_METRICS, "cost/seconds"]
    rows = []
    for r in records:
        values = [r["metrics"].get(m) for m in STEP_METRICS]
        cells = ["nan" if v is None else f"{100 * v:.2f}" if is_fraction(m) else f"{v:g}" for m, v in zip(STEP_METRICS, values)]
        rows.append([str(r["scenario"]["step"]), str(r["scenario"]["k"]), *cells, f"{r['timings'].get('cost/seconds', 0.0):.2f}"])
    return align(header, rows)


def continual(
    method: UnlearningMethod | None = None,
    stream: str | None = None,
    dataset: str = "digits",
    k_cl: int = 8,
    steps: int = 16,
    scenario_seed: int = 0,
    relabel: bool = False,
    seed: int = 0,
    pretrained: Pretrained = Pretrained(),  # noqa: B008 (jsonargparse shows it)
    evaluation: Evaluation = Evaluation(),  # noqa: B008
    data_root: str | None = None,
    eval_batch_size: int = 512,
    num_workers: int = 4,
    accelerator: str = "auto",
    results_dir: str | None = None,
    progress: bool | None = None,
) -> list[dict]:
    """Continual unlearning (seed 000 Table 3): unlearn a stream of chunks of k_cl training images, one step per
    chunk, each from the previous step's unlearned model; write a result record per step and print a table.

    Steps already recorded are skipped, so rerunning the same command resumes an interrupted stream. The paper's
    setting: `--method AdvImp --method.n_adv 200 --dataset cifar100 --pretrained.arch cifar_resnet50 --k_cl 8
    --steps 16`, read at k = 8, 16, 64, 128 (steps 1, 2, 8, 16).

    Args:
        method: the method and its hyperparameters (`--method AdvImp --method.n_adv 200`); default NegGrad.
        stream: a stream request file to unlearn (its dataset is used); default: draw one from the options below.
        dataset: registered dataset name.
        k_cl: training images per step (k_CL).
        steps: number of steps of the drawn stream.
        scenario_seed: seed of the drawn stream.
        relabel: give the drawn stream's images new labels (for methods with the `relabel` goal).
        seed: seed of the unlearning runs.
        pretrained: the model step 1 starts from.
        evaluation: what every step measures besides accuracy.
        data_root: where the dataset's files are.
        eval_batch_size: batch size for evaluation.
        num_workers: loader workers for datasets streamed from disk.
        accelerator: Lightning accelerator (`auto`, `cpu`, `gpu`).
        results_dir: where result records go.
        progress: show progress bars (default: when standard error is a terminal).
    """
    progress = sys.stderr.isatty() if progress is None else progress
    if stream is None:
        stream = str(write_stream(dataset, k_cl, steps, scenario_seed, relabel, data_root))
        print(f"stream of {steps} × {k_cl} {dataset} training images: {stream}", file=sys.stderr)
    method = method if method is not None else NegGrad()
    config = {"command": "continual"}
    records = run_stream(method, stream, pretrained, seed=seed, evaluation=evaluation, trainer_kwargs={"accelerator": accelerator},
                         results_dir=results_dir, progress=progress, config=config, data_root=data_root,
                         eval_batch_size=eval_batch_size, num_workers=num_workers)
    print(f"\n{type(method).__name__}, stream {stream}, seed {seed}; accuracies in %")
    print(format_steps(records))
    return records
