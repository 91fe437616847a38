"""Whole-class forgetting (seed 002 §IV: forget every training sample of one or more classes)."""

from __future__ import annotations

import torch

from datamodules.datasets import DatasetSplits
from datamodules.requests import ForgetRequest
from datamodules.scenarios.base import UnlearningScenario


class WholeClasses(UnlearningScenario):
    """Forget all training samples of `classes`; adds the splits `test_forget` and `test_retain`."""

    def __init__(self, classes: list[int] = [0], **kwargs) -> None:  # noqa: B006 (jsonargparse shows it)
        """
        Args:
            classes: the class ids to forget (seed 002 uses class 0 for single-class forgetting).
        """
        super().__init__(**kwargs)
        self.classes = tuple(sorted(set(classes)))

    def make_request(self, data: DatasetSplits) -> ForgetRequest:
        forget = torch.isin(data.train.targets, torch.tensor(self.classes)).nonzero().flatten()
        scenario = {"kind": "whole_classes", "classes": list(self.classes)}
        return ForgetRequest(data.info.name, len(data.train), tuple(forget.tolist()), classes=self.classes, scenario=scenario)
