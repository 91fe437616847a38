"""Membership-inference attacks, each reported under its own name, never as one "MIA" number.

A functional core (per-sample features of the model's outputs, then attacks on those features) and thin
torchmetrics wrappers. Every wrapper is fed with `update(split, logits, labels, indices)` for each evaluation
batch of each split, keeps one scalar feature and the in-split index per sample of the splits it needs (list
states, `dist_reduce_fx="cat"`), and in `compute` puts each split in index order, so its value does not depend
on the number of processes or on how the samples were sharded.

- `mia/svm_asr`   `SVMAttackSuccess`  attack-success rate of seed 004 §5.2 (after Golatkar et al. 2020b)
- `mia/efficacy`  `MIAEfficacy`       MIA-Efficacy of Jia et al. 2023 (also SalUn, Fan et al. 2024)
- `mia/loss_auc`  `LossAttackAUC`     loss-threshold attack (Yeom et al. 2018), forget vs test, as ROC-AUC
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from sklearn.svm import SVC
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from benchmark.core.errors import UnknownNameError, UnlearnBenchError

SVM_PARAMS: dict[str, Any] = {"C": 3.0, "gamma": "auto", "kernel": "rbf"}


class EmptySplitError(UnlearnBenchError, ValueError):
    """An attack was computed without any sample of a split it needs."""


def output_entropy(logits: Tensor) -> Tensor:
    """Shannon entropy (nats) of softmax(logits) per sample: the attack feature of Golatkar et al. 2020b."""
    probs = logits.softmax(-1)
    return -torch.xlogy(probs, probs).sum(-1)


def true_label_confidence(logits: Tensor, labels: Tensor) -> Tensor:
    """softmax(logits)[i, labels[i]]: the "confidence" feature of Jia et al. 2023's MIA-Efficacy."""
    return logits.softmax(-1).gather(-1, labels.long().view(-1, 1)).squeeze(-1)


def sample_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Per-sample cross-entropy −log softmax(logits)[i, labels[i]]: the loss-threshold attack's score."""
    return F.cross_entropy(logits, labels.long(), reduction="none")


