"""The base class of every unlearning method: shared mechanics live here, once.

A method holds the model under unlearning and a frozen copy of the original, declares the data it
may see (`data_access`), may prepare once before unlearning (`prepare`: noise, adversarial examples,
importance scores, masks), and implements `training_step`. The base supplies the optimizer, the
stop criterion, the timing of its own cost and the evaluation on every named split; a method never
computes its own evaluation numbers.
"""

from __future__ import annotations

import copy
import inspect
import math
import resource
import time
from dataclasses import dataclass
from typing import ClassVar, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import CombinedLoader
from torch import nn

from benchmark.curves import CURVE_SPLITS
from benchmark.errors import UnlearnBenchError
from benchmark.evaluation import Evaluation, Evaluator
from benchmark.metrics import evaluate_accuracy
from benchmark.pretraining import Pretrained
from benchmark.registry import Registry
from datamodules.access import FORGET_ONLY, DataAccess, DataView
from datamodules.scenarios import UnlearningScenario

StopTarget = Literal["none", "misclassify", "relabel"]

def peak_memory_mb(device: torch.device) -> float:
    """Peak accelerator memory since the last reset (CUDA), else the process's peak resident set size."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass(frozen=True)
class Settings:
    """The shared hyperparameters of `UnlearningMethod.__init__`."""

    lr: float
    momentum: float
    weight_decay: float
    batch_size: int
    max_epochs: int
    stop: StopTarget
    stop_check: Literal["epoch", "step"]


METHODS: Registry[type["UnlearningMethod"]] = Registry("method")


def register_method(cls: type[UnlearningMethod]) -> type[UnlearningMethod]:
    """Register a method class under its class name (the name used by `--model`)."""
    return METHODS.register(cls.__name__)(cls)


class UnlearningMethod(pl.LightningModule):
    """Base of all methods (see the module docstring). Subclasses set `data_access` and `train_splits`."""

    data_access: ClassVar[DataAccess] = FORGET_ONLY
    train_splits: ClassVar[tuple[str, ...]] = ("forget",)
    """Splits iterated in one training epoch; the longest defines the epoch, shorter ones cycle."""
    ignores_original: ClassVar[bool] = False
    """Whether the result does not depend on the original model's weights (Retrain): U-LiRA's shadows then need no originals."""

    def __init__(
        self,
        *,
        lr: float = 1e-3,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        batch_size: int = 64,
        max_epochs: int = 1,
        stop: StopTarget = "none",
        stop_check: Literal["epoch", "step"] = "epoch",
    ) -> None:
        """
        Args:
            lr: SGD learning rate.
            momentum: SGD momentum.
            weight_decay: SGD weight decay.
            batch_size: training batch size.
            max_epochs: most epochs of unlearning (the trainer's `max_epochs` is set from it).
            stop: stop early when the forget set is fully misclassified (`misclassify`: forget/acc = 0,
                seed 001 Algorithm 3) or fully relabeled (`relabel`: relabel/acc = 1); `none` never.
            stop_check: check the stop criterion after every optimizer `step` or every `epoch`.
        """
        super().__init__()
        self.save_hyperparameters()
        # LightningCLI replaces `hparams` by the parsed init args of the subclass, which may omit these.
        self.settings = Settings(lr, momentum, weight_decay, batch_size, max_epochs, stop, stop_check)
        self.model: nn.Module | None = None
        self.original: nn.Module | None = None
        self.evaluator: Evaluator | None = None
        self.cost: dict[str, float] = {}
        self.stopped_at: dict[str, int] | None = None
        self.diverged: dict[str, int] | None = None
        """Where the training loss stopped being finite (training stops there), or None."""
        self.reused_seconds = 0.0
        """Seconds of one-off work `prepare` read from a cache instead of repeating it (e.g. an adversarial set made by
        another method on the same original, data and seed); the cost counts them as spent (`cost/reused_seconds`)."""
        self.results: dict[str, float] = {}
        self.curves: dict[str, list[float]] = {}
        """With `--evaluation.curves`: accuracy per split before unlearning and after every epoch."""
        self._curve_seconds = 0.0

    # ---- set up by the runner ----
    def attach(self, original: nn.Module, scenario: UnlearningScenario, pretrained: Pretrained, evaluation: Evaluation | None = None) -> None:
        """Take the original model: a frozen copy is kept, a trainable copy is unlearned."""
        self.original = copy.deepcopy(original).eval().requires_grad_(False)
        self.model = copy.deepcopy(original).train().requires_grad_(True)
        self.num_classes = scenario.info.num_classes
        self.pretrained = pretrained
        self.evaluation = evaluation or Evaluation()
        self.evaluator = Evaluator(scenario.eval_split_names, self.num_classes, self.evaluation)

    def fresh_copy(self) -> "UnlearningMethod":
        """A new, unattached instance of this method with the same hyperparameters (for shadow runs)."""
        parameters = inspect.signature(type(self).__init__).parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
        return type(self)(**{k: v for k, v in self.hparams.items() if takes_any or k in parameters})

    def num_epochs(self) -> int:
        return self.settings.max_epochs

    def batch_size(self) -> int:
        return self.settings.batch_size

    # ---- what a method implements ----
    def prepare(self, data: DataView) -> None:
        """One-off work before unlearning (noise, adversarial examples, importances); counted in the cost."""

    def train_loader(self, data: DataView):
        """The training iterable: by default `train_splits` combined, batches as `{split: (x, y)}`."""
        return CombinedLoader({name: data.loader(name, self.batch_size()) for name in self.train_splits}, mode="max_size_cycle")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def configure_optimizers(self):
        h = self.settings
        return torch.optim.SGD(self.model.parameters(), lr=h.lr, momentum=h.momentum, weight_decay=h.weight_decay)

    # ---- shared mechanics: cost, stop criterion ----
    def on_fit_start(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        self._fit_start = time.perf_counter()
        datamodule = self.trainer.datamodule
        if "relabel" in self.train_splits and "relabel" not in datamodule.splits:
            raise UnlearnBenchError(f"{type(self).__name__} trains on the request's new labels and needs a request with new labels "
                                    f"(e.g. RandomInstances relabel=True); request {datamodule.request.hash[:16]} has none")
        self.reused_seconds = 0.0
        self.prepare(datamodule.view(type(self).__name__, self.data_access, getattr(self, "retain_subset_size", None)))
        self.cost["cost/prepare_seconds"] = time.perf_counter() - self._fit_start + self.reused_seconds
        self.cost["cost/reused_seconds"] = self.reused_seconds
        self.stopped_at = None
        self.diverged = None
        self.curves, self._curve_seconds = {}, 0.0
        self._record_curves()

    def on_fit_end(self) -> None:
        self.cost["cost/seconds"] = time.perf_counter() - self._fit_start - self._curve_seconds + self.reused_seconds
        if self.diverged is None and not all(torch.isfinite(p).all() for p in self.model.parameters()):
            self.diverged = {"epoch": self.trainer.current_epoch, "step": self.trainer.global_step}  # the last step made the weights non-finite
        self.cost["cost/epochs"] = self.trainer.current_epoch
        self.cost["cost/steps"] = self.trainer.global_step
        self.cost["cost/peak_memory_mb"] = peak_memory_mb(self.device)

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None and not torch.isfinite(loss).all() and self.diverged is None:
            self.diverged = {"epoch": self.trainer.current_epoch, "step": self.trainer.global_step}
            self.trainer.should_stop = True
            return
        if self.settings.stop_check == "step":
            self._check_stop()

    def on_train_epoch_end(self) -> None:
        self._record_curves()
        if self.settings.stop_check == "epoch" and self.diverged is None:
            self._check_stop()

    def _record_curves(self) -> None:
        """With `--evaluation.curves`, accuracy on forget / retain / test now (not counted in the cost)."""
        if not self.evaluation.curves:
            return
        start, datamodule = time.perf_counter(), self.trainer.datamodule
        for split in CURVE_SPLITS:
            accuracy = evaluate_accuracy(self.model, datamodule.eval_loader(split), self.num_classes, self.device)
            self.curves.setdefault(f"{split}/acc", []).append(accuracy)
        self._curve_seconds += time.perf_counter() - start

    def stop_accuracy(self) -> float | None:
        """Accuracy of the stop target's split (forget or relabel) on the whole split now; None when `stop` is `none`.
        NaN when an output is not finite (`evaluate_accuracy`)."""
        target = self.settings.stop
        if target == "none":
            return None
        split = "forget" if target == "misclassify" else "relabel"
        return evaluate_accuracy(self.model, self.trainer.datamodule.eval_loader(split), self.num_classes, self.device)

    def _check_stop(self) -> None:
        """Stop when the target holds; non-finite outputs are a divergence (no arg-max of them "misclassifies" anything)."""
        if self.stopped_at is not None or (acc := self.stop_accuracy()) is None:
            return
        here = {"epoch": self.trainer.current_epoch, "step": self.trainer.global_step}
        if math.isnan(acc):
            self.diverged = self.diverged or here
        elif acc <= 0.0 if self.settings.stop == "misclassify" else acc >= 1.0:
            self.stopped_at = here
        else:
            return
        self.trainer.should_stop = True

    # ---- evaluation: the same for every method ----
    def test_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        x, y, indices = batch
        split = self.trainer.datamodule.eval_split_names[dataloader_idx]
        self.evaluator.update(split, self.model(x), y, indices)

    def on_test_epoch_end(self) -> None:
        self.results = self.evaluator.compute()
        self.evaluator.reset()
        if self.trainer.loggers:
            self.log_dict(self.results, rank_zero_only=True)
