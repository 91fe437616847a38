"""What a sweep's runs will cost before any of them runs (`cli.py sweep|suite … --plan`): the images each run pushes
through the network, and the hours they take at this machine's measured throughput.

The work of a run, in images (a model of it, not a count: method-specific extra passes are left out):
- training: the method's epochs × the images of one epoch, which is its `train_splits` cycled to the longest
  (Lightning's `max_size_cycle`, the base loader); Retrain and other recipe-trained methods: the recipe's epochs over
  their retain set (nothing when cached);
- evaluation: one forward pass over every split; U-LiRA: its 2·shadows + 1 shadow originals trained by the recipe
  (once per request, counted per run) and the method run on `ulira_shadows` of them;
- pretraining the original, once per original, when it is neither cached nor a committed checkpoint;
- relearning, apart, as an upper bound: `relearn_cap` epochs of `relearn_samples` images.
Left out: what a method computes besides its epochs (ADV's PGD, a mask's gradients, an inversion), the membership
attacks' classifiers and per-step overheads, which dominate tiny models (digits), not the large ones a plan is for.

Throughput is measured here, on the device a run would get (a GPU when there is one): training steps (forward,
backward, SGD) and forward passes of the run's architecture on random images of its dataset's shape, in batches of
its pretraining recipe's size, after warm-up steps. A cluster's estimate is the same command run on one of its nodes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from benchmark.models.pretraining import RECIPES, Pretrained, build_model, cache_path
from datamodules.datasets import DatasetInfo
from datamodules.scenarios import UnlearningScenario
from methods.retrain import Retrain


@dataclass(frozen=True)
class Work:
    """Images a run pushes through the network: trained (forward + backward) and evaluated (forward only); the original
    it needs pretrained (`pretrain`: trained images, counted once per original); relearning's most (`relearn`: it stops
    once the forget accuracy is regained, mostly within a few of its `relearn_cap` epochs, so it is an upper bound
    reported apart)."""

    train: int = 0
    evaluate: int = 0
    pretrain: int = 0
    relearn: int = 0
    original: str = ""


def _epoch_images(method, scenario: UnlearningScenario) -> int:
    view = scenario.view(type(method).__name__, method.data_access, getattr(method, "retain_subset_size", None))
    sizes = [len(view[name]) for name in method.train_splits if name in view.names]
    return len(sizes) * max(sizes, default=0)


def _recipe_images(pretrained: Pretrained, info: DatasetInfo, training_set_hash: str, images: int) -> int:
    """A recipe's training of `images` images (0 when the cache holds it)."""
    if cache_path(pretrained, info.name, training_set_hash).exists():
        return 0
    return RECIPES.get(pretrained.recipe_name(info.name)).epochs * images


def run_work(method, scenario: UnlearningScenario, pretrained: Pretrained, evaluation) -> Work:
    """The `Work` of one run (`method` built, not attached: nothing is trained or loaded)."""
    scenario.setup()
    info = scenario.info
    if isinstance(method, Retrain):
        train = _recipe_images(pretrained, info, scenario.request.training_set_hash, len(scenario.splits["retain"]))
    else:
        train = method.num_epochs() * _epoch_images(method, scenario) if not method.one_shot else 0
    evaluate = sum(len(scenario.splits[name]) for name in scenario.eval_split_names)
    if evaluation.ulira or evaluation.neurips:
        shadows = evaluation.ulira_shadows
        train += RECIPES.get(pretrained.recipe_name(info.name)).epochs * len(scenario.splits["retain"]) * (2 * shadows + 1) + shadows * train
    relearn = evaluation.relearn_cap * evaluation.relearn_samples if evaluation.relearn else 0
    pretrain, original = 0, ""
    if not pretrained.checkpoint:
        training_set = scenario.request.original_training_set_hash
        original = str(cache_path(pretrained, info.name, training_set))
        pretrain = _recipe_images(pretrained, info, training_set, scenario.request.num_train)
    return Work(train, evaluate, pretrain, relearn, original)


