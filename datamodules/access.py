"""What data an unlearning method may see, and the view of a scenario that enforces it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch.utils.data import DataLoader, Dataset

from benchmark.core.errors import DataAccessError
from datamodules.datasets import DatasetInfo


@dataclass(frozen=True)
class DataAccess:
    """A method's declared access: the forget set or not, and none / a subset / all of the retain set.

    `subset`: a seeded random subset of the size the method asks for; `request`: the retain subset the forget
    request names (seed 002's D_r_sub, the same for every method reading the request). The forgotten class ids of
    a class scenario are always visible; they are part of the request.
    """

    forget: bool
    retain: Literal["none", "subset", "request", "full"]

    def splits(self, has_new_labels: bool) -> tuple[str, ...]:
        names = ("forget", "relabel") if has_new_labels else ("forget",)
        return (names if self.forget else ()) + (("retain",) if self.retain != "none" else ())

    def __str__(self) -> str:
        parts = (["forget set"] if self.forget else []) + ({"none": [], "subset": ["a retain subset"], "request": ["the request's retain subset"],
                                                           "full": ["the full retain set"]}[self.retain])
        return " + ".join(parts) or "class ids only"


FORGET_ONLY = DataAccess(forget=True, retain="none")
RETAIN_SUBSET = DataAccess(forget=False, retain="subset")
REQUEST_RETAIN_SUBSET = DataAccess(forget=False, retain="request")
RETAIN_FULL = DataAccess(forget=False, retain="full")
FORGET_AND_RETAIN = DataAccess(forget=True, retain="full")
CLASS_IDS_ONLY = DataAccess(forget=False, retain="none")


def seeded_subset(split: Dataset, size: int, request_hash: str) -> Dataset:
    """`size` rows of `split` (all of them when it has fewer), drawn seeded by the forget request's hash, so that every
    run seed and every method reading the request gets the same rows; in index order."""
    generator = torch.Generator().manual_seed(int(request_hash[:8], 16))
    return split.subset(torch.randperm(len(split), generator=generator)[:min(size, len(split))].sort().values)


class DataView:
    """The part of a scenario a method may see: its allowed splits, the request's class ids, loaders.

    Split names: `forget` (the forget set with the labels the original model was trained on),
    `relabel` (the forget set with the request's new labels, when it has them), `retain` (the full
    retain set, or the seeded subset of the size the method asked for).
    """

    def __init__(
        self,
        owner: str,
        access: DataAccess,
        splits: dict[str, Dataset],
        forget_classes: tuple[int, ...] | None,
        info: DatasetInfo,
        request_hash: str,
        make_loader: Callable[[Dataset, int, bool], DataLoader],
        training_set_hash: str | None = None,
    ) -> None:
        self.owner, self.access = owner, access
        self._splits = splits
        self.forget_classes = forget_classes
        self.info, self.num_classes = info, info.num_classes
        self.request_hash = request_hash
        """The forget request's content hash."""
        self.training_set_hash = training_set_hash or request_hash
        """The retain set's identity (`ForgetRequest.training_set_hash`): Retrain's cache key."""
        self._make_loader = make_loader

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._splits)

    def __contains__(self, name: str) -> bool:
        return name in self._splits

    def __getitem__(self, name: str) -> Dataset:
        if name not in self._splits:
            raise DataAccessError(
                f"{self.owner} declared access to {self.access} and cannot read the '{name}' split "
                f"(available: {', '.join(self._splits) or 'none'})"
            )
        return self._splits[name]

    def retain_subset(self, size: int) -> Dataset:
        """`size` rows of the retain split this view holds, drawn as a `subset` access draws them (`seeded_subset`): for
        a method that reads all of D_r and also needs a seeded share of it (Bad Teaching's 30 %, MSG's forget-sized set)."""
        return seeded_subset(self["retain"], size, self.request_hash)

    def loader(self, name: str, batch_size: int, shuffle: bool = True) -> DataLoader:
        """A training loader over `name`, sharded across processes under DDP."""
        return self._make_loader(self[name], batch_size, shuffle)

    def loader_over(self, dataset: Dataset, batch_size: int, shuffle: bool = True) -> DataLoader:
        """A training loader, sharded like `loader`'s, over data the method made from its splits (noise, a union)."""
        return self._make_loader(dataset, batch_size, shuffle)