def balanced_subsample(n_members: int, n_non_members: int, seed: int = 0, max_samples: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Positions to keep of each side so both have min(n_members, n_non_members, max_samples) samples.

    A side of exactly that size is kept whole; a larger one is drawn without replacement by
    `np.random.default_rng(seed)` and returned in increasing order.
    """
    size = min(n_members, n_non_members) if max_samples is None else min(n_members, n_non_members, max_samples)
    rng = np.random.default_rng(seed)

    def keep(n: int) -> np.ndarray:
        return np.arange(n) if n == size else np.sort(rng.choice(n, size=size, replace=False))

    return keep(n_members), keep(n_non_members)


def svm_member_rate(members: np.ndarray, non_members: np.ndarray, targets: np.ndarray, seed: int = 0, max_samples: int | None = None) -> float:
    """Fraction of `targets` an SVM predicts to be members (the attack model of Golatkar et al. 2020b).

    `SVC(C=3, gamma="auto", kernel="rbf")` is fit on `members` (label 1) and `non_members` (label 0), balanced by
    `balanced_subsample(..., seed, max_samples)`. Rows are samples (a 1-D array is one scalar feature per sample).
    """
    keep_m, keep_n = balanced_subsample(len(members), len(non_members), seed, max_samples)
    x = np.concatenate([_rows(members)[keep_m], _rows(non_members)[keep_n]])
    y = np.concatenate([np.ones(len(keep_m)), np.zeros(len(keep_n))])
    return float(SVC(**SVM_PARAMS).fit(x, y).predict(_rows(targets)).mean())


def svm_attack_success_rate(*, forget: np.ndarray, retain: np.ndarray, test: np.ndarray, seed: int = 0, max_samples: int | None = None) -> float:
    """`mia/svm_asr`: attack-success rate on D_e of seed 004 §5.2 (Yoon et al. 2023, after Golatkar et al. 2020b).

    Inputs are per-sample `output_entropy` values. Seed 004 trains "a binary SVM taking the model f's output to a
    sample" to tell members from non-members and reads low-entropy outputs as the leak; we read "output" as the
    entropy of the softmax, the feature of Golatkar et al. 2020b's attack that seed 004 cites. The SVM is trained
    on retain (members) vs test (non-members), balanced; the score is the fraction of forget samples predicted
    "member". Lower is better; Retrain is the reference. `max_samples` caps each side of the SVM's training set.
    """
    _require_samples("mia/svm_asr", forget=forget, retain=retain, test=test)
    return svm_member_rate(retain, test, forget, seed, max_samples)


def mia_efficacy(*, forget: np.ndarray, retain: np.ndarray, test: np.ndarray, seed: int = 0, max_samples: int | None = None) -> float:
    """`mia/efficacy`: MIA-Efficacy of Jia et al. 2023 (App. C.3; SalUn's "MIA"), their "confidence" variant.

    Inputs are per-sample `true_label_confidence` values. Shadow members are |D_test| retain samples, shadow
    non-members are D_test (balanced as in `svm_member_rate`: drawn with `seed` rather than the reference code's
    first |D_test| retain samples, so a retain split ordered by class is not a biased draw); the score is the
    fraction of forget samples predicted NON-member. Higher means more forgetting; Retrain is the reference.
    `max_samples` caps each side of the SVM's training set (None: |D_test| each, the definition).
    """
    _require_samples("mia/efficacy", forget=forget, retain=retain, test=test)
    return 1.0 - svm_member_rate(retain, test, forget, seed, max_samples)


def loss_attack_auc(*, forget: np.ndarray, test: np.ndarray) -> float:
    """`mia/loss_auc`: ROC-AUC of the loss-threshold attack (Yeom et al. 2018), forget (members) vs test.

    Inputs are per-sample `sample_loss` values; "lower loss ⇒ member", i.e. `roc_auc_score` of −loss with forget
    as the positive class. 0.5 means forget samples look like unseen ones.
    """
    _require_samples("mia/loss_auc", forget=forget, test=test)
    labels = np.concatenate([np.ones(len(forget)), np.zeros(len(test))])
    return float(roc_auc_score(labels, -np.concatenate([forget, test])))


def _rows(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features)
    return features.reshape(len(features), -1)


def _require_samples(attack: str, **splits: np.ndarray) -> None:
    empty = [name for name, values in splits.items() if len(values) == 0]
    if empty:
        raise EmptySplitError(f"{attack}: no samples of split(s) {', '.join(empty)}; the attack needs {', '.join(splits)}")


class MembershipInference(Metric):
    """Base of the attack metrics: one scalar feature and the index per sample of each split in `splits`.

    Subclasses set `name` and `splits` and define `feature` (per batch) and `attack` (on whole splits). `compute`
    returns `{name: value}`. The states are kept in the metric's float dtype (indices included, exact below
    2**24 in float32), so a process that saw no sample of a split joins the gather with torchmetrics' empty
    float tensor.
    """

    name: ClassVar[str]
    splits: ClassVar[tuple[str, ...]]
    is_differentiable = False
    full_state_update = False

    def __init__(self, *, seed: int = 0, max_samples: int | None = None, **kwargs: Any) -> None:
        """
        Args:
            seed: seed of the balanced subsampling of the SVM attacks' training data (unused by `mia/loss_auc`).
            max_samples: most members and most non-members the SVM attacks are fit on (None: all, balanced). The
                RBF SVM's fit grows about quadratically: 10,000 a side take ~6 s on 2 CPU cores, 5,000 ~1.5 s.
            kwargs: torchmetrics `Metric` options.
        """
        super().__init__(**kwargs)
        if max_samples is not None and max_samples < 1:
            raise UnlearnBenchError(f"{self.name}: max_samples must be at least 1 (or None for all), got {max_samples}")
        self.seed, self.max_samples = seed, max_samples
        for split in self.splits:
            self.add_state(f"{split}_index", default=[], dist_reduce_fx="cat")
            self.add_state(f"{split}_feature", default=[], dist_reduce_fx="cat")

    def feature(self, logits: Tensor, labels: Tensor) -> Tensor:
        """One scalar per sample, computed from a batch of logits [B, C] and labels [B]."""
        raise NotImplementedError

    def attack(self, features: dict[str, np.ndarray]) -> float:
        """The attack's value from each needed split's features, in index order."""
        raise NotImplementedError

    def update(self, split: str, logits: Tensor, labels: Tensor, indices: Tensor) -> None:
        """Store the features and in-split indices of one batch of `split`; splits the attack does not use are ignored."""
        if split not in self.splits:
            return
        indices = indices.detach().reshape(-1)
        if indices.numel() and int(indices.max()) >= 2 / torch.finfo(self.dtype).eps:
            raise ValueError(f"{self.name}: index {int(indices.max())} is not exact in {self.dtype}; use set_dtype(torch.float64)")
        getattr(self, f"{split}_index").append(indices.to(self.dtype))
        getattr(self, f"{split}_feature").append(self.feature(logits.detach().float(), labels.detach()).to(self.dtype))

    def forward(self, *args: Any, **kwargs: Any) -> None:
        """Same as `update`: an attack has no per-batch value."""
        self.update(*args, **kwargs)

    def split_features(self, split: str) -> np.ndarray:
        """The (gathered) features of `split` sorted by index; a repeated index (padding of a sampler) counts once."""
        index, values = getattr(self, f"{split}_index"), getattr(self, f"{split}_feature")
        if isinstance(index, list) and not index:
            return np.empty(0)
        index, values = dim_zero_cat(index), dim_zero_cat(values)
        index, order = torch.sort(index, stable=True)
        first = torch.ones_like(index, dtype=torch.bool)
        first[1:] = index[1:] != index[:-1]
        return values[order][first].cpu().double().numpy()

    def compute(self) -> dict[str, float]:
        return {self.name: self.attack({split: self.split_features(split) for split in self.splits})}


class SVMAttackSuccess(MembershipInference):
    """`mia/svm_asr` (seed 004 §5.2): see `svm_attack_success_rate`. Lower is better."""

    name = "mia/svm_asr"
    splits = ("forget", "retain", "test")
    higher_is_better = False

    def feature(self, logits: Tensor, labels: Tensor) -> Tensor:
        return output_entropy(logits)

    def attack(self, features: dict[str, np.ndarray]) -> float:
        return svm_attack_success_rate(**features, seed=self.seed, max_samples=self.max_samples)


class MIAEfficacy(MembershipInference):
    """`mia/efficacy` (Jia et al. 2023): see `mia_efficacy`. Higher means more forgetting."""

    name = "mia/efficacy"
    splits = ("forget", "retain", "test")
    higher_is_better = True

    def feature(self, logits: Tensor, labels: Tensor) -> Tensor:
        return true_label_confidence(logits, labels)

    def attack(self, features: dict[str, np.ndarray]) -> float:
        return mia_efficacy(**features, seed=self.seed, max_samples=self.max_samples)


class LossAttackAUC(MembershipInference):
    """`mia/loss_auc` (loss-threshold attack): see `loss_attack_auc`. 0.5 is chance; Retrain is the reference."""

    name = "mia/loss_auc"
    splits = ("forget", "test")
    higher_is_better = None

    def feature(self, logits: Tensor, labels: Tensor) -> Tensor:
        return sample_loss(logits, labels)

    def attack(self, features: dict[str, np.ndarray]) -> float:
        return loss_attack_auc(**features)


MIA_METRICS: dict[str, type[MembershipInference]] = {cls.name: cls for cls in (SVMAttackSuccess, MIAEfficacy, LossAttackAUC)}


def create_mia_metric(name: str, **kwargs: Any) -> MembershipInference:
    """The attack metric registered as `name` (a key of `MIA_METRICS`); unknown names list the known ones."""
    if name not in MIA_METRICS:
        raise UnknownNameError(f"unknown membership-inference metric '{name}'; known: {', '.join(MIA_METRICS)}")
    return MIA_METRICS[name](**kwargs)
