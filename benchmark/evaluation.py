"""What `test` measures, and the module that measures it on every evaluation batch.

Streaming measures (accuracy per split, membership-inference attacks) are torchmetrics metrics fed by
`Evaluator.update(split, logits, labels, indices)`; their states synchronise across processes and
per-sample states are put back in sample order, so DDP gives the numbers of a single process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torchmetrics import SumMetric

from benchmark.metrics import split_metrics
from benchmark.mia import MIA_METRICS


@dataclass
class Evaluation:
    """Which measures `fit` and `test` report besides the accuracy on every split.

    Args:
        mia: the membership-inference attacks `mia/svm_asr`, `mia/efficacy`, `mia/loss_auc`.
        seed: seed of the attacks' subsampling.
    """

    mia: bool = True
    seed: int = 0


class Evaluator(nn.Module):
    """Accuracy per split plus the per-sample metrics `evaluation` asks for.

    A model whose outputs are not finite (e.g. diverged gradient ascent) gets NaN for every measure of
    the splits where that happens — never an accuracy computed from NaN logits.
    """

    def __init__(self, splits: list[str], num_classes: int, evaluation: Evaluation | None = None) -> None:
        super().__init__()
        evaluation = evaluation or Evaluation()
        self.accuracy = split_metrics(splits, num_classes)
        self.nonfinite = nn.ModuleDict({split: SumMetric() for split in splits})
        wanted = MIA_METRICS if evaluation.mia else {}
        self.sample_metrics = nn.ModuleDict({name.replace("/", "__"): metric(seed=evaluation.seed) for name, metric in wanted.items()})

    def update(self, split: str, logits: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor) -> None:
        self.accuracy[split].update(logits, labels)
        self.nonfinite[split].update((~torch.isfinite(logits).all(dim=1)).sum())
        for metric in self.sample_metrics.values():
            metric.update(split, logits, labels, indices)

    def compute(self) -> dict[str, float]:
        """All values by their public names; every process must call it (it synchronises)."""
        broken = {split for split, count in self.nonfinite.items() if count.compute() > 0}
        results: dict[str, float] = {}
        for split, collection in self.accuracy.items():
            results.update({name: float(value) if split not in broken else math.nan for name, value in collection.compute().items()})
        for key, metric in self.sample_metrics.items():
            results.update({name: float(value) for name, value in metric.compute().items()} if not broken else {key.replace("__", "/"): math.nan})
        return results

    def reset(self) -> None:
        for metric in [*self.accuracy.values(), *self.nonfinite.values(), *self.sample_metrics.values()]:
            metric.reset()
