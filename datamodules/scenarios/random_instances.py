"""Random instances with mixed labels (seed 000 §Experimental details: k random training images)."""

from __future__ import annotations

import torch

from datamodules.datasets import DatasetSplits
from datamodules.requests import ForgetRequest, RequestError
from datamodules.scenarios.base import UnlearningScenario


class RandomInstances(UnlearningScenario):
    """Forget `k` (or a `fraction` of the) training samples drawn uniformly at random with `seed`.

    With `relabel=True` each forgotten sample also gets a new label drawn uniformly among the other
    classes (the relabeling setting of seed 001 Table 3).
    """

    def __init__(self, k: int | None = None, fraction: float | None = None, seed: int = 0, relabel: bool = False, **kwargs) -> None:
        """
        Args:
            k: number of training samples to forget.
            fraction: alternatively, the fraction of the training set to forget (0 < fraction < 1).
            seed: seed of the draw.
            relabel: also assign each forgotten sample a random new label different from its own.
        """
        super().__init__(**kwargs)
        if (k is None) == (fraction is None):
            raise RequestError("RandomInstances: give exactly one of k and fraction")
        if fraction is not None and not 0 < fraction < 1:
            raise RequestError(f"RandomInstances: fraction must be in (0, 1), got {fraction}")
        self.k, self.fraction, self.seed, self.relabel = k, fraction, seed, relabel

    def make_request(self, data: DatasetSplits) -> ForgetRequest:
        n = len(data.train)
        k = self.k if self.k is not None else round(self.fraction * n)
        if not 1 <= k < n:
            raise RequestError(f"RandomInstances: k={k} must be at least 1 and smaller than the {n} training samples of {data.info.name}")
        generator = torch.Generator().manual_seed(self.seed)
        forget = torch.randperm(n, generator=generator)[:k].sort().values
        new_labels = None
        if self.relabel:
            shift = torch.randint(1, data.info.num_classes, (k,), generator=generator)
            new_labels = tuple(((data.train.targets[forget] + shift) % data.info.num_classes).tolist())
        scenario = {"kind": "random_instances", "k": k, "seed": self.seed, "relabel": self.relabel}
        return ForgetRequest(data.info.name, n, tuple(forget.tolist()), new_labels=new_labels, scenario=scenario)
