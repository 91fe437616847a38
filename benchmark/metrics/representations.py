"""What an unlearned model looks like inside: weight distances, prediction patterns, CKA, feature norms, t-SNE.

Plain functions over a `Classifier` and a loader of `(x, y, *rest)` batches with pixels in [0, 1]; each cites the
figure or table it reproduces. Models are put in eval mode for the call and restored afterwards.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from sklearn.manifold import TSNE
from torch import nn
from torch.utils.data import DataLoader

from benchmark.models import Classifier


@contextmanager
def _evaluating(model: nn.Module) -> Iterator[nn.Module]:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _outputs(
    model: nn.Module, loader: DataLoader, fn: Callable[[torch.Tensor], torch.Tensor], max_samples: int | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """`(fn(x), y)` per batch, in eval mode without gradients, stopping after `max_samples` samples."""
    device, seen = _device(model), 0
    with _evaluating(model):
        for x, y, *_ in loader:
            if max_samples is not None:
                x, y = x[: max_samples - seen], y[: max_samples - seen]
            yield fn(x.to(device)), y
            seen += len(y)
            if max_samples is not None and seen >= max_samples:
                return


def predictions(model: nn.Module, loader: DataLoader) -> torch.Tensor:
    """Arg-max predicted label of every sample in `loader` (long tensor on the CPU)."""
    return torch.cat([p.cpu() for p, _ in _outputs(model, loader, lambda x: model(x).argmax(1))])


def weight_distance(model: nn.Module, reference: nn.Module) -> dict[str, float]:
    """Layer-wise L2 distance ||θ_l − θ_l^ref||_2 between parameters, plus `"total"` (the whole parameter vector).

    Seed 002 Fig. 4 ("layer-wise weight distance between the unlearned models and the original model", log
    scale) plots one value per layer; our reading of a layer is a module owning parameters (a convolution, a
    batch norm, the head), its weight and bias taken together. Keys are module names (`"backbone.0"`, `"head"`);
    buffers (batch-norm statistics, input normalisation) are not parameters and are left out, as in the authors'
    public notebook, which iterates over `named_parameters()`.
    """
    ours, theirs = dict(model.named_parameters()), dict(reference.named_parameters())
    if ours.keys() != theirs.keys() or any(p.shape != theirs[k].shape for k, p in ours.items()):
        raise ValueError("weight_distance needs two models with the same parameter names and shapes")
    squared: dict[str, float] = {}
    with torch.no_grad():
        for name, p in ours.items():
            layer = name.rpartition(".")[0] or name
            diff = (p.detach().double() - theirs[name].detach().to(p.device).double()).pow(2).sum().item()
            squared[layer] = squared.get(layer, 0.0) + diff
    return {**{layer: math.sqrt(s) for layer, s in squared.items()}, "total": math.sqrt(sum(squared.values()))}


def prediction_distribution(model: nn.Module, loader: DataLoader, num_classes: int) -> torch.Tensor:
    """Fraction of the samples in `loader` (the forget set) predicted as each class, [num_classes] summing to 1.

    Seed 002 Figs. 2-3 ("prediction distribution of the unlearned model on forget class of data").
    """
    counts = torch.bincount(predictions(model, loader), minlength=num_classes).double()
    return counts / counts.sum().clamp_min(1)


def label_confusion(pre_labels: torch.Tensor, post_labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Counts of (pre-unlearning label → post-unlearning label) pairs, [num_classes, num_classes], rows = pre.

    Seed 000 Fig. 2: "confusion matrices of (pre-unlearning label, post-unlearning label) pairs from D_f", the
    labels being the original and the unlearned model's predictions (`predictions(model, forget_loader)`).
    """
    pre, post = torch.as_tensor(pre_labels).long().flatten(), torch.as_tensor(post_labels).long().flatten()
    if pre.shape != post.shape:
        raise ValueError(f"need as many pre- as post-unlearning labels, got {len(pre)} and {len(post)}")
    return torch.bincount(pre * num_classes + post, minlength=num_classes**2).view(num_classes, num_classes)


