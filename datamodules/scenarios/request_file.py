"""A forget request written by a user (or by another scenario), read from its JSON file."""

from __future__ import annotations

from datamodules.datasets import DatasetSplits
from datamodules.requests import ForgetRequest
from datamodules.scenarios.base import UnlearningScenario


class RequestFile(UnlearningScenario):
    """Forget exactly what the request file at `path` says; its hash is checked on load.

    The dataset is the one the request names (the `dataset` argument is ignored).
    """

    def __init__(self, path: str, **kwargs) -> None:
        """
        Args:
            path: a request JSON file (`python cli.py request --help` writes or stamps one).
        """
        super().__init__(**kwargs)
        self.path = path
        self.file_request: ForgetRequest | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.file_request is None:
            self.file_request = ForgetRequest.load(self.path)
            self.dataset_name = self.file_request.dataset
        super().setup(stage)

    def make_request(self, data: DatasetSplits) -> ForgetRequest:
        return self.file_request
