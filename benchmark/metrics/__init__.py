"""Metrics: functional cores and torchmetrics `Metric`s, the per-split `Evaluator` (never train, never draw)."""
