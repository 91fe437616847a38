"""Every figure is a readable PNG: title naming method and split (also in the PNG's metadata), axis labels."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

from benchmark.reports import figures

METHOD, SPLIT = "NegGrad", "forget"
LAYERS = ["backbone.0", "backbone.2", "head"]


def draw(kind: str, path: Path) -> Path:
    generator = np.random.default_rng(0)
    common = {"method": METHOD, "split": SPLIT}
    calls: dict[str, Callable[[], Path]] = {
        "weight_distance": lambda: figures.plot_weight_distance(
            {"backbone.0": 0.5, "backbone.2": 2.0, "head": 1.0, "total": 2.3}, path, retrain={"backbone.0": 0.7, "backbone.2": 1.5, "head": 1.2, "total": 2.0}, **common
        ),
        "prediction_distribution": lambda: figures.plot_prediction_distribution(torch.full((10,), 0.1), path, retrain=generator.dirichlet(np.ones(10)), **common),
        "confusion": lambda: figures.plot_confusion(torch.randint(0, 20, (10, 10)), path, **common),
        "cka": lambda: figures.plot_cka(torch.rand(3, 3), path, layers_a=LAYERS, layers_b=LAYERS, **common),
        "tsne": lambda: figures.plot_tsne(generator.normal(size=(60, 2)), np.arange(60) % 10, path, forget_mask=np.arange(60) < 12, **common),
    }
    return calls[kind]()


@pytest.mark.parametrize("kind", ["weight_distance", "prediction_distribution", "confusion", "cka", "tsne"])
def test_figure_is_a_titled_png_with_axis_labels(kind: str, tmp_path: Path, monkeypatch) -> None:
    drawn: list[Figure] = []
    save = figures._save
    monkeypatch.setattr(figures, "_save", lambda figure, *args: drawn.append(figure) or save(figure, *args))
    path = draw(kind, tmp_path / "sub" / f"{kind}.png")
    assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    with Image.open(path) as image:
        title = image.text["Title"]
        assert image.size[0] > 300 and image.size[1] > 300
    assert METHOD in title and SPLIT in title
    ax = drawn[0].axes[0]
    assert ax.get_title() == title and ax.get_xlabel() and ax.get_ylabel()


@pytest.mark.filterwarnings("error")
def test_weight_distance_of_an_unchanged_model_draws_without_warnings(tmp_path: Path) -> None:
    path = figures.plot_weight_distance({"head": 0.0, "total": 0.0}, tmp_path / "zero.png", method="Original", split="class 0")
    assert path.stat().st_size > 0


def test_gradcam_figure_is_a_titled_png_with_a_row_per_model(tmp_path: Path) -> None:
    images, maps = torch.rand(4, 1, 8, 8), {"Original": torch.rand(4, 8, 8), METHOD: torch.rand(4, 8, 8)}
    path = figures.plot_gradcam(images, maps, tmp_path / "gradcam.png", method=METHOD, split="test_forget", labels=list("abcd"))
    with Image.open(path) as image:
        assert METHOD in image.text["Title"] and "Grad-CAM" in image.text["Title"] and image.size[1] > 300
