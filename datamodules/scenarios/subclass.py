"""Subclass forgetting (seed 004 §5, 7̄-MNIST and 7̄-noisyMNIST; App. D.1, Table 5: a fraction p of D_e given)."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from datamodules.datasets import DatasetSplits
from datamodules.datasets.fashion_sub import ANKLE_BOOT, SUBCLASS_DATASETS, subclass_indices
from datamodules.requests import ForgetRequest, RequestError, TrainingCorruption
from datamodules.scenarios.base import UnlearningScenario


class Subclass(UnlearningScenario):
    """Forget a subclass of a class (fashion_sub: the sandals inside Footwear, as 7̄ inside 7), or only a fraction of it.

    D_e is the first round(p · n) of a `seed`ed permutation of the subclass's n training images, so for one seed the
    fractions are nested (3 % ⊂ 10 % ⊂ 30 % ⊂ 100 %); the other subclass images stay in the retain set (Table 5).
    With `mislabelled` (7̄-noisyMNIST) the original is trained with every subclass image labelled Ankle boot.
    Adds the splits `test_forget` (the subclass's test images: seed 004's "D_e" accuracy, as a class scenario's), `test_retain` (the other test images, "D_r"), `sub_train_rest`
    (the subclass's training images not in D_e, true labels) and, when mislabelled, `noise` (D_e with its true
    label, Footwear, which D_e is scored against; `forget` has the labels the original was trained with).
    """

    def __init__(self, fraction: float = 1.0, one_image: bool = False, mislabelled: bool = False, seed: int = 0,
                 dataset: str = "fashion_sub", **kwargs) -> None:
        """
        Args:
            fraction: p, the fraction of the subclass's training images given as D_e (seed 004: 1, 0.3, 0.1, 0.03).
            one_image: D_e is a single image, the first of the permutation (Table 5's "(1)"); leave fraction at 1.
            mislabelled: the noisy twin: the original is trained with the whole subclass labelled Ankle boot.
            seed: seed of the permutation.
            dataset: a dataset with a subclass index (fashion_sub).
        """
        super().__init__(dataset=dataset, **kwargs)
        if not 0 < fraction <= 1:
            raise RequestError(f"Subclass: fraction must be in (0, 1], got {fraction}")
        if one_image and fraction != 1:
            raise RequestError(f"Subclass: one_image=True gives one image whatever the fraction; leave fraction at 1, got {fraction}")
        if dataset not in SUBCLASS_DATASETS:
            raise RequestError(f"Subclass: dataset {dataset} has no subclass index; datasets with one: {', '.join(SUBCLASS_DATASETS)}")
        self.fraction, self.one_image, self.mislabelled, self.seed = fraction, one_image, mislabelled, seed

    def make_request(self, data: DatasetSplits) -> ForgetRequest:
        members = subclass_indices(data, "train")
        count = 1 if self.one_image else round(self.fraction * len(members))
        if count == 0:
            raise RequestError(f"Subclass: fraction={self.fraction} of the {len(members)} subclass training images of {data.info.name} selects none")
        order = torch.randperm(len(members), generator=torch.Generator().manual_seed(self.seed))
        forget = members[order[:count]].sort().values
        corruption = TrainingCorruption(tuple(members.tolist()), (ANKLE_BOOT,) * len(members)) if self.mislabelled else TrainingCorruption()
        scenario = {"kind": "subclass", "fraction": self.fraction, "one_image": self.one_image, "mislabelled": self.mislabelled,
                    "seed": self.seed, "subclass_index_sha256": data.train.index_sha256}
        return ForgetRequest(data.info.name, len(data.train), tuple(forget.tolist()), corruption=corruption, scenario=scenario)

    def _make_splits(self, request: ForgetRequest) -> dict[str, Dataset]:
        splits = super()._make_splits(request)
        train, test = self.data.train, self.data.test  # (true labels)
        forget = torch.tensor(request.forget_indices, dtype=torch.long)
        members, test_members = subclass_indices(self.data, "train"), subclass_indices(self.data, "test")
        in_test = torch.zeros(len(test), dtype=torch.bool)
        in_test[test_members] = True
        splits["test_forget"] = test.subset(test_members)
        splits["test_retain"] = test.subset((~in_test).nonzero().flatten())
        splits["sub_train_rest"] = train.subset(members[~torch.isin(members, forget)])
        if request.corruption.indices:
            splits["noise"] = train.subset(forget)
        return splits
