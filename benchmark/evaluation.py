"""What `test` measures, and the module that measures it on every evaluation batch.

Streaming measures (accuracy per split, membership-inference attacks) are torchmetrics metrics fed by
`Evaluator.update(split, logits, labels, indices)`; their states synchronise across processes and
per-sample states are put back in sample order, so DDP gives the numbers of a single process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torchmetrics import Metric

from benchmark.metrics import split_metrics


@dataclass
class Evaluation:
    """Which measures `fit` and `test` report besides the accuracy on every split.

    Args:
        mia: the membership-inference attacks `mia/svm_asr`, `mia/efficacy`, `mia/loss_auc`.
        seed: seed of the attacks' subsampling.
    """

    mia: bool = True
    seed: int = 0


SAMPLE_METRICS: dict[str, Callable[[Evaluation], Metric]] = {}
"""Per-sample metrics by name; each is built when its `Evaluation` switch is on (see `Evaluator`)."""


class Evaluator(nn.Module):
    """Accuracy per split plus the per-sample metrics `evaluation` asks for."""

    def __init__(self, splits: list[str], num_classes: int, evaluation: Evaluation | None = None) -> None:
        super().__init__()
        evaluation = evaluation or Evaluation()
        self.accuracy = split_metrics(splits, num_classes)
        wanted = {name: build for name, build in SAMPLE_METRICS.items() if name.startswith("mia/") and evaluation.mia}
        self.sample_metrics = nn.ModuleDict({name.replace("/", "__"): build(evaluation) for name, build in wanted.items()})

    def update(self, split: str, logits: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor) -> None:
        self.accuracy[split].update(logits, labels)
        for metric in self.sample_metrics.values():
            metric.update(split, logits, labels, indices)

    def compute(self) -> dict[str, float]:
        """All values by their public names; every process must call it (it synchronises)."""
        results: dict[str, float] = {}
        for collection in self.accuracy.values():
            results.update({name: float(value) for name, value in collection.compute().items()})
        for metric in self.sample_metrics.values():
            results.update({name: float(value) for name, value in metric.compute().items()})
        return results

    def reset(self) -> None:
        for metric in [*self.accuracy.values(), *self.sample_metrics.values()]:
            metric.reset()
