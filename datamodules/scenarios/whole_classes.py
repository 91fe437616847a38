"""Whole-class forgetting (seed 002 §IV: forget every training sample of one or more classes)."""

from __future__ import annotations

from typing import Literal

import torch

from datamodules.datasets import DatasetSplits
from datamodules.requests import ForgetRequest, RequestError
from datamodules.scenarios.base import UnlearningScenario


class WholeClasses(UnlearningScenario):
    """Forget all training samples of `classes`; adds the splits `test_forget` and `test_retain`.

    With `retain_per_class`, the request also names D_r_sub (seed 002 §III-B, §V-D): that many training images of
    every retain class, which methods with the request's-subset access (UNSIR) train on and nothing else.

    With `fraction` < 1 (or `one_image`), D_e is only the first round(p · n) of a `seed`ed permutation of the classes'
    n training images (seed 004 App. C / D.1: a class erased from 3 % of it, or one image; nested over p for one seed);
    the rest stay in the retain set, and `test_forget` is still the classes' whole test split."""

    def __init__(self, classes: list[int] = [0], retain_per_class: int | None = None,  # noqa: B006 (jsonargparse shows it)
                 retain_sample: Literal["seeded", "first"] = "seeded", seed: int = 0, fraction: float = 1.0,
                 one_image: bool = False, **kwargs) -> None:
        """
        Args:
            classes: the class ids to forget (seed 002 uses class 0 for single-class forgetting).
            retain_per_class: n, the images per retain class of D_r_sub (seed 002: 1,000 on CIFAR-10, 50 on
                CIFAR-100, 100 on VGGFace-100); None: the request names no retain subset.
            retain_sample: how D_r_sub is drawn: `seeded` (a random sample per class, drawn with `seed`) or
                `first` (the first n images of each class in the training set's order, as the authors' notebook).
            seed: the seed of the `seeded` draw, and of the permutation `fraction` takes D_e from.
            fraction: p, the fraction of the classes' training images given as D_e (seed 004: 1, 0.3, 0.1, 0.03).
            one_image: D_e is a single image, the first of the permutation (seed 004 Table 5's "(1)"); leave fraction at 1.
        """
        super().__init__(**kwargs)
        duplicated = sorted({c for c in classes if list(classes).count(c) > 1})
        if duplicated:
            raise RequestError(f"WholeClasses: class {duplicated[0]} is given more than once in classes={list(classes)}")
        if retain_per_class is not None and retain_per_class < 1:
            raise RequestError(f"WholeClasses: retain_per_class must be a positive number of images, got {retain_per_class}")
        if not 0 < fraction <= 1:
            raise RequestError(f"WholeClasses: fraction must be in (0, 1], got {fraction}")
        if one_image and fraction != 1:
            raise RequestError(f"WholeClasses: one_image=True gives one image whatever the fraction; leave fraction at 1, got {fraction}")
        self.classes = tuple(sorted(classes))
        self.fraction, self.one_image = fraction, one_image
        self.retain_per_class, self.retain_sample, self.seed = retain_per_class, retain_sample, seed

    def make_request(self, data: DatasetSplits) -> ForgetRequest:
        outside = [c for c in self.classes if not 0 <= c < data.info.num_classes]
        if outside:
            raise RequestError(f"WholeClasses: class {outside[0]} is outside the dataset's classes [0, {data.info.num_classes}) of {data.info.name}")
        if len(set(self.classes) & set(range(data.info.num_classes))) == data.info.num_classes:
            raise RequestError(f"WholeClasses: forgetting every class of {data.info.name} ({data.info.num_classes}) leaves nothing to retain")
        targets = data.train.targets
        forget = torch.isin(targets, torch.tensor(self.classes)).nonzero().flatten()
        scenario = {"kind": "whole_classes", "classes": list(self.classes)}
        if self.fraction != 1 or self.one_image:  # (a whole-class request's identity stays as it was)
            count = 1 if self.one_image else round(self.fraction * len(forget))
            if count == 0:
                raise RequestError(f"WholeClasses: fraction={self.fraction} of the {len(forget)} training images of classes {list(self.classes)} selects none")
            order = torch.randperm(len(forget), generator=torch.Generator().manual_seed(self.seed))
            forget = forget[order[:count]].sort().values
            scenario |= {"fraction": self.fraction, "one_image": self.one_image, "seed": self.seed}
        subset = None
        if self.retain_per_class is not None:
            scenario |= {"retain_per_class": self.retain_per_class, "retain_sample": self.retain_sample,
                         **({"seed": self.seed} if self.retain_sample == "seeded" else {})}
            subset = self._retain_subset(targets, data.info)
        return ForgetRequest(data.info.name, len(data.train), tuple(forget.tolist()), classes=self.classes, scenario=scenario,
                             retain_subset=subset)

    def _retain_subset(self, targets: torch.Tensor, info) -> tuple[int, ...]:
        generator = torch.Generator().manual_seed(self.seed)
        chosen = []
        for c in range(info.num_classes):
            if c in self.classes:
                continue
            members = (targets == c).nonzero().flatten()
            if len(members) < self.retain_per_class:
                name = info.class_names[c] if info.class_names else c
                raise RequestError(f"WholeClasses: retain_per_class={self.retain_per_class} is more than the {len(members)} "
                                   f"training images of class {c} ({name})")
            order = torch.arange(len(members)) if self.retain_sample == "first" else torch.randperm(len(members), generator=generator)
            chosen.append(members[order[: self.retain_per_class]])
        return tuple(torch.cat(chosen).sort().values.tolist())
