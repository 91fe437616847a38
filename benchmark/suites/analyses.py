"""Seed 000's qualitative analyses (§Qualitative Analysis, Figs. 2-4) over a suite's finished runs, as numbers per
row and k (mean ± std over the seeds), plus the figures of one run per row.

The paper reads its figures as three claims; each number below is our measurable reading of one of them:

| name | claim (seed 000 §Qualitative Analysis) | computation |
| --- | --- | --- |
| `forget/pattern` | Fig. 2: no label is used as a "retainer" for D_f | `pattern_score` of the (original's label, unlearned label) confusion over D_f: 1 − H(post ∣ pre) / log C |
| `cka/forget_early`, `cka/forget_last` | Fig. 4: on D_f the representations diverge only in the last layers | linear CKA (Kornblith et al. 2019) between the original's and the unlearned model's outputs of the same layer (`layerwise_cka`'s diagonal, first 512 samples): mean over the first half of the layers, and the last layer (the head) |
| `cka/retain_early`, `cka/retain_last` | Fig. 4: NEGGRAD also loses the high-level CKA on D_r, ADV keeps it | the same on D_r |
| `retain/silhouette` | Fig. 3: NEGGRAD distorts the class clusters, ADV keeps them | silhouette score (scikit-learn, Euclidean) of the penultimate features of the first 2,000 D_r samples, by true class |
| `forget/boundary` | Fig. 3: ADV moves D_f to the class boundaries | median over D_f of d(f, c_y) / min_{c ≠ y} d(f, c), f the penultimate features, c the class centroids of those 2,000 D_r samples: < 1 inside its own class, ≈ 1 on a boundary, > 1 inside another class |

BEFORE (Original) rows give the original's values (CKA and pattern 1 by definition).
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import replace
from pathlib import Path

import torch
from sklearn.metrics import silhouette_score
from torch import nn

from benchmark.audits.measures import tsne_figure, write_run_figures
from benchmark.core.errors import UnlearnBenchError
from benchmark.core.paths import atomic_write_bytes
from benchmark.core.record import load_record
from benchmark.experiment import runner
from benchmark.metrics.representations import (
    label_confusion,
    layerwise_cka,
    pattern_score,
    penultimate_features,
    predictions,
)
from benchmark.models.pretraining import build_model, load_checkpoint
from benchmark.suites.base import (
    original,
    records_variant,
    row_run,
    suite_dir,
    suite_variant,
    tables,
)

ANALYSIS_METRICS = ("forget/pattern", "cka/forget_early", "cka/forget_last", "cka/retain_early", "cka/retain_last",
                    "retain/silhouette", "forget/boundary")
FEATURE_SAMPLES = 2000
"""D_r samples of the silhouette and the class centroids."""


def analysis_measures(model: nn.Module, before: nn.Module, scenario) -> dict[str, float]:
    """The module docstring's numbers for `model` unlearned from `before` on `scenario`."""
    forget, retain = scenario.eval_loader("forget", shard=False), scenario.eval_loader("retain", shard=False)
    num_classes = scenario.info.num_classes
    measures = {"forget/pattern": pattern_score(label_confusion(predictions(before, forget), predictions(model, forget), num_classes))}
    for split, loader in (("forget", forget), ("retain", retain)):
        diagonal = layerwise_cka(before, model, loader).diagonal()
        measures[f"cka/{split}_early"] = float(diagonal[: len(diagonal) // 2].mean())
        measures[f"cka/{split}_last"] = float(diagonal[-1])
    features, labels = penultimate_features(model, retain, max_samples=FEATURE_SAMPLES)
    features = features.flatten(1).double()
    measures["retain/silhouette"] = float(silhouette_score(features.numpy(), labels.numpy()))
    centroids = torch.stack([features[labels == c].mean(0) if (labels == c).any() else torch.full_like(features[0], float("nan"))
                             for c in range(num_classes)])
    forget_features, forget_labels = penultimate_features(model, forget)
    distances = torch.cdist(forget_features.flatten(1).double(), centroids).nan_to_num(float("inf"))
    rows = torch.arange(len(forget_labels))
    own = distances[rows, forget_labels].clone()
    distances[rows, forget_labels] = float("inf")
    measures["forget/boundary"] = float((own / distances.min(1).values).median())
    return measures


def analyze_suite(name: str, dataset: str | None = None, seeds: list[int] | None = None, ks: list[int] | None = None,
                  arch: str | None = None, results_dir: str | None = None, out: str | None = None, figures: bool = True,
                  recipe: str | None = None) -> str:
    """The analyses of a suite's finished runs (`cli.py suite NAME` with the same grid first) as a Markdown table, and
    with `figures` the PNGs of `cli.py analyze` for every row's run at the first k and seed; returns the table's path."""
    suite, variant = suite_variant(name, dataset, seeds, ks, arch, recipe)
    if suite.k_cl:
        raise UnlearnBenchError(f"suite {name} is continual; analyze its steps one by one with `cli.py analyze RECORD`")
    folder, start = suite_dir(records_variant(suite, name, variant), results_dir), runner.obtain_original
    target = Path(out) if out else Path("leaderboard") / "suites" / f"{variant}-analyses.md"
    figure_root = target.with_suffix("").with_name(f"{target.stem}-figures")
    records, before = [], None
    for k in suite.ks:
        for seed in suite.seeds:
            scenario = None
            for row in suite.rows:
                method, scenario, pretrained = row_run(suite, row, k, seed, scenario)
                path = runner.method_run_path(method, scenario, pretrained, seed, str(folder))
                if not path.exists() or not path.with_suffix(".pt").exists():
                    raise UnlearnBenchError(f"no finished run of {row.label} at k={k}, seed {seed} ({path}); run `python cli.py suite {name}` "
                                            "with the same grid first")
                record = load_record(path)
                before = before or start(scenario, pretrained, progress=False).eval()  # (one original for every row, k and seed)
                model = build_model(pretrained.arch, scenario.info, 0)
                load_checkpoint(path.with_suffix(".pt"), model)
                records.append({**record.to_dict(), "metrics": analysis_measures(model.eval(), before, scenario), "row": row.label})
                if figures and (k, seed) == (suite.ks[0], suite.seeds[0]):
                    where = figure_root / f"k{k}-seed{seed}" / row.label.replace("+", "_")
                    if row.method == "Original":  # (its other figures compare the original with itself)
                        where.mkdir(parents=True, exist_ok=True)
                        tsne_figure(before, scenario, where / "tsne_before.png", method="before unlearning", seed=seed)
                    else:
                        write_run_figures(record.method, model, before, scenario, where, seed)
                print(f"{row.label} k={k} seed={seed} analysed", file=sys.stderr, flush=True)
    main, _ = tables(replace(suite, main_metrics=ANALYSIS_METRICS, companion_metrics=()), records)
    checkpoint = original(suite).checkpoint
    command = "python cli.py analyses " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if sys.argv[1:2] == ["analyses"] else f"python cli.py analyses {name}"
    text = (f"# Qualitative analyses: {suite.title}\n\n{suite.dataset}, {suite.arch} (original: "
            f"{Path(checkpoint).name if checkpoint else 'the local pretraining'}), seeds {list(suite.seeds)}; mean ± std over the seeds. What each "
            f"number is: `benchmark/suites/analyses.py`. Figures of the runs at k = {suite.ks[0]}, seed {suite.seeds[0]}: "
            f"`{figure_root.name}/`.\n\nProduced by `{command}` from the records of `python cli.py suite` with the same arguments.\n\n"
            f"```\n{main}\n```\n")
    atomic_write_bytes(target, text.encode())
    print(text)
    return str(target)
