"""Random instances with mixed labels (seed 000 §Experimental details: k random training images)."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from datamodules.datasets import DatasetSplits
from datamodules.requests import ForgetRequest, RequestError
from datamodules.scenarios.base import UnlearningScenario


class RandomInstances(UnlearningScenario):
    """Forget `k` (or a `fraction` of the) training samples drawn uniformly at random with `seed`.

    With `relabel=True` each forgotten sample also gets a new label drawn uniformly among the other
    classes (the relabeling setting of seed 001 Table 3).
    """

    def __init__(self, k: int | None = None, fraction: float | None = None, seed: int = 0, relabel: bool = False,
                 draw: Literal["torch", "optml"] = "torch", **kwargs) -> None:
        """
        Args:
            k: number of training samples to forget.
            fraction: alternatively, the fraction of the training set to forget (0 < fraction < 1).
            seed: seed of the draw.
            relabel: also assign each forgotten sample a random new label different from its own.
            draw: `torch`: the first k of a `torch.randperm` seeded with `seed`; `optml`: the OPTML code's
                `np.random.RandomState(seed - 1).choice(N, k, replace=False)` (Unlearn-Saliency @ Classification/dataset.py
                `replace_class` with class -1, called with `seed=args.seed - 1`); with `seed` 2 on `cifar10_optml` (whose split
                is their `--seed` 2's), the rows of their default run.
        """
        super().__init__(**kwargs)
        if (k is None) == (fraction is None):
            raise RequestError("RandomInstances: give exactly one of k and fraction")
        if fraction is not None and not 0 < fraction < 1:
            raise RequestError(f"RandomInstances: fraction must be in (0, 1), got {fraction}")
        if draw == "optml" and seed < 1:
            raise RequestError(f"RandomInstances: draw='optml' seeds numpy with seed - 1, so seed must be at least 1, got {seed}")
        if draw == "optml" and relabel:
            raise RequestError("RandomInstances: draw='optml' draws the OPTML code's forget rows, which it never relabels; use draw='torch' with relabel")
        self.k, self.fraction, self.seed, self.relabel, self.draw = k, fraction, seed, relabel, draw

    def make_request(self, data: DatasetSplits) -> ForgetRequest:
        n = len(data.train)
        k = self.k if self.k is not None else round(self.fraction * n)
        if not 1 <= k < n:
            raise RequestError(f"RandomInstances: k={k} must be at least 1 and smaller than the {n} training samples of {data.info.name}")
        generator = torch.Generator().manual_seed(self.seed)
        if self.draw == "optml":
            forget = torch.from_numpy(np.random.RandomState(self.seed - 1).choice(n, k, replace=False)).sort().values
        else:
            forget = torch.randperm(n, generator=generator)[:k].sort().values
        new_labels = None
        if self.relabel:
            shift = torch.randint(1, data.info.num_classes, (k,), generator=generator)
            new_labels = tuple(((data.train.targets[forget] + shift) % data.info.num_classes).tolist())
        scenario = {"kind": "random_instances", "k": k, "seed": self.seed, "relabel": self.relabel, **({"draw": self.draw} if self.draw != "torch" else {})}
        return ForgetRequest(data.info.name, n, tuple(forget.tolist()), new_labels=new_labels, scenario=scenario)
