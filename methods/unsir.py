"""UNSIR: error-maximizing noise, then impair and repair (seed 002, Tarun et al., *Fast Yet Effective Machine
Unlearning*, IEEE TNNLS; eq. 1, §III, §V-D, Table V)."""

from __future__ import annotations

import math
import re
import time
from typing import Literal

import torch
import torch.nn.functional as F
from jsonargparse.typing import NonNegativeFloat, PositiveFloat, PositiveInt
from lightning.pytorch.cli import OptimizerCallable
from lightning.pytorch.utilities import CombinedLoader
from torch import nn
from torch.utils.data import ConcatDataset, TensorDataset

from benchmark.core.errors import UnlearnBenchError
from datamodules.access import REQUEST_RETAIN_SUBSET, DataView
from methods.base import UnlearningMethod, make_optimizer, optimizer_spec, register_method

ADAM_NOISE: dict = {"class_path": "torch.optim.Adam", "init_args": {"lr": 0.1}}
"""The noise's optimizer: Adam, lr 0.1 (the authors' notebook; the paper does not say)."""
PHASES = {"I": "impair", "R": "repair"}


@register_method
class UNSIR(UnlearningMethod):
    """Unlearn whole classes without seeing any of their images (zero-glance, seed 002 §III-A).

    Noise (eq. 1): for each forgotten class c, one batch of `noise_batch` images N_c shaped like the model's
    normalised input, initialised N(0, 1), labelled c; with the model frozen in evaluation mode, `noise_steps`
    steps of `noise_optimizer` minimise −CE(f(N_c), c) + λ·R(N_c) (§VI-C: 40 steps). R, which the paper prints as
    ‖w_noise‖: `norm="squared_l2"` (default) is the authors' code, the batch mean of per-sample squared L2 norms,
    for which λ = 0.1 was chosen; `norm="l2"` is the batch mean of per-sample L2 norms (~110× weaker at CIFAR
    size). The noise is made once, by the original model.

    Then one epoch per letter of `schedule` (§III-B; Table V: `IR`, `IIR`, `IRIR`): impair (`I`) trains on D_r_sub
    ∪ the noise set (every class's noise batch × `noise_copies`) at `impair_lr`, repair (`R`) on D_r_sub at
    `repair_lr`; batch 256. D_r_sub is the request's retain subset (`WholeClasses retain_per_class=n`), the only
    images UNSIR sees. The optimizer (`optimizer`: its class and arguments; its lr is replaced by the phase's) is
    unstated in the paper: the notebook's Adam by default, a fresh one for every phase, as the notebook makes one
    per phase. Neither set is augmented (the notebook's transforms have no augmentation). `body_lrs` gives the
    parameters outside `head` their own (impair, repair) learning rates (§V-D: CIFAR-100 ResNet18 head 0.01 /
    0.005, body 1e-4 / 1e-4).

    `notebook_compat=True` reproduces the official notebook (vikram2000b/Fast-Machine-Unlearning) for an
    ablation row: every impair noise image labelled 0 (its issue #2), only the first C images of each noise copy
    kept (its loop runs over `batch[0].size(0)`, the channels), and BatchNorm in train mode while making the
    noise (the model's running statistics then change; its weights do not). Its fourth difference, the first n
    images per retain class, is the scenario's `retain_sample="first"`.
    """

    data_access = REQUEST_RETAIN_SUBSET
    train_splits = ("retain",)
    defaults = "configs/methods/UNSIR/seed002.yaml"

    def __init__(self, *, noise_lambda: NonNegativeFloat = 0.1, norm: Literal["squared_l2", "l2"] = "squared_l2",
                 noise_steps: PositiveInt = 40, noise_batch: PositiveInt = 256, noise_optimizer: OptimizerCallable = ADAM_NOISE,
                 noise_copies: PositiveInt = 20, impair_lr: PositiveFloat = 0.02, repair_lr: PositiveFloat = 0.01,
                 body_lrs: tuple[PositiveFloat, PositiveFloat] | None = None, head: str = r"^head\.", schedule: str = "IR",
                 notebook_compat: bool = False, **kwargs) -> None:
        """
        Args:
            noise_lambda: λ of eq. 1 (0.1 in every experiment of the paper, §V-A).
            norm: the noise regulariser R: `squared_l2` (the authors' code) or `l2` (see the class docstring).
            noise_steps: optimisation steps of each class's noise (§VI-C: 40).
            noise_batch: noise images per forgotten class (§V-D: "a single batch", 256).
            noise_optimizer: the optimizer of the noise (class and arguments; the notebook's Adam, lr 0.1).
            noise_copies: copies of each class's noise batch in the noise set (§V-D: 20 on CIFAR, 15 on VGGFace).
            impair_lr: learning rate of an impair epoch (§V-D CIFAR-10: 0.02); of the head only with `body_lrs`.
            repair_lr: learning rate of a repair epoch (§V-D CIFAR-10: 0.01); of the head only with `body_lrs`.
            body_lrs: (impair, repair) learning rates of the parameters `head` does not match; None: one rate for all.
            head: a regular expression matching the names of the head's parameters (`model.`-relative, e.g. `head.weight`).
            schedule: the phases in order, one epoch each: `I` impair, `R` repair (Table V: IR, IIR, IRIR).
            notebook_compat: reproduce the official notebook's three differences (see the class docstring).
        """
        super().__init__(**kwargs)
        if not re.fullmatch(r"[IR]+", schedule):
            raise UnlearnBenchError(f"UNSIR.schedule = {schedule!r} is not allowed; a sequence of I (impair) and R (repair), e.g. IR, IIR, IRIR")
        if self.budget.max_epochs != len(schedule):
            raise UnlearnBenchError(f"UNSIR trains one epoch per phase: schedule {schedule} has {len(schedule)} phases but budget.max_epochs "
                                    f"is {self.budget.max_epochs}; set --model.budget.max_epochs {len(schedule)}")
        try:
            self.head = re.compile(head)
        except re.error as error:
            raise UnlearnBenchError(f"UNSIR.head = {head!r} is not a regular expression ({error})") from None
        self.noise_lambda, self.norm, self.noise_steps, self.noise_batch = noise_lambda, norm, noise_steps, noise_batch
        self.noise_optimizer_spec = optimizer_spec(noise_optimizer)
        self.noise_copies, self.impair_lr, self.repair_lr, self.body_lrs = noise_copies, impair_lr, repair_lr, body_lrs
        self.schedule, self.notebook_compat = schedule, notebook_compat
        self.noise: TensorDataset | None = None

    # ---- the noise (eq. 1) ----
    def prepare(self, data: DataView) -> None:
        if data.forget_classes is None:
            raise UnlearnBenchError("UNSIR unlearns whole classes (seed 002 §VI-E: a random cohort is beyond its scope); "
                                    "this request names no forgotten classes: use the WholeClasses scenario")
        start = time.perf_counter()
        model = self.model if self.notebook_compat else self.original  # (compat: train-mode BatchNorm, as the notebook)
        shape = (self.noise_batch, data.info.channels, data.info.image_size, data.info.image_size)
        images, labels = [], []
        for c in data.forget_classes:
            noise = self.make_noise(model, c, shape)
            kept = noise[: data.info.channels] if self.notebook_compat else noise
            images.append(self.to_pixels(kept).repeat(self.noise_copies, 1, 1, 1))
            labels.append(torch.full((len(kept) * self.noise_copies,), 0 if self.notebook_compat else c, dtype=torch.long))
        self.noise = TensorDataset(torch.cat(images), torch.cat(labels))
        self.cost["cost/noise_seconds"] = time.perf_counter() - start

    def make_noise(self, model: nn.Module, c: int, shape: tuple[int, ...]) -> torch.Tensor:
        """N_c, in the model's normalised input space, after `noise_steps` steps of eq. 1 (the model's weights frozen)."""
        noise = torch.randn(shape, device=self.device).requires_grad_(True)
        target = torch.full((shape[0],), c, dtype=torch.long, device=self.device)
        optimizer = make_optimizer(self.noise_optimizer_spec, [noise])
        was_training = model.training
        model.train(self.notebook_compat)
        requires_grad = [p.requires_grad for p in model.parameters()]
        model.requires_grad_(False)
        try:
            for step in range(self.noise_steps):
                loss = -F.cross_entropy(self.logits_of_normalised(model, noise), target) + self.noise_lambda * self.regulariser(noise)
                if not torch.isfinite(loss):
                    raise UnlearnBenchError(f"UNSIR: the noise loss of class {c} is not finite at step {step + 1} (λ = {self.noise_lambda}, "
                                            f"noise optimizer {self.noise_optimizer_spec['init_args']}); lower the noise learning rate")
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        finally:
            model.train(was_training)
            for p, flag in zip(model.parameters(), requires_grad):
                p.requires_grad_(flag)
        return noise.detach()

    def regulariser(self, noise: torch.Tensor) -> torch.Tensor:
        per_sample = noise.flatten(1).pow(2).sum(1)
        return (per_sample if self.norm == "squared_l2" else per_sample.sqrt()).mean()

    @staticmethod
    def logits_of_normalised(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """The model's output for an already normalised input (a `Classifier` normalises pixels itself)."""
        return model.head(model.backbone(x)) if hasattr(model, "normalize") else model(x)

    def to_pixels(self, noise: torch.Tensor) -> torch.Tensor:
        """Normalised noise as the pixels the model's own normalisation maps to it."""
        normalize = getattr(self.model, "normalize", None)
        if normalize is None:
            return noise.cpu()
        return (noise * normalize.std + normalize.mean).cpu()

    # ---- impair and repair ----
    @property
    def phase(self) -> str:
        return PHASES[self.schedule[min(self.trainer.current_epoch, len(self.schedule) - 1)]]

    def on_fit_start(self) -> None:
        super().on_fit_start()
        self.trainer.reload_dataloaders_every_n_epochs = 1  # (each phase has its own loader)

    def train_loader(self, data: DataView) -> CombinedLoader:
        dataset = data["retain"]
        if self.phase == "impair":
            dataset = ConcatDataset([dataset, self.noise])
            dataset.in_memory = getattr(data["retain"], "in_memory", False)  # (no loader workers for in-memory data)
        return CombinedLoader({self.phase: data.loader_over(dataset, self.batch_size())}, mode="max_size_cycle")

    def configure_optimizers(self):
        head = [p for name, p in self.model.named_parameters() if self.head.search(name)]
        body = [p for name, p in self.model.named_parameters() if not self.head.search(name)]
        if self.body_lrs is not None and (not head or not body):
            raise UnlearnBenchError(f"UNSIR.head = {self.head.pattern!r} matches {'no' if not head else 'every'} parameter of the model, "
                                    f"so body_lrs cannot apply; parameter names: {', '.join(n for n, _ in self.model.named_parameters())[:300]}")
        groups = [{"params": head, "role": "head"}, {"params": body, "role": "body"}] if self.body_lrs else [{"params": head + body, "role": "head"}]
        return make_optimizer(self.optimizer_spec, groups)

    def on_train_epoch_start(self) -> None:
        """A fresh optimizer state and the phase's learning rates (the notebook makes a new optimizer per phase)."""
        optimizer = self.optimizers().optimizer
        optimizer.state.clear()
        index = 0 if self.phase == "impair" else 1
        for group in optimizer.param_groups:
            group["lr"] = (self.impair_lr, self.repair_lr)[index] if group["role"] == "head" else self.body_lrs[index]
        self._phase_start = time.perf_counter()

    def on_train_epoch_end(self) -> None:
        key = f"cost/{self.phase}_seconds"
        self.cost[key] = self.cost.get(key, 0.0) + time.perf_counter() - self._phase_start

    def training_step(self, batch, batch_idx):
        x, y = batch[self.phase]
        loss = F.cross_entropy(self.model(x), y)
        self.log_train("train/loss", loss)
        return loss

    def steps_of(self, phase: str) -> int:
        """Optimizer steps of one `phase` epoch on one process: ⌈|set| / batch size⌉."""
        size = len(self.data["retain"]) + (len(self.noise) if phase == "impair" else 0)
        return math.ceil(size / self.batch_size())
