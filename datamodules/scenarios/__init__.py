"""Scenarios: what must be forgotten. One file per kind, each a `UnlearningScenario` subclass."""

from datamodules.scenarios.base import UnlearningScenario
from datamodules.scenarios.continual import ContinualStep
from datamodules.scenarios.external_instances import ExternalInstances
from datamodules.scenarios.nothing_forgotten import NothingForgotten
from datamodules.scenarios.outliers import Outliers
from datamodules.scenarios.random_instances import RandomInstances
from datamodules.scenarios.request_file import RequestFile
from datamodules.scenarios.subclass import Subclass
from datamodules.scenarios.whole_classes import WholeClasses

__all__ = ["UnlearningScenario", "RandomInstances", "WholeClasses", "RequestFile", "ContinualStep", "ExternalInstances", "NothingForgotten", "Outliers", "Subclass"]

SCENARIOS = ("RandomInstances", "WholeClasses", "RequestFile", "ContinualStep", "ExternalInstances", "Outliers", "Subclass")
"""The scenarios a user picks with `--data`."""
