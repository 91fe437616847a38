"""Lightning callbacks for the work every unlearning run shares: its cost, its stop criterion and divergence,
its per-epoch curves, a best-state choice, and BatchNorm's mode; what of it a resumed fit takes back.

`UnlearningMethod.configure_callbacks` attaches the shared ones to every fit; a method adds its own (Oracle:
`BestState`). They write what they measure onto the method (`cost`, `stopped_at`, `diverged`, `curves`), where
the result record reads it. Evaluations they run use the scenario's evaluation loaders (the benchmark's, not the
method's data view). Each iterates a DataLoader, which draws its base seed from the global RNG: adding or
removing an evaluation during training shifts later random draws, so it can change a run's numbers (Oracle's
committed entries moved by up to 0.58 when the stop check and the best-state choice were made to share one
evaluation). Evaluation loaders with their own generator would end that, and change every committed entry.

A fit resumed from a Lightning checkpoint (`trainer.fit(…, ckpt_path=…)`, written at an epoch's end) goes on as if it
had never stopped: what each callback measured so far is in the checkpoint (`state_dict`) and is taken back at the
fit's start (`Resumable`); the method puts back its weights and the random generators (`UnlearningMethod.on_fit_start`).
"""

from __future__ import annotations

import copy
import math
import re
import resource
import time
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch import nn
from torch.optim.swa_utils import update_bn
from torch.utils.data import DataLoader

from benchmark.metrics.accuracy import evaluate_accuracy
from benchmark.metrics.curves import SCENARIO_CURVE_SPLITS, CURVE_SPLITS


class MemoryPeak:
    """The peak memory a stretch of work adds to what was in use when it started, in MiB: on CUDA the peak of
    allocated memory since `start` minus what was allocated then; on a CPU the peak resident set size since `start`
    (Linux resets the process's high-water mark through /proc/self/clear_refs) minus the resident size then. So it
    is the unlearning's own working memory (activations, gradients, optimizer state, copies), not the process's
    libraries, data and original model (~900 MB for digits)."""

    def start(self, device: torch.device) -> None:
        self.device = device
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            self.base = torch.cuda.memory_allocated(device)
            return
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.reset = True
        except OSError:  # not Linux: the high-water mark since the process started
            self.reset = False
        self.base = _resident_bytes("VmRSS")

    def mib(self) -> float:
        if self.device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(self.device)
        else:
            peak = _resident_bytes("VmHWM") if self.reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return max(peak - self.base, 0) / 2**20


def _resident_bytes(field: str) -> int:
    """`VmRSS` (now) or `VmHWM` (peak) of this process from /proc/self/status (0 where there is none)."""
    try:
        match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    except OSError:
        return 0
    return int(match.group(1)) * 1024 if match else 0


def split_accuracy(trainer: pl.Trainer, method: pl.LightningModule, split: str) -> float:
    """Accuracy of the method's model on the whole `split` now (NaN when an output is not finite)."""
    return evaluate_accuracy(method.model, trainer.datamodule.eval_loader(split), method.num_classes, method.device)


def _here(trainer: pl.Trainer) -> dict[str, int]:
    return {"epoch": trainer.current_epoch, "step": trainer.global_step}


class Resumable(pl.Callback):
    """A callback whose measures survive a resumed fit: Lightning hands it its saved `state_dict` while restoring the
    checkpoint, before `on_fit_start`, which then takes it back (`resumed`) instead of starting afresh."""

    resumed: dict | None = None

    def load_state_dict(self, state_dict: dict) -> None:
        self.resumed = state_dict

    def setup(self, trainer, pl_module, stage: str) -> None:
        self.trainer, self.module = trainer, pl_module  # (`state_dict` takes no arguments)


class CostMeter(Resumable):
    """`cost/seconds` (the unlearning itself, `prepare` included; seconds other callbacks declare as
    `uncounted_seconds` excluded; one-off work a method read from a cache, `reused_seconds`, counted as spent),
    `cost/prepare_seconds`, `cost/reused_seconds`, `cost/epochs`, `cost/steps`, `cost/peak_memory_mb`.

    A resumed fit counts the seconds up to its checkpoint, then its own from its first epoch (its repeated `prepare`
    not counted twice; the work lost after the checkpoint not counted), and `cost/resumes`."""

    def on_fit_start(self, trainer, pl_module) -> None:
        self.memory = MemoryPeak()
        self.memory.start(pl_module.device)
        pl_module.reused_seconds = 0.0
        self.start, self.offset, self.peak_before = time.perf_counter(), 0.0, 0.0

    def seconds(self, trainer, pl_module) -> float:
        uncounted = sum(getattr(callback, "uncounted_seconds", 0.0) for callback in trainer.callbacks)
        return time.perf_counter() - self.start - uncounted + pl_module.reused_seconds + self.offset

    def on_train_start(self, trainer, pl_module) -> None:
        if self.resumed is not None:
            self.offset = self.resumed["seconds"] - self.seconds(trainer, pl_module)
            self.peak_before = self.resumed["peak_memory_mb"]
            pl_module.cost.update(self.resumed["cost"])
            pl_module.cost["cost/resumes"] = pl_module.cost.get("cost/resumes", 0.0) + 1
            return
        pl_module.cost["cost/prepare_seconds"] = self.seconds(trainer, pl_module)
        pl_module.cost["cost/reused_seconds"] = pl_module.reused_seconds

    def on_fit_end(self, trainer, pl_module) -> None:
        pl_module.cost.setdefault("cost/prepare_seconds", self.seconds(trainer, pl_module))  # no epoch to train
        pl_module.cost.setdefault("cost/reused_seconds", pl_module.reused_seconds)
        pl_module.cost["cost/seconds"] = self.seconds(trainer, pl_module)
        pl_module.cost["cost/epochs"] = trainer.current_epoch
        pl_module.cost["cost/steps"] = trainer.global_step
        pl_module.cost["cost/peak_memory_mb"] = max(self.memory.mib(), self.peak_before)

    def state_dict(self) -> dict:
        return {"seconds": self.seconds(self.trainer, self.module), "peak_memory_mb": max(self.memory.mib(), self.peak_before),
                "cost": dict(self.module.cost)}


