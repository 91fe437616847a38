"""Weight distance, prediction patterns, CKA, feature norms and t-SNE against direct computations."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from sklearn.metrics import confusion_matrix
from torch.utils.data import DataLoader

from benchmark.metrics.representations import (
    default_cka_layers,
    feature_norm,
    gradcam,
    label_confusion,
    last_conv,
    layerwise_cka,
    linear_cka,
    pattern_score,
    penultimate_features,
    prediction_distribution,
    predictions,
    tsne_embedding,
    weight_distance,
)
from benchmark.models import Classifier, create_model
from datamodules.datasets import ImageTensorDataset, collate_batch

NUM_CLASSES = 10


def small_model(seed: int = 0, num_classes: int = NUM_CLASSES) -> Classifier:
    torch.manual_seed(seed)
    return create_model("small_cnn", num_classes=num_classes, in_chans=1, image_size=8)


@pytest.fixture(scope="module")
def data() -> ImageTensorDataset:
    generator = torch.Generator().manual_seed(0)
    return ImageTensorDataset(torch.rand(90, 1, 8, 8, generator=generator), torch.randint(0, NUM_CLASSES, (90,), generator=generator))


def loader(dataset: ImageTensorDataset, batch_size: int = 32) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, collate_fn=collate_batch)


def test_weight_distance_to_itself_is_zero() -> None:
    model = small_model()
    distances = weight_distance(model, copy.deepcopy(model))
    assert {"backbone.0", "backbone.11", "head", "total"} <= distances.keys()
    assert all(value == 0.0 for value in distances.values())


def test_weight_distance_of_one_perturbed_layer() -> None:
    model, other = small_model(), small_model()
    with torch.no_grad():
        other.head.weight.add_(0.1 * torch.randn_like(other.head.weight))
    distances = weight_distance(other, model)
    expected = torch.dist(other.head.weight, model.head.weight).item()
    assert distances["head"] == pytest.approx(expected, rel=1e-6)
    assert distances["total"] == pytest.approx(expected, rel=1e-6)
    assert all(value == 0.0 for name, value in distances.items() if name not in ("head", "total"))
    with pytest.raises(ValueError, match="same parameter"):
        weight_distance(model, small_model(num_classes=3))


def test_prediction_distribution_matches_argmax(data) -> None:
    model = small_model()
    model.train()
    distribution = prediction_distribution(model, loader(data), NUM_CLASSES)
    with torch.no_grad():
        expected = torch.bincount(model.eval()(data.images).argmax(1), minlength=NUM_CLASSES).double() / len(data)
    torch.testing.assert_close(distribution, expected)
    assert distribution.sum().item() == pytest.approx(1.0)
    model.train()
    predictions(model, loader(data))
    assert model.training


def test_label_confusion_counts_pairs() -> None:
    generator = torch.Generator().manual_seed(0)
    pre, post = torch.randint(0, NUM_CLASSES, (500,), generator=generator), torch.randint(0, NUM_CLASSES, (500,), generator=generator)
    confusion = label_confusion(pre, post, NUM_CLASSES)
    assert confusion.sum().item() == 500
    np.testing.assert_array_equal(confusion.numpy(), confusion_matrix(pre, post, labels=range(NUM_CLASSES)))


def test_pattern_score_from_random_to_deterministic() -> None:
    generator = torch.Generator().manual_seed(0)
    pre, post = torch.randint(0, NUM_CLASSES, (20000,), generator=generator), torch.randint(0, NUM_CLASSES, (20000,), generator=generator)
    assert pattern_score(label_confusion(pre, post, NUM_CLASSES)) == pytest.approx(0.0, abs=0.01)
    permutation = torch.randperm(NUM_CLASSES, generator=generator)
    assert pattern_score(label_confusion(pre, permutation[pre], NUM_CLASSES)) == pytest.approx(1.0)
    one_class = torch.zeros(300, dtype=torch.long)
    assert pattern_score(label_confusion(one_class, torch.full((300,), 7), NUM_CLASSES)) == pytest.approx(1.0)
    assert pattern_score(label_confusion(one_class, torch.arange(300) % NUM_CLASSES, NUM_CLASSES)) == pytest.approx(0.0, abs=1e-9)


def direct_linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    x, y = x - x.mean(0), y - y.mean(0)
    return (torch.linalg.matrix_norm(y.T @ x) ** 2 / (torch.linalg.matrix_norm(x.T @ x) * torch.linalg.matrix_norm(y.T @ y))).item()


def test_linear_cka_properties() -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(50, 12, dtype=torch.float64, generator=generator)
    y = x[:, :5] @ torch.randn(5, 7, dtype=torch.float64, generator=generator) + 0.5 * torch.randn(50, 7, dtype=torch.float64, generator=generator)
    orthogonal, _ = torch.linalg.qr(torch.randn(12, 12, dtype=torch.float64, generator=generator))
    assert linear_cka(x, x) == pytest.approx(1.0)
    assert linear_cka(x, y) == pytest.approx(direct_linear_cka(x, y), rel=1e-9)
    assert 0.0 < linear_cka(x, y) < 1.0
    assert linear_cka(x @ orthogonal, y) == pytest.approx(linear_cka(x, y), rel=1e-9)
    assert linear_cka(3.7 * x + 2.0, y) == pytest.approx(linear_cka(x, y), rel=1e-9)
    with pytest.raises(ValueError, match="same samples"):
        linear_cka(x, y[:10])


def test_layerwise_cka_of_a_model_with_itself_and_a_changed_head(data) -> None:
    model = small_model()
    layers = default_cka_layers(model)
    assert layers[0] == "backbone.0" and layers[-1] == "head" and len(layers) == len(model.backbone) + 1
    cka = layerwise_cka(model, model, loader(data), max_samples=64)
    assert cka.shape == (len(layers), len(layers))
    torch.testing.assert_close(cka.diagonal(), torch.ones(len(layers), dtype=cka.dtype), atol=1e-6, rtol=0)
    changed = copy.deepcopy(model)
    torch.manual_seed(5)
    changed.head.reset_parameters()
    cka = layerwise_cka(model, changed, loader(data), layers=["backbone.11", "head"])
    assert cka.shape == (2, 2) and cka[0, 0].item() == pytest.approx(1.0) and cka[1, 1].item() < 0.99
    with pytest.raises(ValueError, match="no layers"):
        layerwise_cka(model, model, loader(data), layers=["nope"])


def test_feature_norm_and_features(data) -> None:
    model = small_model()
    with torch.no_grad():
        expected = model.eval().features(data.images).norm(dim=1).mean().item()
    assert feature_norm(model, loader(data)) == pytest.approx(expected, rel=1e-5)
    features, labels = penultimate_features(model, loader(data), max_samples=40)
    assert features.shape == (40, model.feature_dim)
    torch.testing.assert_close(labels, data.targets[:40])


def test_tsne_embedding_is_deterministic() -> None:
    features = torch.randn(40, 16, generator=torch.Generator().manual_seed(0))
    embedding = tsne_embedding(features, seed=0)
    assert embedding.shape == (40, 2) and np.isfinite(embedding).all()
    np.testing.assert_array_equal(embedding, tsne_embedding(features, seed=0))


def test_gradcam_equals_a_direct_computation(data) -> None:
    """Grad-CAM of class c: ReLU(Σ_k α_k A_k), α_k the spatial mean of ∂logit_c/∂A_k at the last convolution's output,
    bilinearly upsampled to the image and scaled to a peak of 1 per image."""
    model = small_model().eval()
    for module in model.modules():  # (the direct computation keeps the convolution's output unmodified)
        if isinstance(module, torch.nn.ReLU):
            module.inplace = False
    x, y = data.images[:6].float(), data.targets[:6]
    store = {}
    handle = last_conv(model).register_forward_hook(lambda module, inputs, output: store.update(a=output))
    logits = model(x)
    handle.remove()
    (grads,) = torch.autograd.grad(logits.gather(1, y[:, None]).sum(), store["a"])
    direct = torch.relu((grads.mean(dim=(2, 3), keepdim=True) * store["a"]).sum(1, keepdim=True))
    direct = torch.nn.functional.interpolate(direct, size=(8, 8), mode="bilinear")[:, 0].detach()
    direct = direct / direct.flatten(1).amax(1).clamp_min(1e-12)[:, None, None]
    maps = gradcam(small_model(), x, y)  # (the same weights, with the in-place ReLUs gradcam must see through)
    assert maps.shape == (6, 8, 8) and torch.allclose(maps, direct, atol=1e-5)