def pattern_score(confusion: torch.Tensor) -> float:
    """Streisand-effect pattern of a `label_confusion` matrix: 1 − H(post | pre) / log C, in [0, 1].

    How predictable the post-unlearning label is from the pre-unlearning label: 0 when, for every pre label,
    the predictions spread uniformly over the C classes (seed 002 Fig. 2's "randomized response"), 1 when the
    pre label determines the post label (a "retainer" label, seed 000 Fig. 2; "repeatedly predicting a single
    retain class", seed 002 §V-A). Our choice over mutual information or Cramér's V: those measure only the
    dependence between pre and post, which is undefined or 0 when all forget samples share one pre label (class
    forgetting), even if they all land in one class. Compare with Retrain's value: forgetting a class leaves
    C − 1 possible labels, so the floor is 1 − log(C − 1) / log C (0.046 for C = 10).
    """
    counts = confusion.double()
    n, num_classes = counts.sum(), counts.shape[1]
    if n == 0 or num_classes < 2:
        return float("nan")
    rows = counts.sum(1, keepdim=True)
    p = counts / rows.clamp_min(1)
    conditional_entropy = -(counts / n * torch.where(p > 0, p.log(), torch.zeros_like(p))).sum()
    return float(1 - conditional_entropy / math.log(num_classes))


def _centered_gram(x: torch.Tensor) -> torch.Tensor:
    x = x.flatten(1)
    x = x - x.mean(0, keepdim=True)
    return (x @ x.T).double().cpu()


