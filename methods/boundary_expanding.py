"""BE: boundary expanding (Chen et al., *Boundary Unlearning: Rapid Forgetting of Deep Networks via Shifting the
Decision Space*, CVPR 2023, §4.2), a baseline of SalUn and Unlearn-Sparse."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from datamodules.access import FORGET_ONLY, DataView
from methods.base import UnlearningMethod, make_optimizer, register_method


@register_method
class BE(UnlearningMethod):
    """Give the head one more output, a shadow class K beside the K classes, train the whole model with cross-entropy
    to put every forget image in it, then prune the shadow output: D_f lands wherever its second choice lies.

    As the OPTML code (OPTML-Group/Unlearn-Saliency @ Classification/unlearn/boundary_ex.py, `expand_model` and
    `boundary_expanding_iter`): the head's K rows and biases keep the original's values, the new row and bias are
    a linear layer's default initialisation (U(−1/√D, 1/√D), D the feature width), the label of every forget image
    is K, the model in train mode, one optimizer over every parameter, the new row's included; D_f only.
    The new output lives beside the model (`extra`, its logit concatenated after the head's K), so the unlearned
    model keeps its K-output head, whose weights are the trained ones, and `extra` is dropped when fitting ends.

    Defaults (`configs/methods/BE/optml.yaml`): the OPTML runs (JingWu321/Scissorhands @ Classification/sh/
    main_0.1_cifar10.sh, SalUn Table 1's BE): SGD lr 1e-6, momentum 0.9, weight decay 5e-4, 10 epochs, batch 256
    (Classification/arg_parser.py). That rate hardly moves a model in 10 epochs over D_f alone: recorded as
    published, not tuned.

    Readings: the paper prunes the shadow neuron after training; OPTML's code never does, so its evaluation and MIA
    run over K + 1 outputs (a forget image predicted as class K counts as misclassified). The benchmark's splits and
    measures have K classes, so that variant is not offered: the neuron is always pruned.
    """

    data_access = FORGET_ONLY
    train_splits = ("forget",)
    defaults = "configs/methods/BE/optml.yaml"

    def __init__(self, *, neuron_seed: int | None = None, **kwargs) -> None:
        """
        Args:
            neuron_seed: the seed of the shadow output's initialisation; null: drawn from the run's seed.
        """
        super().__init__(**kwargs)
        self.neuron_seed = neuron_seed
        self.extra: nn.Linear | None = None

    def attach(self, original, data, pretrained, evaluator) -> None:
        super().attach(original, data, pretrained, evaluator)
        head = self.model.head
        self.extra = nn.Linear(head.in_features, 1, bias=head.bias is not None, device=head.weight.device, dtype=head.weight.dtype)

    def prepare(self, data: DataView) -> None:
        """The shadow output's row (and bias) drawn as `nn.Linear` draws a row of its (K + 1) × D weight."""
        run_seed = torch.Generator().manual_seed(torch.initial_seed())  # (a draw from it, not the run's seed itself: the original's init)
        seed = self.neuron_seed if self.neuron_seed is not None else int(torch.randint(2**31, (1,), generator=run_seed))
        generator, bound = torch.Generator().manual_seed(seed), 1 / math.sqrt(self.extra.in_features)
        with torch.no_grad():
            for tensor in self.extra.parameters():
                tensor.copy_(torch.empty(tensor.shape).uniform_(-bound, bound, generator=generator))

    def expanded_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The K + 1 logits: the head's K, then the shadow class's."""
        features = self.model.features(x)
        return torch.cat([self.model.head(features), self.extra(features)], dim=1)

    def configure_optimizers(self):
        return make_optimizer(self.optimizer_spec, [*self.model.parameters(), *self.extra.parameters()])

    def training_step(self, batch, batch_idx):
        x, _ = batch["forget"]
        shadow = torch.full((len(x),), self.num_classes, dtype=torch.long, device=x.device)
        loss = F.cross_entropy(self.expanded_logits(x), shadow)
        self.log_train("train/loss", loss)
        return loss

    def on_fit_end(self) -> None:
        self.extra = None  # pruned: the model's K outputs are the unlearned classifier
