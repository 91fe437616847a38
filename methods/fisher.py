"""Fisher: Fisher forgetting (Golatkar, Achille & Soatto, CVPR 2020), Gaussian weight noise shaped by the retain set's Fisher."""

from __future__ import annotations

import torch
from jsonargparse.typing import PositiveFloat, PositiveInt
from torch.utils.data import DataLoader

from datamodules.access import RETAIN_FULL, RETAIN_SUBSET, DataView
from methods.base import UnlearningMethod, register_method
from methods.blocks.fisher import FisherKind, NoiseRules, add_fisher_noise_, diagonal_fisher


@register_method
class Fisher(UnlearningMethod):
    """θ = θ₀ + √var ⊙ n, n ~ N(0, I), var = α / F_r, F_r the diagonal Fisher of the original on D_r (one shot).

    Golatkar et al. 2020 ("Eternal Sunshine of the Spotless Net", §4-5) scrub the weights with the noise of their
    optimal quadratic scrubbing, dropping its Newton step and taking the diagonal Fisher of D_r for the Hessian
    ("Fisher forgetting"): ŵ = w* + (λσ_h²)^{1/4} F^{-1/4} ε, as seed 003 quotes it (its eq. 2, FisherNoise). This is
    seed 002's Table II baseline "Fisher forgetting [9]" and seed 003's FisherNoise; neither gives hyperparameters
    (seed 003: "as in Golatkar et al."), so the procedure and defaults are the authors' notebook's
    (AdityaGolatkar/SelectiveForgetting, Forgetting.ipynb): the true Fisher over D_r, averaged over its images
    (cells 73-74), var = α · min(1/(F + 1e-8), 1e3) with α = 1e-6 and the rules of `NoiseRules` (cell 75), one
    draw (cells 77-78). Defaults: `configs/methods/Fisher/seed002.yaml`.

    Readings of what the sources leave open or disagree on:
    - the paper's noise has variance ∝ F^{-1/2}; the notebook's is α/F, which we follow;
    - the notebook takes as the last layer every tensor with `size(0) == K`; we take the `Classifier`'s head
      (`last_layer_names`): the same tensors unless another layer has K outputs;
    - as written in the notebook: the clamps bound 1/(F + 1e-8) before the factor α; the forgotten rows' variance
      1e-4 is multiplied by the last layer's ×10 after (so 1e-3); a convolution kernel's variance is averaged over
      its input channels only (dim 1), each kernel position keeping its own;
    - the class-row rule applies when the request forgets whole classes (`forget_classes`), never to instances;
    - the Fisher sees the D_r images without training augmentation, the model in evaluation mode (BatchNorm's
      running statistics, left unchanged), on every process over the same images (identical noise under DDP);
    - nothing trains: `num_epochs` is 0, all the work is in `prepare` and counted in the cost; the budget's
      `batch_size` is only the loader's batch while computing the Fisher (the result does not depend on it), its
      other fields are unused. `cost/fisher_samples` records how many D_r images the Fisher saw.
    """

    data_access = RETAIN_FULL
    train_splits = ()
    defaults = "configs/methods/Fisher/seed002.yaml"
    base_settings = ("budget",)
    one_shot = True

    def __init__(self, *, alpha: PositiveFloat = 1e-6, kind: FisherKind = "true", retain_samples: PositiveInt | None = None,
                 seed: int | None = None, noise: NoiseRules = NoiseRules(), **kwargs) -> None:
        """
        Args:
            alpha: α, the noise variance per unit of inverse Fisher (F averaged over the D_r images); the notebook's
                1e-6; SCRUB's re-implementation also uses 1e-7, and the Unlearn-Sparse authors advise about 1e-9
                when test accuracy collapses (their issue #5).
            kind: the `true` Fisher (expectation over the model's predictions, the notebook's) or the `empirical`
                one (the labelled class only).
            retain_samples: compute the Fisher on a seeded random subset of this many D_r images (the view's
                subset, drawn from the request) instead of all of D_r; null: all of D_r (the notebook's).
            seed: the noise's seed; null: the run's seed (`seed_everything`, read when `prepare` runs).
            noise: the rules that turn the Fisher into the noise variance (`NoiseRules`: clamps, ×10 scaling,
                the forgotten classes' rows).
        """
        super().__init__(**kwargs)
        self.alpha, self.kind, self.seed, self.noise = alpha, kind, seed, noise
        if retain_samples is not None:
            self.data_access, self.retain_subset_size = RETAIN_SUBSET, retain_samples

    def num_epochs(self) -> int:
        return 0

    def prepare(self, data: DataView) -> None:
        """The Fisher of the original on D_r, then the noise drawn into `self.model`."""
        retain = data["retain"]
        loader = DataLoader(retain, batch_size=self.batch_size(), collate_fn=getattr(retain, "collate_fn", None))
        fisher = diagonal_fisher(self.model, loader, kind=self.kind, reduction="mean")
        generator = torch.Generator().manual_seed(torch.initial_seed() if self.seed is None else self.seed)
        add_fisher_noise_(self.model, fisher, alpha=self.alpha, generator=generator, rules=self.noise, forget_classes=data.forget_classes)
        self.cost["cost/fisher_samples"] = float(len(retain))

    def training_step(self, batch, batch_idx):  # never called: zero epochs
        raise RuntimeError("Fisher does not train")
