"""Seed 000's qualitative analyses (§Qualitative Analysis, Figs. 2-4) of a finished run, from its result record.

The run's scenario is rebuilt from the record (its config's `data` when it names one, else its request file) and
checked against the record's request hash; "before" is the model the run started from (`record.pretrained`:
the original, or for a continual step the previous step's model), "after" the weights the run saved.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch

from benchmark.audits.measures import tsne_figure, write_run_figures
from benchmark.core.errors import UnlearnBenchError
from benchmark.core.record import ResultRecord, load_record
from benchmark.experiment import runner
from benchmark.models.pretraining import Pretrained, build_model, load_checkpoint
from datamodules.scenarios import RequestFile, UnlearningScenario


def scenario_of(record: ResultRecord, data_root: str | None = None) -> UnlearningScenario:
    """The run's scenario, set up, with the record's request (same hash)."""
    data = record.config.get("data")
    if isinstance(data, dict) and "class_path" in data:
        module, _, name = data["class_path"].rpartition(".")
        arguments = dict(data.get("init_args") or {})
        if data_root is not None:
            arguments["data_root"] = data_root
        scenario = getattr(importlib.import_module(module), name)(**arguments)
    else:
        scenario = RequestFile(path=record.request.path, data_root=data_root)
    scenario.setup()
    if scenario.request.hash != record.request.hash:
        raise UnlearnBenchError(f"the rebuilt scenario's request {scenario.request.hash[:16]} is not the record's {record.request.hash[:16]}; "
                                "the data or the request file changed since the run")
    return scenario


def analyze(record: str, data_root: str | None = None, seed: int = 0, device: str | None = None) -> list[Path]:
    """Write the qualitative analyses of seed 000 for a finished run as PNGs in `<record>-figures/` beside its record.

    `confusion_forget.png` (pre- vs post-unlearning labels over D_f, Fig. 2), `tsne_before.png` and `tsne.png`
    (penultimate features of D_f and D_r before and after unlearning, Fig. 3), `cka_forget.png` and
    `cka_retain.png` (layer-wise linear CKA between the model before and after, on D_f and D_r, Fig. 4), and
    `weight_distance.png`, `prediction_distribution.png` (seed 002 Figs. 2, 4): `write_figures` plus the
    "before" t-SNE.

    Args:
        record: a result record (`…/<Method>-seed<seed>.json`) with its unlearned weights beside it.
        data_root: where the dataset's files are (default: as recorded, else the dataset's usual places).
        seed: seed of the t-SNE.
        device: where the models run (default: `cuda` when available, else `cpu`).
    """
    path = Path(record)
    run = load_record(path)
    if run.weights is None:
        raise UnlearnBenchError(f"result record {path} has no 'weights'; analyses need a record written by fit, test or continual")
    scenario = scenario_of(run, data_root)
    pretrained = Pretrained(arch=run.pretrained.arch, recipe=run.pretrained.recipe, seed=run.pretrained.seed, checkpoint=run.pretrained.checkpoint)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    original = runner.obtain_original(scenario, pretrained, progress=False).to(device).eval()
    model = build_model(pretrained.arch, scenario.info, 0)
    load_checkpoint(run.weights, model)
    model = model.to(device).eval()
    folder = path.with_name(path.stem + "-figures")
    figures = [*write_run_figures(run.method, model, original, scenario, folder, seed),
               tsne_figure(original, scenario, folder / "tsne_before.png", method="before unlearning", seed=seed)]
    for figure in figures:
        print(figure)
    return figures
