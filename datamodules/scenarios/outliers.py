"""Outliers (seed 003 §4, "remove outliers"): a random group of the training set trained with wrong labels, then forgotten."""

from __future__ import annotations

from typing import Literal

import torch
from torch.utils.data import Dataset

from datamodules.datasets import DatasetSplits
from datamodules.requests import ForgetRequest, RequestError, TrainingCorruption
from datamodules.scenarios.base import UnlearningScenario


class Outliers(UnlearningScenario):
    """Forget a random group of a fraction `rho` of the training set whose labels were shuffled within the group (seed
    003 §4: "shuffling labels within the random group"; `labels="uniform"`: labels drawn uniformly instead) before
    the original was trained on it. Adds the split `noise`: the group with its true labels (`noise/acc`)."""

    def __init__(self, rho: float = 0.1, seed: int = 0, labels: Literal["shuffle", "uniform"] = "shuffle", **kwargs) -> None:
        """
        Args:
            rho: ρ, the fraction of the training set in the group (seed 003: 0.1, 0.3, 0.5).
            seed: seed of the group and of its labels.
            labels: `shuffle` the group's labels among themselves, or draw them `uniform`ly over the classes.
        """
        super().__init__(**kwargs)
        if not 0 < rho < 1:
            raise RequestError(f"Outliers: rho must be in (0, 1), got {rho}")
        self.rho, self.seed, self.labels = rho, seed, labels

    def make_request(self, data: DatasetSplits) -> ForgetRequest:
        n = len(data.train)
        generator = torch.Generator().manual_seed(self.seed)
        group = torch.randperm(n, generator=generator)[: round(self.rho * n)].sort().values
        if len(group) < 2:
            raise RequestError(f"Outliers: rho={self.rho} of {n} training samples is fewer than 2")
        true = data.train.targets[group]
        wrong = true[torch.randperm(len(group), generator=generator)] if self.labels == "shuffle" else \
            torch.randint(0, data.info.num_classes, (len(group),), generator=generator)
        scenario = {"kind": "outliers", "rho": self.rho, "seed": self.seed, "labels": self.labels}
        return ForgetRequest(data.info.name, n, tuple(group.tolist()), corruption=TrainingCorruption(tuple(group.tolist()), tuple(wrong.tolist())),
                             scenario=scenario)

    def _make_splits(self, request: ForgetRequest) -> dict[str, Dataset]:
        splits = super()._make_splits(request)
        splits["noise"] = self.data.train.subset(torch.tensor(request.forget_indices, dtype=torch.long))  # (the true labels)
        return splits