def _cka_from_grams(k: torch.Tensor, l: torch.Tensor) -> float:  # noqa: E741
    return float((k * l).sum() / (k.norm() * l.norm()))


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA of Kornblith et al. (ICML 2019, Eq. 5): ||Yᵀ X||²_F / (||Xᵀ X||_F ||Yᵀ Y||_F) on centered [n, d] features.

    Computed as ⟨K, L⟩_F / (||K||_F ||L||_F) with the centered Gram matrices K = X Xᵀ, L = Y Yᵀ (the same value,
    cheap when d ≫ n). NaN when x or y is constant over the samples.
    """
    if len(x) != len(y):
        raise ValueError(f"need the same samples in x and y, got {len(x)} and {len(y)}")
    return _cka_from_grams(_centered_gram(x), _centered_gram(y))


def default_cka_layers(model: Classifier) -> list[str]:
    """The top-level children of `model.backbone`, then the head."""
    return [f"backbone.{name}" for name, _ in model.backbone.named_children()] + ["head"]


def _layer_grams(model: nn.Module, inputs: torch.Tensor, layers: Sequence[str]) -> list[torch.Tensor]:
    modules = dict(model.named_modules())
    unknown = [name for name in layers if name not in modules]
    if unknown:
        raise ValueError(f"no layers {unknown} in {type(model).__name__}")
    grams: dict[str, torch.Tensor] = {}

    def hook(name: str):
        def record(module: nn.Module, args, output) -> None:
            grams[name] = _centered_gram(output[0] if isinstance(output, (tuple, list)) else output)

        return record

    handles = [modules[name].register_forward_hook(hook(name)) for name in layers]
    try:
        with _evaluating(model):
            model(inputs.to(_device(model)))
    finally:
        for handle in handles:
            handle.remove()
    missing = [name for name in layers if name not in grams]
    if missing:
        raise ValueError(f"layers {missing} were not called in the forward pass")
    return [grams[name] for name in layers]


def layerwise_cka(
    model_a: Classifier,
    model_b: Classifier,
    loader: DataLoader,
    layers: Sequence[str] | None = None,
    *,
    max_samples: int = 512,
) -> torch.Tensor:
    """Linear CKA between every layer of `model_a` (rows) and of `model_b` (columns), [La, Lb].

    Seed 000 Fig. 4: "layer-wise CKA correlations on D_f and D_r between representations before (X-axis) and
    after (Y-axis) unlearning", with CKA of Kornblith et al. (2019). Activations are the flattened outputs of
    `layers` (module names; default `default_cka_layers` of each model), caught by forward hooks (the last call
    of a module that runs twice) on the first `max_samples` samples of `loader` (our cap), which go through each
    model in one batch so that only the n × n Gram matrices are kept.
    """
    inputs = torch.cat([x for x, _ in _outputs(model_a, loader, lambda x: x, max_samples)])
    grams_a = _layer_grams(model_a, inputs, layers or default_cka_layers(model_a))
    grams_b = _layer_grams(model_b, inputs, layers or default_cka_layers(model_b))
    return torch.tensor([[_cka_from_grams(k, l) for l in grams_b] for k in grams_a])  # noqa: E741


def penultimate_features(
    model: Classifier, loader: DataLoader, max_samples: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """`(model.features(x), y)` over `loader` (the head's input), on the CPU, at most `max_samples` samples."""
    batches = [(f.cpu(), y) for f, y in _outputs(model, loader, model.features, max_samples)]
    return torch.cat([f for f, _ in batches]), torch.cat([y for _, y in batches])


def feature_norm(model: Classifier, loader: DataLoader) -> float:
    """Mean L2 norm of the penultimate features over `loader` (seed 004 Table 2, "averaged L2 norm of the
    penultimate features" on D_r and D_e: small on forgotten samples is the "watermark" of §5.2)."""
    total, count = 0.0, 0
    for features, _ in _outputs(model, loader, model.features):
        total += features.flatten(1).norm(dim=1).sum().item()
        count += len(features)
    return total / count if count else float("nan")


def tsne_embedding(features: torch.Tensor | np.ndarray, seed: int = 0, *, perplexity: float = 30.0) -> np.ndarray:
    """2-d t-SNE (van der Maaten & Hinton 2008, scikit-learn) of [n, d] features, as in seed 000 Fig. 3.

    PCA initialisation and `random_state=seed` make it deterministic; the perplexity is lowered to (n − 1) / 3
    for small n (scikit-learn needs it below n).
    """
    x = np.asarray(torch.as_tensor(features).flatten(1).cpu(), dtype=np.float32)
    if len(x) < 4:
        raise ValueError(f"t-SNE needs at least 4 samples, got {len(x)}")
    tsne = TSNE(n_components=2, perplexity=min(perplexity, (len(x) - 1) / 3), init="pca", random_state=seed)
    return tsne.fit_transform(x)


def last_conv(model: nn.Module) -> nn.Module:
    """The model's last `nn.Conv2d` (Grad-CAM's usual layer: the last spatial feature map)."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(f"{type(model).__name__} has no convolution layer for Grad-CAM")
    return convs[-1]


def gradcam(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Grad-CAM maps (Selvaraju et al. 2017; seed 002 Fig. 5) of `target` classes for images `x`, from `model`'s last
    convolution, upsampled to the images' size and scaled to [0, 1] per image: captum's `LayerGradCam` (ReLU of the
    gradient-weighted sum of the layer's channels) and `LayerAttribution.interpolate`. [N, H, W] on the CPU."""
    from captum.attr import LayerAttribution, LayerGradCam  # (imported here: only figures need it)

    with torch.inference_mode(False), torch.enable_grad():  # (figures are drawn inside Lightning's test loop)
        model = copy.deepcopy(model).eval().requires_grad_(True)  # (a frozen original builds no graph to the layer)
        for module in model.modules():
            if getattr(module, "inplace", False):  # (an in-place activation would overwrite the convolution's output captum keeps)
                module.inplace = False
        device = _device(model)
        x, target = x.clone().to(device), target.clone().to(device)
        maps = LayerGradCam(model, last_conv(model)).attribute(x, target=target, relu_attributions=True)
        maps = LayerAttribution.interpolate(maps, tuple(x.shape[-2:]), interpolate_mode="bilinear")[:, 0].detach().cpu()
    peak = maps.flatten(1).amax(1).clamp_min(1e-12)
    return maps / peak[:, None, None]
