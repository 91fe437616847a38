"""Seed 004's oracles (Yoon et al., *Few-shot Unlearning by Model Inversion*, §3 "intentions", §5 "Oracle"): the
original's recipe from scratch on D_r ∪ I_e, the forget set D_e relabelled by the unlearning intention."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from jsonargparse.typing import NonNegativeInt
from lightning.pytorch.utilities import CombinedLoader
from torch import nn
from torch.utils.data import DataLoader, Dataset

from benchmark.core.errors import UnlearnBenchError
from benchmark.metrics.evaluator import Evaluator
from benchmark.models.pretraining import Pretrained
from datamodules.access import FORGET_AND_RETAIN, DataView
from datamodules.requests import content_hash
from methods.base import register_method
from methods.blocks.objectives import untrained_targets
from methods.few_shot import SOFT, Intention, Rows, drawn_untrained_seed, intention_rows, rows_loss
from methods.retrain import Retrain

UNION = "intended"
"""The batch key of D_r ∪ I_e: not a split of the scenario, so listed in `augmented_keys` (the scenario augments it
as it would D_r's batches)."""


def batch_of(dataset: Dataset, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Images and labels of `dataset` at `index` (one `__getitems__` where the dataset has it); None for no index."""
    if len(index) == 0:
        return None
    if hasattr(dataset, "__getitems__"):
        x, y = dataset.__getitems__(index.tolist())[:2]
        return x, torch.as_tensor(y)
    items = [dataset[i] for i in index.tolist()]
    return torch.stack([x for x, _ in items]), torch.as_tensor([int(y) for _, y in items])


class RetainAndIntended(Dataset):
    """D_r ∪ I_e as `Rows` rows (image, label vector, loss kind): rows [0, |D_r|) are the retain split's, read when
    asked for (not copied), with their one-hot label and `SOFT` (hard cross-entropy); the next ones are I_e's."""

    def __init__(self, retain: Dataset, intended: Rows, num_classes: int) -> None:
        self.retain, self.intended, self.num_classes = retain, intended, num_classes
        self.in_memory = getattr(retain, "in_memory", False)

    def __len__(self) -> int:
        return len(self.retain) + len(self.intended)

    def __getitem__(self, index: int):
        return [column[0] for column in self.__getitems__([index])]

    def __getitems__(self, indices: Sequence[int]) -> list[torch.Tensor]:
        index = torch.as_tensor(indices, dtype=torch.long)
        in_retain = index < len(self.retain)
        parts = []
        retain = batch_of(self.retain, index[in_retain])
        if retain is not None:
            x, y = retain
            parts.append((x, F.one_hot(y, self.num_classes).float(), torch.full((len(y),), SOFT)))
        if not bool(in_retain.all()):
            parts.append(tuple(self.intended.__getitems__(index[~in_retain] - len(self.retain))))
        order = torch.cat([in_retain.nonzero().flatten(), (~in_retain).nonzero().flatten()]).argsort()  # (the sampler's order)
        return [torch.cat(column)[order] for column in zip(*parts)]

    @staticmethod
    def collate_fn(batch: list[torch.Tensor]) -> list[torch.Tensor]:
        return batch


@register_method
class IntentionOracle(Retrain):
    """Seed 004's Oracle_std / unt / neg / cor: the original's recipe from scratch on D_r ∪ I_e (§3, §5).

    §5: "Oracle is an ideal reference model trained with complete D_r and modified D_e for each task from the scratch".
    `Retrain`'s procedure (the original's recipe, initialisation, seed and batch augmentation) on D_r ∪ I_e,
    I_e = {(x_e, y'_e) : (x_e, y_e) ∈ D_e}, in one shuffled set per epoch:

    - `std` (I_e = ∅): D_r alone, exactly `Retrain` (same steps, same cache);
    - `unt`: y'_e = f(x_e; w_unt), the response of a randomly initialised model of the original's architecture
      (`untrained_seed`; its softmax, or its arg-max with `unt_labels="hard"`), soft cross-entropy;
    - `neg`: negative learning against D_e's label y_e, −log(1 − p_{y_e}(x_e)) (D_e must hold one label);
    - `cor`: cross-entropy to `correct_label` (the request's forget split carries the label the original was trained
      with, e.g. the wrong one of a mislabelled subclass; the correct one is an argument).

    D_r rows keep hard cross-entropy. D_e's rows are augmented as D_r's (the recipe's augmentation, else the dataset's;
    I_e's labels are computed once, on the plain images). The result is cached as Retrain's, keyed by D_r ∪ I_e:
    the request's training set (`ForgetRequest.training_set_hash`) plus the intention and its labels, so `std`
    shares Retrain's cache and the others have their own. Defaults: `configs/methods/IntentionOracle/seed004.yaml`.
    """

    data_access = FORGET_AND_RETAIN
    augmented_keys = (UNION,)
    defaults = "configs/methods/IntentionOracle/seed004.yaml"

    def __init__(self, *, intention: Intention = "std", correct_label: NonNegativeInt | None = None,
                 unt_labels: Literal["soft", "hard"] = "soft", untrained_seed: int | None = None) -> None:
        """
        Args:
            intention: the unlearning intention (§3): `std` (D_r alone), `unt` (an untrained model's response on D_e),
                `neg` (negative learning against D_e's label), `cor` (D_e with `correct_label`).
            correct_label: D_e's correct label, for `cor` only (§3 Oracle_cor: an annotation the request does not hold).
            unt_labels: `unt`'s labels: the untrained model's `soft` output (softmax) or its `hard` arg-max.
            untrained_seed: the seed of `unt`'s randomly initialised model w_unt; null: drawn from the original's seed as
                FewShotInversion draws it from its own (`drawn_untrained_seed`).
        """
        super().__init__()
        if intention == "cor" and correct_label is None:
            raise UnlearnBenchError("IntentionOracle: intention 'cor' trains D_e with its correct label, which the request does not "
                                    "carry: give correct_label (e.g. --model.correct_label 7)")
        if intention != "cor" and correct_label is not None:
            raise UnlearnBenchError(f"IntentionOracle: correct_label = {correct_label} is only read by intention 'cor', not '{intention}'")
        self.intention, self.correct_label, self.unt_labels, self.untrained_seed = intention, correct_label, unt_labels, untrained_seed
        self.y_e: int | None = None
        self.w_unt_seed: int | None = None
        self.intended_rows: Rows | None = None

    def attach(self, original: nn.Module, data: DataView, pretrained: Pretrained, evaluator: Evaluator) -> None:
        """Check D_e against the intention (one-line errors before any work), then `Retrain.attach` with the training
        set's identity of D_r ∪ I_e (`oracle_key`)."""
        view = data
        if self.intention != "std":
            labels = sorted(set(data["forget"].targets.tolist()))
            k = data.num_classes
            if not labels:
                raise UnlearnBenchError(f"IntentionOracle: intention '{self.intention}' relabels D_e, and request {data.request_hash[:16]} forgets nothing")
            if self.intention == "neg" and len(labels) != 1:
                raise UnlearnBenchError(f"IntentionOracle: intention 'neg' learns against D_e's one label y_e, and D_e holds the labels {labels}; "
                                        "request one label's images")
            if self.correct_label is not None and not 0 <= self.correct_label < k:
                raise UnlearnBenchError(f"IntentionOracle: correct_label = {self.correct_label} is not a class of {data.info.name} [0, {k})")
            if self.correct_label in labels:
                raise UnlearnBenchError(f"IntentionOracle: correct_label = {self.correct_label} is D_e's label already; nothing to correct")
            self.y_e = labels[0] if len(labels) == 1 else None
            if self.intention == "unt":
                self.w_unt_seed = self.untrained_seed if self.untrained_seed is not None else drawn_untrained_seed(pretrained.seed)
            view = copy.copy(data)
            view.training_set_hash = content_hash({"training_set": data.training_set_hash, **self.oracle_key()})
        super().attach(original, view, pretrained, evaluator)

    def oracle_key(self) -> dict:
        """What I_e adds to the cache key of D_r: the intention and its labels (for `std`, nothing: Retrain's key)."""
        if self.intention == "unt":
            return {"intention": "unt", "unt_labels": self.unt_labels, "untrained_seed": self.w_unt_seed}
        if self.intention == "neg":
            return {"intention": "neg", "negative_label": self.y_e}
        if self.intention == "cor":
            return {"intention": "cor", "correct_label": self.correct_label}
        return {}

    def prepare(self, data: DataView) -> None:
        if self.intention == "std":
            return
        forget = data["forget"]  # (all of D_e on every process; the loader over D_r ∪ I_e shards)
        x = torch.cat([b[0] for b in DataLoader(forget, batch_size=1024, collate_fn=getattr(forget, "collate_fn", None))])
        self.intended_rows = self.intended(x)

    def intended(self, x: torch.Tensor) -> Rows:
        """I_e (§3): D_e's images `x` with the intention's label vectors and loss kinds."""
        return intention_rows(x, self.intention, self.num_classes, correct_label=self.correct_label, untrained=lambda x: untrained_targets(
            self.pretrained.arch, self.data.info, self.w_unt_seed, x, soft=self.unt_labels == "soft", device=self.device))

    def train_loader(self, data: DataView):
        if self.intention == "std":
            return super().train_loader(data)
        rows = RetainAndIntended(data["retain"], self.intended_rows, self.num_classes)
        return CombinedLoader({UNION: data.loader_over(rows, self.batch_size())}, mode="max_size_cycle")

    def training_step(self, batch, batch_idx):
        if self.intention == "std":
            return super().training_step(batch, batch_idx)
        x, targets, kinds = batch[UNION]
        loss = rows_loss(self.model(x), targets, kinds, self.y_e)
        self.log_train("train/loss", loss, prog_bar=True)
        return loss
