"""The whole-model measures of a run (relearn time, representations, U-LiRA, volatility) and its figures.

They need the whole unlearned model and whole splits (not per batch), and some train models (relearning,
U-LiRA's shadows): an audit of the run, computed after `trainer.test` by the pipeline's `RecordWriter`.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from benchmark.audits.relearn import relearn_time
from benchmark.audits.ulira import ulira_measures
from benchmark.metrics.accuracy import evaluate_accuracy
from benchmark.metrics.curves import curve_measures
from benchmark.metrics.evaluator import Evaluation
from benchmark.metrics.representations import (
    feature_norm,
    gradcam,
    label_confusion,
    layerwise_cka,
    pattern_score,
    penultimate_features,
    prediction_distribution,
    predictions,
    tsne_embedding,
    weight_distance,
)
from benchmark.models.pretraining import RECIPES
from benchmark.reports.figures import (
    plot_cka,
    plot_confusion,
    plot_gradcam,
    plot_prediction_distribution,
    plot_tsne,
    plot_weight_distance,
)


def model_measure_names(evaluation: Evaluation) -> list[str]:
    """The measures `model_measures` always reports for `evaluation` (besides volatility and the distance to Retrain,
    which need curves or a Retrain run)."""
    return [*(["rt/epochs", "rt/reached"] if evaluation.relearn else []),
            *(["dist/weights", "forget/feature_norm", "retain/feature_norm", "forget/pattern"] if evaluation.representations or evaluation.figures else []),
            *(["mia/ulira_acc", "mia/ulira_auc"] if evaluation.ulira else []),
            *(["mia/neurips_f", "mia/neurips_score", "mia/neurips_models"] if evaluation.neurips else [])]


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
        results.update(curve_measures(method.curves))
    if evaluation.relearn:
        regained = forget if evaluation.relearn_split == "forget" else scenario.eval_loader(evaluation.relearn_split, shard=False)
        target = evaluate_accuracy(original, regained, method.num_classes, device)
        epochs, reached = relearn_time(model, scenario.train_set, regained, target, method.num_classes, samples=evaluation.relearn_samples,
                                       cap=evaluation.relearn_cap, seed=evaluation.seed, device=device, **relearn_optimizer(method, scenario, evaluation))
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
    if evaluation.ulira or evaluation.neurips:
        results.update(ulira_measures(method, scenario, evaluation.ulira_shadows, evaluation.seed, ulira=evaluation.ulira, challenge=evaluation.neurips))
    return results


def relearn_optimizer(method, scenario, evaluation: Evaluation) -> dict:
    """The relearning's optimizer settings: the evaluation's, or (`recipe`) the original's pretraining recipe's."""
    if evaluation.relearn_optimizer != "recipe":
        return {"optimizer": evaluation.relearn_optimizer, "lr": evaluation.relearn_lr}
    recipe = RECIPES.get(method.pretrained.recipe_name(scenario.info.name))
    return {"optimizer": recipe.optimizer, "lr": recipe.lr, "momentum": recipe.momentum, "weight_decay": recipe.weight_decay}


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
        *([gradcam_figure(name, model, original, scenario, folder / "gradcam_test_forget.png", retrain)] if "test_forget" in scenario.splits else []),
    ]


GRADCAM_IMAGES = 8
"""Test images of the forgotten classes in a Grad-CAM figure."""


def gradcam_figure(name: str, model: nn.Module, original: nn.Module, scenario, path: Path, retrain: nn.Module | None = None) -> Path:
    """Grad-CAM of the first test images of the forgotten classes, for their true class, by the original, the unlearned
    model and Retrain when given (seed 002 Fig. 5)."""
    x, y, *_ = next(iter(scenario.eval_loader("test_forget", shard=False)))
    x, y = x[:GRADCAM_IMAGES], y[:GRADCAM_IMAGES]
    models = {"Original": original, name: model, **({"Retrain": retrain} if retrain is not None else {})}
    names = scenario.info.class_names
    return plot_gradcam(x, {label: gradcam(m, x, y) for label, m in models.items()}, path, method=name, split="test_forget",
                        labels=[names[int(c)] if names else str(int(c)) for c in y])


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
