"""Benchmark: the whole membership-inference suite against the two SVM attacks it replaced, on the same outputs.

Issue 15's performance point: on Fashion-MNIST (70,000 outputs), every attack of `benchmark/metrics/mia.py`
together adds at most 1.5× the time of the two SVM attacks computed before it, at the suites' cap
(`mia_samples` = 5,000). In one run, on one scenario (k random training images forgotten) and the cached
original model's outputs:

- **before**: the two attacks as they were computed until issue 15: an `SVC(C=3, gamma="auto", kernel="rbf")`
  on the entropy and one on the true-label confidence, each fit on 5,000 retain rows drawn at random and 5,000
  test rows, sklearn's default kernel cache (the code is written out here);
- **now**: `Evaluator.compute()` with every attack of `MIA_METRICS` and `mia_samples` = the cap, fed with the
  same outputs: the product's path (each attack's time alone is printed too).

Both are timed `--repeats` times, alternating, and the ratio of the medians is the headline.

    python -m benchmark.perf.mia                       # fashion_mnist, narrow_cnn_bn, k = 16
    python -m benchmark.perf.mia --published true      # also every attack without the cap
"""

from __future__ import annotations

import statistics
import tempfile
import time

import numpy as np
import torch
from jsonargparse import auto_cli
from sklearn.svm import SVC

from benchmark.experiment import runner
from benchmark.metrics import mia
from benchmark.metrics.evaluator import Evaluation, Evaluator
from benchmark.models.pretraining import Pretrained
from datamodules.scenarios import RandomInstances
from methods import Original

TARGET = 1.5


def split_outputs(scenario, model: torch.nn.Module) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(logits, labels, in-split indices) of forget, retain and test, from the scenario's evaluation loaders."""
    model.eval()
    out = {}
    with torch.inference_mode():
        for split in ("forget", "retain", "test"):
            batches = [(model(x), y, i) for x, y, i, *_ in scenario.eval_loader(split, shard=False)]
            out[split] = tuple(torch.cat(parts) for parts in zip(*batches, strict=True))
    return out


def before(outputs: dict, cap: int, seed: int = 0) -> float:
    """Seconds of the two SVM attacks as computed before issue 15 (random balanced draw, default kernel cache)."""
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    for feature in (lambda z, y: mia.output_entropy(z), mia.true_label_confidence):
        values = {s: feature(z, y).double().numpy().reshape(-1, 1) for s, (z, y, _) in outputs.items()}
        size = min(len(values["retain"]), len(values["test"]), cap)
        keep = {s: np.sort(rng.choice(len(values[s]), size=size, replace=False)) if len(values[s]) > size else np.arange(size) for s in ("retain", "test")}
        x = np.concatenate([values["retain"][keep["retain"]], values["test"][keep["test"]]])
        SVC(C=3.0, gamma="auto", kernel="rbf").fit(x, np.r_[np.ones(size), np.zeros(size)]).predict(values["forget"])
    return time.perf_counter() - start


def now(outputs: dict, cap: int | None) -> tuple[float, dict[str, float]]:
    """Seconds of the product's path, `Evaluator.compute()` with every attack (fed beforehand), and the values."""
    mia._SVM_FITS.clear()
    evaluator = Evaluator(list(outputs), int(max(y.max() for _, y, _ in outputs.values())) + 1, Evaluation(mia=True, mia_samples=cap))
    for split, (z, y, i) in outputs.items():
        evaluator.update(split, z, y, i)
    start = time.perf_counter()
    values = evaluator.compute()
    return time.perf_counter() - start, values


def each_attack(outputs: dict, cap: int | None) -> dict[str, float]:
    """Seconds of each attack's `compute()` alone, one after another (fits shared with an earlier attack are free)."""
    mia._SVM_FITS.clear()
    seconds = {}
    for name, cls in mia.MIA_METRICS.items():
        metric = cls(max_samples=cap)
        for split, (z, y, i) in outputs.items():
            metric.update(split, z, y, i)
        start = time.perf_counter()
        metric.compute()
        seconds[name] = time.perf_counter() - start
    return seconds


def main(dataset: str = "fashion_mnist", arch: str = "narrow_cnn_bn", k: int = 16, cap: int = 5000, repeats: int = 3, published: bool = False) -> float:
    """Print the table and return now / before (the ratio of the medians).

    Args:
        dataset: registered dataset.
        arch: model of the cached original (trained on a cache miss).
        k: forgotten training images.
        cap: the suites' `mia_samples`.
        repeats: timed runs of each path, alternating.
        published: also time every attack without the cap (their published rows; the RBF SVMs on all rows).
    """
    with tempfile.TemporaryDirectory() as requests:
        scenario = RandomInstances(k=k, dataset=dataset, request_dir=requests)
        scenario.setup()
        method = Original()
        runner.attach(method, scenario, Pretrained(arch=arch), Evaluation(mia=False), progress=False)
        outputs = split_outputs(scenario, method.model)
    sizes = {s: len(z) for s, (z, _, _) in outputs.items()}
    old, new = [], []
    for _ in range(repeats):
        old.append(before(outputs, cap))
        seconds, values = now(outputs, cap)
        new.append(seconds)
    alone = each_attack(outputs, cap)
    t_old, t_new = statistics.median(old), statistics.median(new)
    print(f"{dataset}, {arch}, k = {k}: outputs {sizes}; cap {cap}; {torch.get_num_threads()} torch threads; {repeats} runs, medians")
    print("| attack | seconds alone | value |\n| --- | --- | --- |")
    for name in mia.MIA_METRICS:
        print(f"| `{name}` | {alone[name]:.3f} | {values[name]:.4f} |")
    print(f"| **all attacks now** (`Evaluator.compute`, a thread per torch thread) | **{t_new:.3f}** | |")
    print(f"| the two SVM attacks before issue 15 | {t_old:.3f} | |")
    ratio = t_new / t_old
    print(f"now / before = {ratio:.2f}, target ≤ {TARGET}: {'met' if ratio <= TARGET else 'NOT met'}")
    if published:
        seconds, values = now(outputs, None)
        print(f"without the cap (the published rows): {seconds:.1f} s in all; " + ", ".join(f"{n} {values[n]:.4f}" for n in mia.MIA_METRICS))
    return ratio


if __name__ == "__main__":
    auto_cli(main)
