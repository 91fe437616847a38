"""EUk: exact unlearning of the last k blocks (Goel et al. 2022, *Towards Adversarial Evaluations for Inexact Machine
Unlearning*, arXiv 2201.06640, "EU-k"), a baseline of SCRUB and of the OPTML papers."""

from __future__ import annotations

from benchmark.models.pretraining import RECIPES, initial_model
from datamodules.access import RETAIN_FULL, DataView
from methods.base import register_method
from methods.blocks.layers import TrainsLastBlocks


@register_method
class EUk(TrainsLastBlocks):
    """Put the original's last `k` blocks (and, with `head="train"`, its head) back to the initialisation the original
    was trained from, then train them on D_r with cross-entropy, everything below frozen: the blocks are retrained
    from scratch on D_r, on top of the original's frozen lower blocks (`methods.blocks.layers` says which modules the
    last k blocks are, and how the frozen ones are kept unchanged).

    The initialisation is `initial_model` of the original's `Pretrained` (its architecture, pretraining seed and
    recipe: a fresh `build_model`, or the pretrained body a fine-tuning recipe starts from; with a
    `--pretrained.checkpoint`, that of its architecture and seed), every parameter and buffer of the reset modules
    (BatchNorm running statistics included); the reset is done in `prepare`, in the cost.

    As SCRUB's code (meghdadk/SCRUB @ resnet50_cifar100.ipynb cell 22, `euk_unlearn` with `fk_fientune`): SGD lr
    0.01, no momentum, no weight decay, batch 64, for as many epochs as the original's training (`euk_epochs =
    training_epochs`: `recipe_epochs=True`). Our default is 10 epochs (`budget.max_epochs`), as the OPTML papers run
    it (k = 1, 10 epochs, Unlearn-WorstCase issue #1). Defaults: `configs/methods/EUk/scrub.yaml`.

    Readings of what the sources leave open or disagree on:
    - the paper's "last k layers" include the classifier (its code counts from it), so by default the head is reset
      and trained (`head="train"`); SCRUB's ResNet code neither resets nor trains `fc` (`head="frozen"`; its All-CNN
      branch resets the classifier but leaves it frozen, which is not offered);
    - here every tensor of the blocks is reset. The authors' code (shash42/Evaluating-Inexact-Unlearning @
      src/methods.py, `resetFinalResnet` with `--init-checkpoint`) resets the conv and linear layers to the
      initialisation checkpoint and trains the BatchNorms in between without resetting them, for as many epochs as
      the original (62); SCRUB's ResNet code resets `layer4`'s conv and BatchNorm weights and biases and block 0's
      shortcut conv, keeping the running statistics and the shortcut's BatchNorm;
    - the frozen modules run in evaluation mode (`frozen_mode="eval"`); SCRUB's code keeps the whole model in train
      mode (`frozen_mode="train"`).
    """

    data_access = RETAIN_FULL
    defaults = "configs/methods/EUk/scrub.yaml"

    def __init__(self, *, recipe_epochs: bool = False, **kwargs) -> None:
        """
        Args:
            recipe_epochs: train for as many epochs as the original's pretraining recipe (SCRUB's code) instead of
                `budget.max_epochs`.
            head: `train`: the head is reset to its initialisation and trained with the blocks; `frozen`: neither
                (SCRUB's ResNet code).
        """
        super().__init__(**kwargs)
        self.recipe_epochs = recipe_epochs

    def num_epochs(self) -> int:
        if self.recipe_epochs and self.data is not None:
            return RECIPES.get(self.pretrained.recipe_name(self.data.info.name)).epochs
        return self.budget.max_epochs

    def prepare(self, data: DataView) -> None:
        """The trainable modules (the last k blocks, and the head with `head="train"`) set to the original's initialisation."""
        initial = initial_model(self.pretrained, data.info)
        for name in self.trainable:
            self.model.get_submodule(name).load_state_dict(initial.get_submodule(name).state_dict())
        super().prepare(data)
