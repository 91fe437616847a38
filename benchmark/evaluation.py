"""What `test` measures, and the module that measures it on every evaluation batch.

Streaming measures (accuracy per split, membership-inference attacks) are torchmetrics metrics fed by
`Evaluator.update(split, logits, labels, indices)`; their states synchronise across processes and
per-sample states are put back in sample order, so DDP gives the numbers of a single process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn
from torchmetrics import SumMetric

from benchmark.curves import volatility
from benchmark.figures import plot_cka, plot_confusion, plot_prediction_distribution, plot_tsne, plot_weight_distance
from benchmark.metrics import evaluate_accuracy, split_metrics
from benchmark.mia import MIA_METRICS
from benchmark.relearn import relearn_time
from benchmark.representations import (
    feature_norm,
    label_confusion,
    layerwise_cka,
    pattern_score,
    penultimate_features,
    prediction_distribution,
    predictions,
    tsne_embedding,
    weight_distance,
)


@dataclass
class Evaluation:
    """Which measures `fit` and `test` report besides the accuracy on every split.

    Args:
        mia: the membership-inference attacks `mia/svm_asr`, `mia/efficacy`, `mia/loss_auc`.
        ulira: U-LiRA (`mia/ulira_acc`, `mia/ulira_auc`, `benchmark/ulira.py`): trains 2·shadows + 1 models
            from scratch (once per request, cached) and runs the method on `ulira_shadows` of them.
        ulira_shadows: unlearned and retrained shadow models each (Hayes et al. use many more; 16 is
            feasible for `digits` on a CPU).
        relearn: relearn time `rt/epochs` (and `rt/reached`), seed 002 §V-A.
        relearn_cap: most relearning epochs ("> cap" when not reached).
        relearn_samples: random training samples per relearning epoch.
        relearn_optimizer: optimizer of the relearning.
        relearn_lr: its learning rate.
        representations: `dist/weights` (L2 distance to the original's weights; `dist/weights_retrain` to
            Retrain's, when a Retrain run of the same request and seed is saved), `forget/feature_norm`,
            `retain/feature_norm` (penultimate features) and `forget/pattern` (Streisand pattern score).
        curves: accuracy on forget / retain / test before unlearning and after every epoch (in the
            record's `curves`, not counted in the cost) and seed 003's `{split}/volatility` from them.
        figures: PNG figures next to the result record (weight distance, prediction distribution,
            confusion, layer-wise CKA on forget and retain, t-SNE).
        mia_samples: most members and most non-members each SVM attack is fit on (drawn with `seed`); None: all
            of them, balanced (the attacks' definitions). The suites cap it to bound an RBF SVM's quadratic cost.
        seed: seed of the attacks' subsampling and of the relearning.
    """

    mia: bool = True
    mia_samples: int | None = None
    ulira: bool = False
    ulira_shadows: int = 16
    relearn: bool = False
    relearn_cap: int = 100
    relearn_samples: int = 500
    relearn_optimizer: Literal["adam", "sgd"] = "adam"
    relearn_lr: float = 1e-3
    representations: bool = False
    curves: bool = False
    figures: bool = False
    seed: int = 0


class Evaluator(nn.Module):
    """Accuracy per split plus the per-sample metrics `evaluation` asks for.

    A model whose outputs are not finite (e.g. diverged gradient ascent) gets NaN for every measure of
    the splits where that happens — never an accuracy computed from NaN logits.
    """

    def __init__(self, splits: list[str], num_classes: int, evaluation: Evaluation | None = None) -> None:
        super().__init__()
        evaluation = evaluation or Evaluation()
        self.splits, self.evaluation = list(splits), evaluation
        """The splits in the order of the evaluation loaders; the measures asked for."""
        self.accuracy = split_metrics(splits, num_classes)
        self.nonfinite = nn.ModuleDict({split: SumMetric() for split in splits})
        wanted = MIA_METRICS if evaluation.mia else {}
        self.sample_metrics = nn.ModuleDict({name.replace("/", "__"): metric(seed=evaluation.seed, max_samples=evaluation.mia_samples) for name, metric in wanted.items()})

    def update(self, split: str, logits: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor) -> None:
        self.accuracy[split].update(logits, labels)
        self.nonfinite[split].update((~torch.isfinite(logits).all(dim=1)).sum())
        for metric in self.sample_metrics.values():
            metric.update(split, logits, labels, indices)

    def compute(self) -> dict[str, float]:
        """All values by their public names; every process must call it (it synchronises)."""
        broken = {split for split, count in self.nonfinite.items() if count.compute() > 0}
        results: dict[str, float] = {}
        for split, collection in self.accuracy.items():
            results.update({name: float(value) if split not in broken else math.nan for name, value in collection.compute().items()})
        for key, metric in self.sample_metrics.items():
            results.update({name: float(value) for name, value in metric.compute().items()} if not broken else {key.replace("__", "/"): math.nan})
        return results

    def reset(self) -> None:
        for metric in [*self.accuracy.values(), *self.nonfinite.values(), *self.sample_metrics.values()]:
            metric.reset()


def model_measure_names(evaluation: Evaluation) -> list[str]:
    """The measures `model_measures` always reports for `evaluation` (besides volatility and the distance to Retrain,
    which need curves or a Retrain run)."""
    return [*(["rt/epochs", "rt/reached"] if evaluation.relearn else []),
            *(["dist/weights", "forget/feature_norm", "retain/feature_norm", "forget/pattern"] if evaluation.representations or evaluation.figures else []),
            *(["mia/ulira_acc", "mia/ulira_auc"] if evaluation.ulira else [])]


def model_measures(method, scenario, evaluation: Evaluation, retrain: nn.Module | None = None) -> dict[str, float]:
    """Measures of the whole unlearned model (not per batch), computed by every process on whole splits
    (`retrain`: the Retrain model of the same request and seed, for the distances to it)."""
    model, original, device = method.model, method.original, method.device
    forget, retain = scenario.eval_loader("forget", shard=False), scenario.eval_loader("retain", shard=False)
    results: dict[str, float] = {}
    broken = any(math.isnan(v) for k, v in method.results.items() if k.endswith("/acc")) or not all(torch.isfinite(p).all() for p in model.parameters())
    if broken:  # a model with non-finite outputs gets NaN, never a number measured from NaN logits
        return {name: math.nan for name in model_measure_names(evaluation)}
    if evaluation.curves and method.curves:
        results.update({name.replace("/acc", "/volatility"): volatility(curve) for name, curve in method.curves.items()})
    if evaluation.relearn:
        target = evaluate_accuracy(original, forget, method.num_classes, device)
        epochs, reached = relearn_time(model, scenario.train_set, forget, target, method.num_classes, samples=evaluation.relearn_samples,
                                       cap=evaluation.relearn_cap, optimizer=evaluation.relearn_optimizer, lr=evaluation.relearn_lr,
                                       seed=evaluation.seed, device=device)
        results.update({"rt/epochs": float(epochs), "rt/reached": float(reached)})
    if evaluation.representations or evaluation.figures:
        confusion = label_confusion(predictions(original, forget), predictions(model, forget), method.num_classes)
        results.update({
            "dist/weights": weight_distance(model, original)["total"],
            "forget/feature_norm": feature_norm(model, forget),
            "retain/feature_norm": feature_norm(model, retain),
            "forget/pattern": pattern_score(confusion),
        })
        if retrain is not None:
            results["dist/weights_retrain"] = weight_distance(model, retrain)["total"]
    if evaluation.ulira:
        from benchmark.ulira import ulira_measures

        results.update(ulira_measures(method, scenario, evaluation.ulira_shadows, evaluation.seed))
    return results


def write_figures(method, scenario, folder: Path, seed: int = 0, retrain: nn.Module | None = None) -> list[Path]:
    """The figures of seed 000 Figs. 2-4 and seed 002 Figs. 2-4 for this run, as PNG files in `folder`."""
    return write_run_figures(type(method).__name__, method.model, method.original, scenario, folder, seed, retrain)


def write_run_figures(name: str, model: nn.Module, original: nn.Module, scenario, folder: Path, seed: int = 0, retrain: nn.Module | None = None) -> list[Path]:
    """`write_figures` for a model unlearned from `original` by the method called `name`."""
    forget, retain = scenario.eval_loader("forget", shard=False), scenario.eval_loader("retain", shard=False)
    classes, num_classes = scenario.info.class_names, scenario.info.num_classes
    folder.mkdir(parents=True, exist_ok=True)
    confusion = label_confusion(predictions(original, forget), predictions(model, forget), num_classes)
    return [
        plot_weight_distance(weight_distance(model, original), folder / "weight_distance.png", method=name, split="all layers",
                             retrain=weight_distance(retrain, original) if retrain is not None else None),
        plot_prediction_distribution(prediction_distribution(model, forget, num_classes), folder / "prediction_distribution.png", method=name, split="forget", class_names=classes,
                                     retrain=prediction_distribution(retrain, forget, num_classes) if retrain is not None else None),
        plot_confusion(confusion, folder / "confusion_forget.png", method=name, split="forget", class_names=classes),
        plot_cka(layerwise_cka(original, model, forget), folder / "cka_forget.png", method=name, split="forget"),
        plot_cka(layerwise_cka(original, model, retain), folder / "cka_retain.png", method=name, split="retain"),
        tsne_figure(model, scenario, folder / "tsne.png", method=name, seed=seed),
    ]


TSNE_SAMPLES = 500
"""Samples of D_f and of D_r in a t-SNE plot."""


def tsne_figure(model: nn.Module, scenario, path: Path, *, method: str, seed: int = 0) -> Path:
    """t-SNE of `model`'s penultimate features on D_f (triangles) and D_r (dots), coloured by true label (seed 000 Fig. 3)."""
    features_f, labels_f = penultimate_features(model, scenario.eval_loader("forget", shard=False), max_samples=TSNE_SAMPLES)
    features_r, labels_r = penultimate_features(model, scenario.eval_loader("retain", shard=False), max_samples=TSNE_SAMPLES)
    embedding = tsne_embedding(torch.cat([features_f, features_r]), seed=seed)
    is_forget = torch.cat([torch.ones(len(labels_f), dtype=torch.bool), torch.zeros(len(labels_r), dtype=torch.bool)])
    return plot_tsne(embedding, torch.cat([labels_f, labels_r]).numpy(), path, method=method, split="forget vs retain",
                     forget_mask=is_forget.numpy(), class_names=scenario.info.class_names)
