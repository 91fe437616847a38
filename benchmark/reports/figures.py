"""PNG figures of the analyses in `benchmark.metrics.representations`, one function per kind, each returning the file's path.

Drawn on matplotlib's Agg canvas through the object API (no pyplot, no global state). Every figure has axis
labels and a title naming the method and the split; the title is also stored in the PNG's `Title` text chunk.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from benchmark.metrics.representations import pattern_score

ArrayLike = torch.Tensor | np.ndarray | Sequence[float]


def _array(values: ArrayLike) -> np.ndarray:
    return np.asarray(torch.as_tensor(values).detach().cpu(), dtype=float)


def _figure(width: float = 6.4, height: float = 4.8) -> tuple[Figure, Axes]:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _save(figure: Figure, ax: Axes | None, path: str | Path, what: str, method: str, split: str) -> Path:
    """Title the axes (the figure, when `ax` is None) and write the PNG with the title in its `Title` chunk."""
    title = f"{what}: {method}, {split}"
    ax.set_title(title) if ax is not None else figure.suptitle(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120, metadata={"Title": title})
    return path


def _grouped_bars(ax: Axes, categories: Sequence[str], series: Mapping[str, Sequence[float]]) -> None:
    width = 0.8 / len(series)
    positions = np.arange(len(categories))
    for i, (label, values) in enumerate(series.items()):
        ax.bar(positions + (i - (len(series) - 1) / 2) * width, values, width, label=label)
    ax.set_xticks(positions, categories, rotation=90 if max(map(len, categories), default=0) > 3 else 0)
    ax.legend()


def _class_names(num_classes: int, class_names: Sequence[str] | None) -> list[str]:
    return list(class_names) if class_names is not None else [str(c) for c in range(num_classes)]


def plot_weight_distance(
    distances: Mapping[str, float], path: str | Path, *, method: str, split: str, retrain: Mapping[str, float] | None = None
) -> Path:
    """Bars of `weight_distance(model, original)` per layer on a log scale, beside Retrain's when given (seed 002 Fig. 4)."""
    layers = [name for name in distances if name != "total"]
    series = {f"{method} (total {distances['total']:.3g})": [distances[name] for name in layers]}
    if retrain is not None:
        series[f"Retrain (total {retrain['total']:.3g})"] = [retrain.get(name, math.nan) for name in layers]
    figure, ax = _figure(width=max(6.4, 1.5 + 0.3 * len(layers)))
    _grouped_bars(ax, layers, series)
    if any(v > 0 for values in series.values() for v in values):
        ax.set_yscale("log")
    ax.set_xlabel("layer")
    ax.set_ylabel("L2 distance to the original weights")
    return _save(figure, ax, path, "Layer-wise weight distance", method, split)


def plot_prediction_distribution(
    distribution: ArrayLike,
    path: str | Path,
    *,
    method: str,
    split: str,
    class_names: Sequence[str] | None = None,
    retrain: ArrayLike | None = None,
) -> Path:
    """Bars of the fraction of samples predicted as each class (seed 002 Fig. 2), beside Retrain's (Fig. 3) when given."""
    series = {method: _array(distribution)}
    if retrain is not None:
        series["Retrain"] = _array(retrain)
    figure, ax = _figure()
    _grouped_bars(ax, _class_names(len(series[method]), class_names), series)
    ax.set_ylim(0, 1)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("fraction of samples")
    return _save(figure, ax, path, "Prediction distribution", method, split)


def plot_confusion(
    confusion: ArrayLike, path: str | Path, *, method: str, split: str, class_names: Sequence[str] | None = None
) -> Path:
    """Heat map of `label_confusion` counts, pre-unlearning label on Y, post-unlearning on X (seed 000 Fig. 2),
    with `pattern_score` in the title."""
    counts = _array(confusion)
    names = _class_names(len(counts), class_names)
    figure, ax = _figure(6.4, 5.6)
    image = ax.imshow(counts, cmap="Blues")
    figure.colorbar(image, ax=ax, label="samples")
    ticks = np.arange(len(names))
    ax.set_xticks(ticks, names, rotation=90 if max(map(len, names)) > 3 else 0)
    ax.set_yticks(ticks, names)
    if len(names) <= 20:
        for (row, col), count in np.ndenumerate(counts):
            if count:
                ax.text(col, row, f"{count:.0f}", ha="center", va="center", fontsize=7, color="white" if count > counts.max() / 2 else "black")
    ax.set_xlabel(f"post-unlearning label ({method})")
    ax.set_ylabel("pre-unlearning label (original)")
    return _save(figure, ax, path, f"Label confusion (pattern {pattern_score(torch.as_tensor(counts)):.3f})", method, split)


