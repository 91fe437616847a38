"""Evaluation metrics as torchmetrics `Metric`s, one instance per named split.

Names are `"{split}/{metric}"` — `forget/acc`, `retain/acc`, `test/acc`, `test_forget/acc`, … — and
the same names appear in logs, result records, tables and the leaderboard.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchmetrics import Metric, MetricCollection, SumMetric
from torchmetrics.classification import MulticlassAccuracy


def accuracy_metric(num_classes: int) -> Metric:
    """`{split}/acc`: the fraction of samples whose arg-max prediction equals the split's label."""
    return MulticlassAccuracy(num_classes=num_classes, average="micro", validate_args=False)


def nonfinite_count() -> Metric:
    """The number of samples with a non-finite output; updated with a count, which is never NaN, so without
    torchmetrics' NaN check (`nans.any()`: a wait for the device at every batch)."""
    return SumMetric(nan_strategy="disable")


def split_metrics(splits: list[str], num_classes: int) -> nn.ModuleDict:
    """One `MetricCollection` per split; its keys are the final metric names (`forget/acc`, …)."""
    return nn.ModuleDict({split: MetricCollection({f"{split}/acc": accuracy_metric(num_classes)}) for split in splits})


@torch.no_grad()
def evaluate_accuracy(model: nn.Module, loader: DataLoader, num_classes: int, device: torch.device) -> float:
    """Accuracy of `model` over `loader`, synchronised over all processes when run under DDP; NaN when any
    output is not finite (an arg-max of NaN logits is no prediction)."""
    metric, nonfinite = accuracy_metric(num_classes).to(device), nonfinite_count().to(device)
    was_training = model.training
    model.eval()
    for x, y, *_ in loader:
        logits = model(x.to(device))
        metric.update(logits, y.to(device))
        nonfinite.update((~torch.isfinite(logits)).sum())
    model.train(was_training)
    return math.nan if nonfinite.compute() > 0 else float(metric.compute())
