"""SCRUB: the student that selectively disobeys its teacher (Kurmanji, Triantafillou, Hayes & Triantafillou, *Towards
Unbounded Machine Unlearning*, NeurIPS 2023, arXiv 2302.09880), as meghdadk/SCRUB runs it."""

from __future__ import annotations


import torch
import torch.nn.functional as F
from jsonargparse.typing import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt

from benchmark.core.validation import checked
from datamodules.access import FORGET_AND_RETAIN, DataView
from methods.base import UnlearningMethod, make_optimizer, register_method
from methods.blocks.loaders import Passes
from methods.blocks.objectives import distillation_loss

MAX, MIN = "max", "min"
"""The batch keys of a max-step pass (over D_f) and a min-step pass (over D_r). Not scenario split names: the scenario
does not augment them; the method does when `augment` is set."""
STEP_SPLIT = {MAX: "forget", MIN: "retain"}


def kl_t(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL_T = T² · KL(softmax(teacher / T) ‖ softmax(student / T)), summed over the batch and divided by its size
    (the authors' `DistillKL`, `distiller_zoo/KD.py`): `blocks.objectives.distillation_loss` with weight 1."""
    return distillation_loss(student, teacher, None, 1.0, temperature)


def decay_factor(epoch: int, milestones: tuple[int, ...], rate: float) -> float:
    """The lr factor of 0-based `epoch`: rate ** (milestones < epoch + 1), the authors' `adjust_learning_rate` with
    their 1-based epochs (`helper/util.py`: `np.sum(epoch > np.asarray(lr_decay_epochs))`)."""
    return rate ** sum(m < epoch + 1 for m in milestones)


@register_method
class SCRUB(UnlearningMethod):
    """A student, started from the original f_o, is trained against the frozen teacher f_o (evaluation mode): in
    epoch e = 1..E, when e ≤ `msteps`, a max step = one pass over D_f minimising −KL_T(f_o ‖ student) (pushing the
    student away from the teacher on D_f), then a min step = one pass over D_r minimising γ·CE + α·KL_T(f_o ‖
    student). One optimizer for both; its lr is multiplied by `lr_decay_rate` at each `lr_decay_epochs` milestone
    passed (the lr of epoch e is lr · rate^#{m < e}). Paper §3 (the min-max objective; the alternation of max- and
    min-epochs, max-epochs only for the first ones, its Algorithm); code meghdadk/SCRUB @
    thirdparty/repdistiller/helper/loops.py `train_distill`, distiller_zoo/KD.py `DistillKL`, driven by
    large_scale_unlearning.ipynb cell 36.

    As the authors' code: the student is in train mode in both steps (`batchnorm: train`), the teacher in evaluation
    mode; D_f and D_r batches differ in size (`forget_batch_size`, 512, vs `budget.batch_size`, 256, hard-coded in
    large_scale_unlearning.ipynb cell 28; their `sgda_batch_size` / `del_batch_size` are set but unused); the term
    β·(other distiller) is 0 for `kd` and is omitted; the notebooks' loaders have no augmentation (`augment=False`;
    `True` gives the dataset's training augmentation). An epoch here is one SCRUB epoch (its passes over D_f, then
    D_r): `budget.max_epochs` is E and `budget.stop_check=epoch` checks after the min step.

    Not implemented: SCRUB+R (the paper's rewinding; resnet50_cifar100.ipynb cell 19) saves a checkpoint per epoch
    and keeps the one whose D_f error is closest to the error on held-out *validation* images of the forgotten
    classes. The method's data view holds only D_f and D_r: error on D_r (trained on) is no proxy for held-out
    error, so the choice cannot be made with the data the method may see.

    Defaults (`configs/methods/SCRUB/kurmanji2023.yaml`): the large-scale CIFAR-10 run (large_scale_unlearning.ipynb
    cells 28, 32): SGD lr 5e-4, momentum 0.9, weight decay 5e-4, E = 3, msteps = 2, γ = 0.99, α = 0.001, T = 4,
    milestones [3, 5, 9] (never reached in 3 epochs), batches 256 (D_r) / 512 (D_f). `kurmanji2023_small.yaml`: the
    small-scale run (small_scale_unlearning.ipynb cells 26, 30): Adam lr 5e-4, weight decay 0.1, E = 10, msteps = 3,
    γ = 1, α = 0.5, T = 2, milestones [5, 8, 9], batches 32 / 64.
    """

    data_access = FORGET_AND_RETAIN
    train_splits = ("forget", "retain")
    defaults = "configs/methods/SCRUB/kurmanji2023.yaml"

    def __init__(self, *, msteps: NonNegativeInt = 2, gamma: NonNegativeFloat = 0.99, alpha: NonNegativeFloat = 0.001,
                 temperature: PositiveFloat = 4.0, lr_decay_epochs: list[PositiveInt] = (3, 5, 9), lr_decay_rate: PositiveFloat = 0.1,
                 forget_batch_size: PositiveInt = 512, augment: bool = False, **kwargs) -> None:
        """
        Args:
            msteps: the first `msteps` epochs start with a max step over D_f (the authors' `msteps`); later epochs
                have the min step only.
            gamma: γ, the weight of the cross-entropy on D_r in the min step.
            alpha: α, the weight of KL_T to the teacher on D_r in the min step.
            temperature: T of KL_T (the authors' `kd_T`).
            lr_decay_epochs: the lr milestones (1-based epochs): the lr of epoch e is lr · rate^#{m < e}.
            lr_decay_rate: the factor per milestone passed.
            forget_batch_size: the batch size of the max step's D_f loader (D_r's is `budget.batch_size`).
            augment: give the batches the dataset's training augmentation (the authors' loaders have none).
        """
        super().__init__(**kwargs)
        self.msteps, self.gamma, self.alpha, self.temperature = msteps, gamma, alpha, temperature
        self.lr_decay_epochs = tuple(checked("SCRUB.lr_decay_epochs", PositiveInt, m) for m in lr_decay_epochs)
        self.lr_decay_rate, self.forget_batch_size, self.augment = lr_decay_rate, forget_batch_size, augment
        self.augmented_keys = (MAX, MIN) if augment else ()

    def on_fit_start(self) -> None:
        super().on_fit_start()
        self.trainer.reload_dataloaders_every_n_epochs = 1  # (an epoch with a max step is longer)

    def passes(self, epoch: int) -> list[str]:
        """The steps of 0-based `epoch`: a max step while epoch < msteps, then always a min step."""
        return [MAX, MIN] if epoch < self.msteps else [MIN]

    def train_loader(self, data: DataView) -> Passes:
        batch = {MAX: self.forget_batch_size, MIN: self.batch_size()}
        loaders = [(step, data.loader(STEP_SPLIT[step], batch[step])) for step in self.passes(self.current_epoch)]
        return Passes(lambda epoch: loaders, sum(len(loader) for _, loader in loaders), lambda: self.current_epoch)

    def configure_optimizers(self):
        optimizer = make_optimizer(self.optimizer_spec, self.model.parameters())
        milestones, rate = self.lr_decay_epochs, self.lr_decay_rate
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: decay_factor(epoch, milestones, rate))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "epoch"}}

    def training_step(self, batch, batch_idx):
        ((step, (x, y)),) = batch.items()
        student = self.model(x)
        with torch.no_grad():
            teacher = self.original.eval()(x)
        divergence = kl_t(student, teacher, self.temperature)
        loss = -divergence if step == MAX else self.gamma * F.cross_entropy(student, y) + self.alpha * divergence
        self.log_train("train/loss", loss)
        return loss