class StopCriterion(Resumable):
    """Stop when the budget's target holds (`misclassify`: forget/acc = 0, seed 001 Algorithm 3; `relabel`:
    relabel/acc = 1), checked after every optimizer step or every epoch (`budget.stop_check`); stop as diverged
    when the training loss, the outputs the check sees or the final weights are not finite (no arg-max of
    non-finite outputs "misclassifies" anything). Sets the method's `stopped_at` and `diverged`."""

    def on_fit_start(self, trainer, pl_module) -> None:
        pl_module.stopped_at, pl_module.diverged = (self.resumed["stopped_at"], self.resumed["diverged"]) if self.resumed else (None, None)

    def on_train_start(self, trainer, pl_module) -> None:
        if pl_module.stopped_at is not None or pl_module.diverged is not None:  # (resumed from the checkpoint of its last epoch)
            trainer.should_stop = True

    def state_dict(self) -> dict:
        return {"stopped_at": self.module.stopped_at, "diverged": self.module.diverged}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None and not torch.isfinite(loss).all() and pl_module.diverged is None:
            pl_module.diverged = _here(trainer)
            trainer.should_stop = True
            return
        if pl_module.budget.stop_check == "step":
            self.check(trainer, pl_module)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if pl_module.budget.stop_check == "epoch" and pl_module.diverged is None:
            self.check(trainer, pl_module)

    def on_fit_end(self, trainer, pl_module) -> None:
        if pl_module.diverged is None and not all(torch.isfinite(p).all() for p in pl_module.model.parameters()):
            pl_module.diverged = _here(trainer)  # the last step made the weights non-finite

    def check(self, trainer, pl_module) -> None:
        target = pl_module.stop_target
        if pl_module.stopped_at is not None or target == "none":
            return
        accuracy = split_accuracy(trainer, pl_module, "forget" if target == "misclassify" else "relabel")
        if math.isnan(accuracy):
            pl_module.diverged = pl_module.diverged or _here(trainer)
        elif accuracy <= 0.0 if target == "misclassify" else accuracy >= 1.0:
            pl_module.stopped_at = _here(trainer)
        else:
            return
        trainer.should_stop = True


class Curves(Resumable):
    """Accuracy on forget / retain / test (and the scenario's `SCENARIO_CURVE_SPLITS`) after the method's
    `prepare` and before its first epoch (seed 003 §4's epoch 0, "right after masking"), then after every epoch, in the
    method's `curves` (`--evaluation.curves`); a method that trains no epoch gets its one point at the end. Its time is
    not part of the cost."""

    def __init__(self) -> None:
        self.uncounted_seconds = 0.0

    def on_fit_start(self, trainer, pl_module) -> None:
        pl_module.curves, self.uncounted_seconds = copy.deepcopy(self.resumed["curves"]) if self.resumed else {}, 0.0

    def on_train_start(self, trainer, pl_module) -> None:
        if self.resumed is None:
            self.record(trainer, pl_module)

    def state_dict(self) -> dict:
        return {"curves": self.module.curves}

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.record(trainer, pl_module)

    def on_fit_end(self, trainer, pl_module) -> None:
        if not pl_module.curves:
            self.record(trainer, pl_module)

    def record(self, trainer, pl_module) -> None:
        start = time.perf_counter()
        for split in (*CURVE_SPLITS, *(s for s in SCENARIO_CURVE_SPLITS if s in trainer.datamodule.splits)):
            pl_module.curves.setdefault(f"{split}/acc", []).append(split_accuracy(trainer, pl_module, split))
        self.uncounted_seconds += time.perf_counter() - start


