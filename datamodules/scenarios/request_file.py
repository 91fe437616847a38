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
        self.file_request = ForgetRequest.load(path)
        super().__init__(**{**kwargs, "dataset": self.file_request.dataset})
        self.path = path

    def make_request(self, data: DatasetSplits) -> ForgetRequest:
        return self.file_request