@dataclass(frozen=True)
class Throughput:
    """Images per second of one architecture on one device: training steps and forward passes."""

    train: float
    evaluate: float
    device: str

    def seconds(self, work: Work, pretrain: bool = True) -> float:
        return (work.train + (work.pretrain if pretrain else 0)) / self.train + work.evaluate / self.evaluate

    def relearn_seconds(self, work: Work) -> float:
        return work.relearn / self.train


def measure_throughput(arch: str, info: DatasetInfo, batch_size: int, steps: int = 5, warmup: int = 2) -> Throughput:
    """`arch`'s training and evaluation throughput on this machine's device (a GPU when there is one), on random images
    of `info`'s shape in batches of `batch_size` (the median of `steps` timed steps after `warmup`)."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = build_model(arch, info, 0).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    x = torch.randn(batch_size, info.channels, info.image_size, info.image_size, device=device)
    y = torch.randint(0, info.num_classes, (batch_size,), device=device)

    def timed(step) -> float:
        times = []
        for i in range(warmup + steps):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i >= warmup:
                times.append(time.perf_counter() - start)
        return sorted(times)[len(times) // 2]

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    def eval_step() -> None:
        with torch.no_grad():
            model(x)

    model.train()
    train = timed(train_step)
    model.eval()
    evaluate = timed(eval_step)
    threads = torch.get_num_threads()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({threads} thread{'s' * (threads > 1)})"
    return Throughput(batch_size / train, batch_size / evaluate, name)


@dataclass
class Estimate:
    """A plan's estimate: each run's seconds, the work summed, and the throughputs measured per (architecture, dataset)."""

    seconds: dict[str, float]
    relearn_seconds: float
    work: Work
    originals: int
    rates: dict[tuple[str, str], Throughput]

    @property
    def hours(self) -> float:
        return sum(self.seconds.values()) / 3600

    def summary(self) -> str:
        devices = sorted({rate.device for rate in self.rates.values()})
        return (f"estimate: {self.work.train:,} images trained, {self.work.evaluate:,} evaluated"
                + (f", {self.work.pretrain:,} to pretrain {self.originals} original{'s' * (self.originals > 1)}" if self.originals else "")
                + f": {duration(sum(self.seconds.values()))}"
                + (f" (and at most {duration(self.relearn_seconds)} more of relearning: {self.work.relearn:,} images)" if self.work.relearn else "")
                + f" on {', '.join(devices) or 'this machine'} (measured throughput, images/s:"
                + "; ".join(f" {arch} on {dataset} train {rate.train:,.0f}, eval {rate.evaluate:,.0f}" for (arch, dataset), rate in sorted(self.rates.items()))
                + ")")


def estimate(runs: list[tuple[str, object, UnlearningScenario, Pretrained, object]]) -> Estimate:
    """The `Estimate` of runs given as (key, method, scenario, original, evaluation), built and not run; an original to
    pretrain is counted once, in the first run that needs it."""
    rates: dict[tuple[str, str], Throughput] = {}
    originals: set[str] = set()
    seconds, train, evaluate, pretrain, relearn, relearn_seconds = {}, 0, 0, 0, 0, 0.0
    for key, method, scenario, pretrained, evaluation in runs:
        work = run_work(method, scenario, pretrained, evaluation)
        info = scenario.info
        if (pretrained.arch, info.name) not in rates:
            rates[pretrained.arch, info.name] = measure_throughput(pretrained.arch, info, RECIPES.get(pretrained.recipe_name(info.name)).batch_size)
        rate = rates[pretrained.arch, info.name]
        first = bool(work.pretrain) and work.original not in originals
        if first:
            originals.add(work.original)
        seconds[key] = rate.seconds(work, pretrain=first)
        relearn_seconds += rate.relearn_seconds(work)
        train, evaluate, pretrain, relearn = train + work.train, evaluate + work.evaluate, pretrain + (work.pretrain if first else 0), relearn + work.relearn
    return Estimate(seconds, relearn_seconds, Work(train, evaluate, pretrain, relearn), len(originals), rates)


def duration(seconds: float) -> str:
    """`42 s`, `17 min`, `3.2 h`."""
    return f"{seconds:.0f} s" if seconds < 60 else f"{seconds / 60:.0f} min" if seconds < 3600 else f"{seconds / 3600:.1f} h"
