"""The training set as the original model saw it: an empty forget request, with training-time corruption."""

from __future__ import annotations

from datamodules.datasets import DatasetSplits
from datamodules.requests import ForgetRequest, TrainingCorruption
from datamodules.scenarios.base import UnlearningScenario


class NothingForgotten(UnlearningScenario):
    """Used to pretrain the original model: its `retain` split is the whole (possibly corrupted) training set."""

    def __init__(self, dataset: str = "digits", corruption: TrainingCorruption = TrainingCorruption(), data: DatasetSplits | None = None, **kwargs) -> None:
        super().__init__(dataset=dataset, **kwargs)
        self.corruption, self.data = corruption, data

    def make_request(self, data: DatasetSplits) -> ForgetRequest:
        scenario = {"kind": "nothing_forgotten", "allow_empty": True}
        return ForgetRequest(data.info.name, len(data.train), (), corruption=self.corruption, scenario=scenario)
