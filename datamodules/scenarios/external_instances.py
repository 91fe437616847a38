"""A forget set from another dataset: images the model never trained on, with their true labels (seed 000 Table 4)."""

from __future__ import annotations

import torch

from datamodules.datasets import DatasetSplits, load_dataset
from datamodules.requests import ForgetRequest, RequestError
from datamodules.scenarios.base import UnlearningScenario


class ExternalInstances(UnlearningScenario):
    """D_f = `k` images drawn uniformly at random with `seed` from the training split of dataset `source`, with
    their true labels; D_r = the whole training set of `dataset`, D_test = its test set.

    Seed 000 "Correcting natural adversarial examples" (Table 4): D_f is k ∈ {16, 32, 64, 128} ImageNet-A images,
    which an ImageNet-1K ResNet-50 misclassifies, and the model is corrected to their true labels (L_UL^Cor,
    eq. 4) while keeping D_r (ImageNet-1K train) and D_test (ImageNet-1K val). `forget` and `relabel` are both
    the k images with their true labels: they are the correction's targets y* and the labels the adversarial
    examples avoid (ȳ ≠ y). Table 4's D_f accuracy is therefore `forget/acc` (= `relabel/acc`). The request
    forgets no training index: it records the drawn images in `scenario["source_indices"]`, so its hash
    identifies them.
    """

    def __init__(self, source: str = "imagenet_a", k: int = 16, seed: int = 0, dataset: str = "imagenet", source_root: str | None = None, **kwargs) -> None:
        """
        Args:
            source: registered dataset whose training split D_f is drawn from; it must share `dataset`'s classes
                and image size (`imagenet_a` is labeled in ImageNet-1K's 1000 classes).
            k: number of images in D_f.
            seed: seed of the draw.
            dataset: the model's own dataset (D_r, D_test).
            source_root: where `source`'s files are; default: `data_root`.
        """
        super().__init__(dataset=dataset, **kwargs)
        self.source, self.k, self.seed, self.source_root = source, k, seed, source_root
        self.source_data: DatasetSplits | None = None

    def make_request(self, data: DatasetSplits) -> ForgetRequest:
        source = self.source_data = load_dataset(self.source, self.source_root or self.data_root)
        mine, theirs = data.info, source.info
        if (theirs.num_classes, theirs.channels, theirs.image_size) != (mine.num_classes, mine.channels, mine.image_size):
            raise RequestError(f"ExternalInstances: {theirs.name} ({theirs.num_classes} classes, {theirs.channels}×{theirs.image_size}×{theirs.image_size}) "
                               f"does not match {mine.name} ({mine.num_classes} classes, {mine.channels}×{mine.image_size}×{mine.image_size})")
        n = len(source.train)
        if not 1 <= self.k <= n:
            raise RequestError(f"ExternalInstances: k={self.k} must be between 1 and the {n} images of {theirs.name}")
        chosen = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed))[: self.k].sort().values
        scenario = {"kind": "external_instances", "source": theirs.name, "k": self.k, "seed": self.seed, "source_indices": chosen.tolist(), "allow_empty": True}
        return ForgetRequest(mine.name, len(data.train), (), scenario=scenario)

    def _make_splits(self, request: ForgetRequest) -> dict:
        splits = super()._make_splits(request)
        images = self.source_data.train.subset(torch.tensor(request.scenario["source_indices"]))
        splits["forget"] = images
        splits["relabel"] = images
        return splits