def plot_cka(
    cka: ArrayLike,
    path: str | Path,
    *,
    method: str,
    split: str,
    layers_a: Sequence[str] | None = None,
    layers_b: Sequence[str] | None = None,
) -> Path:
    """Heat map of `layerwise_cka(original, unlearned)`: original's layers on X, the unlearned model's on Y,
    brighter = more similar (seed 000 Fig. 4)."""
    values = _array(cka)
    layers_a = list(layers_a) if layers_a is not None else [str(i) for i in range(values.shape[0])]
    layers_b = list(layers_b) if layers_b is not None else [str(i) for i in range(values.shape[1])]
    figure, ax = _figure(max(6.4, 2.5 + 0.3 * len(layers_a)), max(5.6, 2.0 + 0.3 * len(layers_b)))
    image = ax.imshow(values.T, origin="lower", vmin=0, vmax=1, cmap="magma", aspect="auto")
    figure.colorbar(image, ax=ax, label="linear CKA")
    ax.set_xticks(np.arange(len(layers_a)), layers_a, rotation=90)
    ax.set_yticks(np.arange(len(layers_b)), layers_b)
    ax.set_xlabel("layer of the original model (before unlearning)")
    ax.set_ylabel(f"layer of {method} (after unlearning)")
    return _save(figure, ax, path, "Layer-wise linear CKA", method, split)


def plot_tsne(
    embedding: ArrayLike,
    labels: ArrayLike,
    path: str | Path,
    *,
    method: str,
    split: str,
    forget_mask: ArrayLike | None = None,
    class_names: Sequence[str] | None = None,
) -> Path:
    """Scatter of a `tsne_embedding`, coloured by true label; forget samples as triangles, the others as dots
    (seed 000 Fig. 3)."""
    points, classes = _array(embedding), _array(labels).astype(int)
    forget = _array(forget_mask).astype(bool) if forget_mask is not None else np.zeros(len(points), dtype=bool)
    names = _class_names(max(classes.max(initial=0) + 1, len(class_names or ())), class_names)
    colormap = "tab10" if len(names) <= 10 else "tab20"
    figure, ax = _figure(7.2, 5.6)
    style = {"cmap": colormap, "vmin": -0.5, "vmax": len(names) - 0.5}
    ax.scatter(*points[~forget].T, c=classes[~forget], marker="o", s=12, alpha=0.7, **style)
    image = ax.scatter(*points[forget].T, c=classes[forget], marker="^", s=36, edgecolors="black", linewidths=0.5, **style)
    handles = [Line2D([], [], marker="o", ls="", color="grey", label="retain / other"), Line2D([], [], marker="^", ls="", color="grey", label="forget")]
    if len(names) <= 20:
        cmap = image.get_cmap()
        handles += [Line2D([], [], marker="s", ls="", color=cmap(image.norm(c)), label=name) for c, name in enumerate(names)]
    else:
        figure.colorbar(image, ax=ax, label="true label")
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    ax.set_xlabel("t-SNE dimension 1")
    ax.set_ylabel("t-SNE dimension 2")
    return _save(figure, ax, path, "t-SNE of penultimate features", method, split)


def plot_gradcam(images: torch.Tensor, maps: Mapping[str, torch.Tensor], path: str | Path, *, method: str, split: str,
                 labels: Sequence[str] | None = None) -> Path:
    """A grid of images (first row) and each model's Grad-CAM map over them (a row per model; seed 002 Fig. 5)."""
    n = len(images)
    figure = Figure(figsize=(1.6 * n + 1.2, 1.6 * (len(maps) + 1)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(maps) + 1, n, squeeze=False)
    pictures = _array(images.permute(0, 2, 3, 1) if images.shape[1] == 3 else images[:, 0])
    for j in range(n):
        axes[0][j].imshow(pictures[j], cmap=None if images.shape[1] == 3 else "gray")
        if labels is not None:
            axes[0][j].set_title(labels[j], fontsize=8)
        for i, heat in enumerate(maps.values(), start=1):
            axes[i][j].imshow(pictures[j], cmap=None if images.shape[1] == 3 else "gray")
            axes[i][j].imshow(_array(heat[j]), cmap="jet", alpha=0.5, vmin=0, vmax=1)
    for i, name in enumerate(["image", *maps]):
        axes[i][0].set_ylabel(name, fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return _save(figure, None, path, "Grad-CAM", method, split)


def plot_curves(panels: Mapping[str, Mapping[str, Sequence[Sequence[float]]]], path: str | Path, *, title: str, ylabel: str = "accuracy (%)") -> Path:
    """Per-epoch curves, a panel each (e.g. a forgotten class set and a split), a line per row: the mean over its runs
    (one curve each, epoch 0 = before the first epoch) with a ± std band (seed 003 Figs. 2, 4, 5); a row of one-point
    curves (a model that is not trained further, or a reference's final value) is a dashed horizontal line."""
    columns = min(len(panels), 4)
    rows = math.ceil(len(panels) / columns)
    figure = Figure(figsize=(4.2 * columns, 3.4 * rows + 0.6), layout="constrained")
    FigureCanvasAgg(figure)
    axes = list(figure.subplots(rows, columns, squeeze=False).flat)
    for ax, (panel, lines) in zip(axes, panels.items()):
        for index, (label, runs) in enumerate(lines.items()):
            length = min(map(len, runs))
            values = np.stack([_array(run[:length]) for run in runs])
            mean, std = values.mean(0), values.std(0)
            color = f"C{index % 10}"
            if length == 1:
                ax.axhline(mean[0], color=color, linestyle="--", label=label)
                continue
            epochs = np.arange(length)
            ax.plot(epochs, mean, color=color, marker="o", markersize=3, label=label)
            ax.fill_between(epochs, mean - std, mean + std, color=color, alpha=0.2)
        ax.set_title(panel, fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4), fontsize=8)
    return _save(figure, None, path, "curves", title, "mean ± std over seeds")
