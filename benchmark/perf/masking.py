"""Benchmark: seed 003's scoring costs against bare passes over the same images, in one run (issue 18's targets).

- FisherMask's scores (per-sample squared gradients from the layers' inputs and output gradients,
  `methods.blocks.fisher.diagonal_fisher`) against
  one bare forward + backward of the batch-mean loss per batch (what a squared *batch* gradient would cost): target
  ≤ 3×;
- ActivationMask's scores (channel means by forward hooks) against a bare forward per batch: target ≤ 1.5×.

    python -m benchmark.perf.masking --dataset fashion_mnist --arch narrow_cnn_bn --recipe fashion_mnist_unsir \
        --checkpoint leaderboard/tracks/checkpoints/fashion_mnist-narrow_cnn_bn-fashion_mnist_unsir-seed0.pt --check true
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from jsonargparse import auto_cli

from benchmark.experiment import runner
from benchmark.metrics.evaluator import Evaluation
from benchmark.models.pretraining import Pretrained
from datamodules.scenarios import WholeClasses
from methods.fisher_mask import ActivationMask, FisherMask

TARGETS = {"FisherMask / forward+backward": 3.0, "ActivationMask / forward": 1.5}


def timed(work, repeats: int) -> float:
    """The median seconds of `repeats` calls of `work`, after one warm-up call."""
    work()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(dataset: str = "digits", arch: str = "narrow_cnn_bn", recipe: str | None = None, checkpoint: str | None = None, images: int = 1024,
         batch_size: int = 128, repeats: int = 5, threads: int | None = None, check: bool = False) -> dict[str, float]:
    """Seed 003's scoring against bare passes over the same images.

    Args:
        dataset: registered dataset name.
        arch: the original's architecture (with Conv-BatchNorm-ReLU layers for ActivationMask).
        recipe: its pretraining recipe (default: the dataset's).
        checkpoint: its weights instead of the cached pretraining (e.g. a committed track original).
        images: forget images scored (the first of class 0's).
        batch_size: the scoring batch.
        repeats: timed rounds; medians are reported.
        threads: torch threads (default: torch's choice).
        check: exit with status 1 when a ratio is over its target.
    """
    if threads:
        torch.set_num_threads(threads)
    scenario = WholeClasses(classes=[0], dataset=dataset)
    fisher, activation = FisherMask(budget={"batch_size": batch_size}), ActivationMask(budget={"batch_size": batch_size})
    for method in (fisher, activation):
        runner.attach(method, scenario, Pretrained(arch=arch, recipe=recipe, checkpoint=checkpoint), Evaluation(mia=False), progress=False)
    forget = scenario.splits["forget"].subset(torch.arange(min(images, len(scenario.splits["forget"]))))
    data = {"forget": forget}
    model = fisher.model.eval()
    batches = [(x, y) for x, y, *_ in torch.utils.data.DataLoader(forget, batch_size=batch_size, collate_fn=getattr(forget, "collate_fn", None))]
    print(f"{dataset}, {arch}, {len(forget)} images in batches of {batch_size}, {torch.get_num_threads()} threads, device cpu, "
          f"torch {torch.__version__}, lightning {pl.__version__}, load average {os.getloadavg()[0]:.2f}")

    def forward_backward() -> None:
        for x, y in batches:
            model.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()

    def forward() -> None:
        with torch.no_grad():
            for x, _ in batches:
                model(x)

    fisher.score_on = activation.score_on = "forget"
    seconds = {"FisherMask": timed(lambda: fisher.scores(data), repeats), "forward+backward": timed(forward_backward, repeats),
               "ActivationMask": timed(lambda: activation.scores(data), repeats), "forward": timed(forward, repeats)}
    ratios = {"FisherMask / forward+backward": seconds["FisherMask"] / seconds["forward+backward"],
              "ActivationMask / forward": seconds["ActivationMask"] / seconds["forward"]}
    for name, value in seconds.items():
        print(f"{name}: {value:.3f} s")
    for name, ratio in ratios.items():
        print(f"{name}: {ratio:.2f}× (target ≤ {TARGETS[name]})")
    if check and any(ratios[name] > target for name, target in TARGETS.items()):
        sys.exit(1)
    return ratios


if __name__ == "__main__":
    auto_cli(main, as_positional=False)