class BestState(Resumable):
    """Keep the weights with the lowest (`mode="min"`) or highest (`"max"`) accuracy on `split` after every epoch
    (ties: the earliest, as `ModelCheckpoint`) in memory and restore them when training ends. An epoch after which
    the run diverged is never kept. Its evaluations are part of the method, so part of its cost."""

    def __init__(self, split: str, mode: str = "min") -> None:
        self.split, self.mode = split, mode
        self.history: list[float] = []
        """The split's accuracy after each epoch."""
        self.best_epoch: int | None = None
        self._state: dict[str, torch.Tensor] | None = None

    def on_fit_start(self, trainer, pl_module) -> None:
        self.history, self.best_epoch, self._state = [], None, None
        if self.resumed:
            self.history, self.best_epoch, self._state = list(self.resumed["history"]), self.resumed["best_epoch"], self.resumed["state"]

    @property
    def state_key(self) -> str:
        return self._generate_state_key(split=self.split, mode=self.mode)

    def state_dict(self) -> dict:
        return {"history": self.history, "best_epoch": self.best_epoch, "state": self._state}

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if pl_module.diverged is not None:
            return
        accuracy = split_accuracy(trainer, pl_module, self.split)
        self.history.append(accuracy)
        if not math.isnan(accuracy) and (self._state is None or self._gap(accuracy) < self._gap(self.history[self.best_epoch])):
            self.best_epoch = len(self.history) - 1
            self._state = {name: value.detach().clone() for name, value in pl_module.model.state_dict().items()}

    def _gap(self, accuracy: float) -> float:
        return accuracy if self.mode == "min" else 1.0 - accuracy

    def on_train_end(self, trainer, pl_module) -> None:
        if self._state is not None:
            pl_module.model.load_state_dict(self._state)


BN_SAMPLES = 5000
"""Retain images `batchnorm="reestimate"` re-estimates the running statistics on (issue 16's diagnostic: 5,000)."""


class BatchNormMode(pl.Callback):
    """`batchnorm="frozen"`: BatchNorm layers stay in evaluation mode while the method trains (running statistics
    used, never updated; their affine weights still train). `"train"` (the authors' code): Lightning's train mode.
    `"reestimate"`: train mode, then, once training ends (after any best-state choice), the running statistics are
    recomputed on `BN_SAMPLES` retain images of a seeded draw (the same rows on every process) by
    `torch.optim.swa_utils.update_bn`: the plain average of the per-batch statistics of batches of 250, and
    nothing else changes."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if pl_module.batchnorm == "frozen":
            for module in pl_module.model.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()

    def on_fit_end(self, trainer, pl_module) -> None:
        if pl_module.batchnorm == "reestimate":
            retain = pl_module.data["retain"]
            rows = torch.randperm(len(retain), generator=torch.Generator().manual_seed(0))[:BN_SAMPLES].sort().values
            subset = retain.subset(rows)
            loader = DataLoader(subset, batch_size=250, collate_fn=getattr(subset, "collate_fn", None))  # 5,000 = 20 equal batches
            update_bn(loader, pl_module.model, device=pl_module.device)


class ChannelsLast(pl.Callback):
    """A trainer option (`--trainer.callbacks+=ChannelsLast`): the method's weights in channels_last (NHWC) memory
    format for its fit and test, so that its convolutions run in NHWC (PyTorch does when the input or the weight is):
    the layout of cuDNN's tensor-core kernels and oneDNN's fastest (issue 21; `Recipe.channels_last` does the same
    for an original's pretraining and Retrain). In the record's `numerics`: it changes the floating-point results."""

    numerics = {"memory_format": "channels_last"}

    def setup(self, trainer, pl_module, stage: str) -> None:
        pl_module.to(memory_format=torch.channels_last)


class Compile(pl.Callback):
    """A trainer option (`--trainer.callbacks+=Compile`): `torch.compile` of the method's model for its fit and test,
    in place (`nn.Module.compile`: the weights and their names stay as they are); other networks a method holds (the
    frozen original) stay eager. In the record's `numerics`: it changes the floating-point results.

    Args:
        backend: torch.compile's backend (`inductor` needs a C++ compiler on a CPU; `aot_eager` none).
        mode: torch.compile's mode (None, `reduce-overhead`, `max-autotune`, ...).
    """

    def __init__(self, backend: str = "inductor", mode: str | None = None) -> None:
        self.backend, self.mode = backend, mode
        self.compiled: nn.Module | None = None

    @property
    def numerics(self) -> dict:
        return {"compile": {"backend": self.backend, "mode": self.mode}}

    def setup(self, trainer, pl_module, stage: str) -> None:
        if pl_module.model is not self.compiled:  # (a test after the fit keeps the compiled model)
            pl_module.model.compile(backend=self.backend, mode=self.mode)
            self.compiled = pl_module.model


class EpochOfTotal(pl.Callback):
    """The progress bar says `Epoch 3/30` (Lightning's says `Epoch 2`, counted from 0, without the total)."""

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        bar = getattr(trainer.progress_bar_callback, "train_progress_bar", None)  # (set by the bar's own hook, which runs first)
        if bar is not None and hasattr(bar, "set_description"):
            bar.set_description(f"Epoch {trainer.current_epoch + 1}/{trainer.max_epochs}")
