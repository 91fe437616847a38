"""Membership-inference attacks, each the published computation under its own name, never one "MIA" number.

A functional core (per-sample features of the model's outputs, then each attack on those features, row for
row as its source code does it) and thin torchmetrics wrappers. Every wrapper is fed with
`update(split, logits, labels, indices)` for each evaluation batch of each split, keeps the feature and the
in-split index of each sample of the splits it needs (list states, `dist_reduce_fx="cat"`), and in `compute`
puts each split in index order (= dataset order, as the published code reads its unshuffled loaders), so its
value does not depend on the number of processes or on how the samples were sharded.

| name | source (repository, file) | rows | classifier | value |
| --- | --- | --- | --- | --- |
| `mia/svm_asr` | JinhwanNam/Few-shot-Unlearning `Unlearning/traintest.py` (seed 004 §5.2) | first m retain vs first m test, m = min | SVC, entropy | D_f predicted member |
| `mia/efficacy` | OPTML-Group/Unlearn-Saliency `Classification/evaluation/SVC_MIA.py`, `main_forget.py` | first \\|D_test\\| retain vs all test | SVC, true-label confidence | D_f predicted non-member |
| `mia/efficacy_{correctness,entropy,m_entropy,prob}` | the same, SalUn's other four features | the same | SVC | the same |
| `mia/asr_golatkar` | AdityaGolatkar/SelectiveForgetting `Forgetting.ipynb` (Bad Teaching's `metrics.py`) | all retain vs all test, unbalanced | SVC, entropy | D_f predicted member |
| `mia/asr_lr` | if-loops/selective-synaptic-dampening `src/metrics.py` | all retain vs all test | balanced logistic regression, entropy | D_f predicted member |
| `mia/scrub_loss` | meghdadk/SCRUB `MIA_experiments.ipynb` | D_f vs test rows of D_f's classes, cut to the smaller | logistic regression, 5-split CV, loss | mean accuracy |
| `mia/simple` | unlearning-challenge/starting-kit `unlearning-CIFAR10.ipynb` (`simple_mia`) | D_f vs test, cut to the smaller | logistic regression, 10-split CV, loss | mean accuracy |
| `mia/loss_auc` | loss-threshold attack (Yeom et al. 2018) | all D_f vs all test | threshold | ROC-AUC |

`max_samples` (the CLI's `--evaluation.mia_samples N`) bounds the RBF SVMs' quadratic cost: the SVM attacks keep
the first N rows of retain and of test, never a random draw. None (the default) is each published definition;
the other attacks are cheap and always use their published rows.
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections import OrderedDict
from concurrent.futures import Future
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedShuffleSplit, cross_val_score
from sklearn.svm import SVC
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from benchmark.core.errors import UnknownNameError, UnlearnBenchError

SVM_PARAMS: dict[str, Any] = {"C": 3.0, "gamma": "auto", "kernel": "rbf"}
"""`SVC(C=3, gamma="auto", kernel="rbf")`: the attack model of Golatkar et al., SalUn and Yoon et al. alike."""
SVM_CACHE_MB = 1000
"""libsvm's kernel cache: larger than sklearn's 200 MB default so a 10,000-row fit keeps its kernel rows (speed only)."""
LOG_FLOOR = 1e-30
"""`m_entropy`'s floor inside log, as Song & Mittal's `_log_value` and SalUn's `m_entropy` have it."""


class EmptySplitError(UnlearnBenchError, ValueError):
    """An attack was computed without any sample of a split it needs."""


class TooFewSamplesError(UnlearnBenchError, ValueError):
    """A split has too few samples for the attack's classifier or cross-validation."""


# Per-sample features (torch, one batch of logits [B, C] and labels [B]).


def output_entropy(logits: Tensor, labels: Tensor | None = None) -> Tensor:
    """Shannon entropy (nats) of softmax(logits) per sample, 0·log 0 = 0 (`entropy` of all the sources above)."""
    probs = logits.softmax(-1)
    return -torch.xlogy(probs, probs).sum(-1)


def true_label_confidence(logits: Tensor, labels: Tensor) -> Tensor:
    """softmax(logits)[i, labels[i]]: SalUn's "confidence" feature (`torch.gather(prob, 1, labels[:, None])`)."""
    return logits.softmax(-1).gather(-1, labels.long().view(-1, 1)).squeeze(-1)


def correctness(logits: Tensor, labels: Tensor) -> Tensor:
    """1 where argmax(logits) is the label, else 0: SalUn's "correctness" feature."""
    return (logits.argmax(-1) == labels.long()).to(logits.dtype)


def modified_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """Mentr of Song & Mittal 2021 (Eq. 5), per row: −(1−p_y)·log p_y − Σ_{c≠y} p_c·log(1−p_c), log floored at 1e-30.

    SalUn's `m_entropy` (`SVC_MIA.py`) differs in two ways, so its published numbers are not this: it indexes
    columns (`modified_probs[:, labels]`), so every row gets (1−p_c)·log p_c for each class c present anywhere
    in the split (for a forget set of one class, only that class); and its `log_reverse_prob` is log p, not
    log(1−p).
    """
    probs = logits.double().softmax(-1)
    log_p, log_reverse = probs.clamp_min(LOG_FLOOR).log(), (1 - probs).clamp_min(LOG_FLOOR).log()
    is_label = F.one_hot(labels.long(), probs.shape[-1]).bool()
    modified = torch.where(is_label, (1 - probs) * log_p, probs * log_reverse)
    return -modified.sum(-1).to(logits.dtype)


def softmax_vector(logits: Tensor, labels: Tensor | None = None) -> Tensor:
    """softmax(logits), C values per sample: SalUn's "prob" feature."""
    return logits.softmax(-1)


def sample_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Per-sample cross-entropy −log softmax(logits)[i, labels[i]] (`nn.CrossEntropyLoss(reduction="none")`)."""
    return F.cross_entropy(logits, labels.long(), reduction="none")


# The attacks' classifiers (numpy; rows are samples, a 1-D array is one scalar feature per sample).


def _rows(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features, dtype=np.float64)
    return features.reshape(len(features), -1)


_SVM_FITS: OrderedDict[bytes, Future] = OrderedDict()
"""Predictions of recent SVM fits by the hash of (members, non-members, targets): attacks that fit the same rows
(`mia/svm_asr`, `mia/efficacy_entropy` and, when capped, `mia/asr_golatkar`) fit once, also from several threads."""
_SVM_FITS_LOCK = threading.Lock()


def svm_predictions(members: np.ndarray, non_members: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Predictions (1 = member) on `targets` of `SVC(C=3, gamma="auto", kernel="rbf")` fit on members (1) vs non-members (0).

    When at most half the training rows are distinct (`correctness` has two values), the SVC is fit on the
    distinct (row, label) pairs with their counts as `sample_weight`: the same problem, since the hinge losses of
    identical rows add up (libsvm scales C per row), solved on a handful of rows instead of thousands.
    """
    members, non_members, targets = _rows(members), _rows(non_members), _rows(targets)
    key = hashlib.blake2b(b"".join(np.ascontiguousarray(a).tobytes() + str(a.shape).encode() for a in (members, non_members, targets))).digest()
    with _SVM_FITS_LOCK:
        known = _SVM_FITS.get(key)
        if known is None:
            _SVM_FITS[key] = future = Future()
            while len(_SVM_FITS) > 16:
                _SVM_FITS.popitem(last=False)
    if known is not None:
        return known.result()
    try:
        x = np.concatenate([members, non_members])
        y = np.concatenate([np.ones(len(members)), np.zeros(len(non_members))])
        distinct, counts = np.unique(np.column_stack([x, y]), axis=0, return_counts=True)
        svm = SVC(**SVM_PARAMS, cache_size=SVM_CACHE_MB)
        if 2 * len(distinct) <= len(x):
            svm.fit(distinct[:, :-1], distinct[:, -1], sample_weight=counts.astype(np.float64))
        else:
            svm.fit(x, y)
        future.set_result(svm.predict(targets))
    except BaseException as error:
        future.set_exception(error)
        with _SVM_FITS_LOCK:
            _SVM_FITS.pop(key, None)
        raise
    return future.result()


def _prefix(rows: np.ndarray, n: int | None) -> np.ndarray:
    return rows if n is None else rows[:n]


def svm_attack_success_rate(*, forget: np.ndarray, retain: np.ndarray, test: np.ndarray, max_samples: int | None = None) -> float:
    """`mia/svm_asr`: attack-success rate on D_e of seed 004 §5.2 (Yoon et al. 2023), as `traintest.py` computes it.

    JinhwanNam/Few-shot-Unlearning `Unlearning/traintest.py` (`get_membership_attack_data/model`): the softmax
    entropy of the **first m** retain rows (members, 1) and the **first m** test rows (non-members, 0),
    m = min(|D_r|, |D_test|) (`validrprob[:to_use]`, `testprob[:to_use]`, unshuffled loaders), an
    `SVC(C=3, gamma="auto", kernel="rbf")`; the value is the fraction of D_f predicted member. Lower is
    better; Retrain is the reference. Inputs are per-sample `output_entropy` values.
    """
    _require_samples("mia/svm_asr", forget=forget, retain=retain, test=test)
    m = min(len(retain), len(test), max_samples or len(test))
    return float(svm_predictions(retain[:m], test[:m], forget).mean())


def svc_mia_forget_efficacy(*, forget: np.ndarray, retain: np.ndarray, test: np.ndarray, max_samples: int | None = None, name: str = "mia/efficacy") -> float:
    """`mia/efficacy` and its siblings: SalUn's `SVC_MIA_forget_efficacy` (Jia et al. 2023 App. C.3; Fan et al. 2024).

    OPTML-Group/Unlearn-Saliency `Classification/main_forget.py` + `evaluation/SVC_MIA.py`: shadow members are
    the **first |D_test|** retain rows in dataset order (`Subset(retain_dataset, range(len(test)))`), shadow
    non-members all of D_test, `SVC(C=3, gamma="auto", kernel="rbf")` on one feature (`true_label_confidence`
    for `mia/efficacy`, SalUn's "confidence"); the value is the fraction of D_f predicted NON-member
    (`1 - clf.predict(X_target_test).mean()`). Higher means more forgetting; Retrain is the reference.
    """
    _require_samples(name, forget=forget, retain=retain, test=test)
    test = _prefix(test, max_samples)
    return 1.0 - float(svm_predictions(retain[: len(test)], test, forget).mean())


def asr_golatkar(*, forget: np.ndarray, retain: np.ndarray, test: np.ndarray, max_samples: int | None = None) -> float:
    """`mia/asr_golatkar`: Golatkar et al. 2020's attack, AdityaGolatkar/SelectiveForgetting `Forgetting.ipynb`.

    `get_membership_attack_prob` (copied by Bad Teaching's `metrics.py`): the entropy of **all** retain rows
    (1) against **all** test rows (0), unbalanced, `SVC(C=3, gamma="auto", kernel="rbf")`; the value is the
    fraction of D_f predicted member (`clf.predict(X_f).mean()`). Lower is better; Retrain is the reference.
    """
    _require_samples("mia/asr_golatkar", forget=forget, retain=retain, test=test)
    return float(svm_predictions(_prefix(retain, max_samples), _prefix(test, max_samples), forget).mean())


def asr_lr(*, forget: np.ndarray, retain: np.ndarray, test: np.ndarray) -> float:
    """`mia/asr_lr`: SSD's attack, if-loops/selective-synaptic-dampening `src/metrics.py` (`get_membership_attack_prob`).

    The entropy of all retain rows (1) against all test rows (0), `LogisticRegression(class_weight="balanced",
    solver="lbfgs", multi_class="multinomial")`; the value is the fraction of D_f predicted member. scikit-learn
    ≥ 1.7 has no `multi_class`: a two-class multinomial fit with C is exactly the binomial fit with 2·C (the
    penalty ½(‖w₀‖²+‖w₁‖²) is smallest at w₁ = −w₀ = v/2, i.e. ¼‖v‖²), so we fit the binomial with C = 2.
    """
    _require_samples("mia/asr_lr", forget=forget, retain=retain, test=test)
    retain, test = _rows(retain), _rows(test)
    x, y = np.concatenate([retain, test]), np.concatenate([np.ones(len(retain)), np.zeros(len(test))])
    model = LogisticRegression(C=2.0, class_weight="balanced", solver="lbfgs").fit(x, y)
    return float(model.predict(_rows(forget)).mean())


MIN_CV_ROWS = 6
"""Fewest rows a side for `StratifiedShuffleSplit`'s default 10 % test share to hold one row of each class."""


def _require_cv_rows(attack: str, forget: int, test: int, test_rows: str = "test rows") -> None:
    if min(forget, test) < MIN_CV_ROWS:
        raise TooFewSamplesError(f"{attack}: its cross-validation needs at least {MIN_CV_ROWS} D_f rows and {MIN_CV_ROWS} {test_rows}; got {forget} and {test}")


def _cv_accuracy(negatives: np.ndarray, positives: np.ndarray, n_splits: int, random_state: int) -> float:
    """Mean accuracy of `LogisticRegression()` over `StratifiedShuffleSplit(n_splits, random_state)` (test_size 0.1)."""
    x = _rows(np.concatenate([negatives, positives]))
    y = np.array([0] * len(negatives) + [1] * len(positives))
    cv = StratifiedShuffleSplit(n_splits=n_splits, random_state=random_state)
    return float(cross_val_score(LogisticRegression(), x, y, cv=cv, scoring="accuracy").mean())


def scrub_loss(*, forget: np.ndarray, test: np.ndarray, seed: int = 0) -> float:
    """`mia/scrub_loss`: SCRUB's attack (Kurmanji et al. 2023), meghdadk/SCRUB `MIA_experiments.ipynb`.

    `membership_inference_attack`: test rows restricted to the classes present in D_f; per-sample cross-entropy
    of D_f (1) and of those test rows (0); the larger side cut to the smaller by `random.sample` after
    `random.seed(seed)`; features clipped to [−100, 100]; `LogisticRegression()` scored by accuracy over
    `StratifiedShuffleSplit(n_splits=5, random_state=seed)`; the value is the mean accuracy (0.5: D_f cannot be
    told from unseen data). Inputs are [loss, label] rows.
    """
    _require_samples("mia/scrub_loss", forget=forget, test=test)
    forget, test = _rows(forget), _rows(test)
    forget_losses = list(forget[:, 0])
    test_losses = list(test[np.isin(test[:, 1], np.unique(forget[:, 1])), 0])
    _require_cv_rows("mia/scrub_loss", len(forget_losses), len(test_losses), "test rows of D_f's classes")
    rng = random.Random(seed)
    if len(forget_losses) > len(test_losses):
        forget_losses = rng.sample(forget_losses, len(test_losses))
    else:
        test_losses = rng.sample(test_losses, len(forget_losses))
    return _cv_accuracy(np.clip(test_losses, -100, 100), np.clip(forget_losses, -100, 100), n_splits=5, random_state=seed)


def simple_mia(*, forget: np.ndarray, test: np.ndarray, seed: int = 0) -> float:
    """`mia/simple`: the NeurIPS 2023 unlearning challenge's `simple_mia` (unlearning-challenge/starting-kit).

    `unlearning-CIFAR10.ipynb`: per-sample cross-entropy of test (0) and D_f (1), the larger side shuffled
    and cut to the smaller (the kit's unseeded `np.random.shuffle`; here `np.random.RandomState(seed)`),
    `LogisticRegression()` scored by accuracy over `StratifiedShuffleSplit(n_splits=10, random_state=0)`; the
    value is the mean accuracy (0.5: D_f cannot be told from unseen data).
    """
    _require_samples("mia/simple", forget=forget, test=test)
    forget, test = np.array(forget, dtype=np.float64), np.array(test, dtype=np.float64)
    _require_cv_rows("mia/simple", len(forget), len(test))
    larger = forget if len(forget) > len(test) else test
    np.random.RandomState(seed).shuffle(larger)
    n = min(len(forget), len(test))
    return _cv_accuracy(test[:n], forget[:n], n_splits=10, random_state=0)


def loss_attack_auc(*, forget: np.ndarray, test: np.ndarray) -> float:
    """`mia/loss_auc`: ROC-AUC of the loss-threshold attack (Yeom et al. 2018), forget (members) vs test.

    Inputs are per-sample `sample_loss` values; "lower loss ⇒ member", i.e. `roc_auc_score` of −loss with forget
    as the positive class. 0.5 means forget samples look like unseen ones.
    """
    _require_samples("mia/loss_auc", forget=forget, test=test)
    labels = np.concatenate([np.ones(len(forget)), np.zeros(len(test))])
    return float(roc_auc_score(labels, -np.concatenate([forget, test])))


def _require_samples(attack: str, **splits: np.ndarray) -> None:
    empty = [name for name, values in splits.items() if len(values) == 0]
    if empty:
        raise EmptySplitError(f"{attack}: no samples of split(s) {', '.join(empty)}; the attack needs {', '.join(splits)}")


# torchmetrics wrappers.


class MembershipInference(Metric):
    """Base of the attack metrics: the feature and the index of each sample of each split in `splits`.

    Subclasses set `name` and `splits` and define `feature` (per batch, [B] or [B, d]) and `attack` (on whole
    splits, in index order). `compute` returns `{name: value}`. The states are kept in the metric's float dtype
    (indices included, exact below 2**24 in float32), so a process that saw no sample of a split joins the
    gather with torchmetrics' empty float tensor.
    """

    name: ClassVar[str]
    splits: ClassVar[tuple[str, ...]]
    min_rows: ClassVar[dict[str, int]] = {}
    """Fewest rows of each split the attack can be computed on (besides one of each split it needs)."""
    work: ClassVar[int] = 1
    """Rough cost of `compute`, so that a scheduler starts the longest first (0: it reuses another attack's fit)."""
    is_differentiable = False
    full_state_update = False

    def __init__(self, *, seed: int = 0, max_samples: int | None = None, **kwargs: Any) -> None:
        """
        Args:
            seed: seed of the attacks that draw (`mia/scrub_loss`'s and `mia/simple`'s cut to the smaller side).
            max_samples: the SVM attacks keep the first `max_samples` rows of retain and of test (None: their
                published rows). The RBF SVM's fit grows about quadratically: 10,000 rows take ~1.5 s on 2 CPU cores.
            kwargs: torchmetrics `Metric` options.
        """
        super().__init__(**kwargs)
        if max_samples is not None and max_samples < 1:
            raise UnlearnBenchError(f"{self.name}: max_samples must be at least 1 (or None for all), got {max_samples}")
        self.seed, self.max_samples = seed, max_samples
        for split in self.splits:
            self.add_state(f"{split}_index", default=[], dist_reduce_fx="cat")
            self.add_state(f"{split}_feature", default=[], dist_reduce_fx="cat")

    @staticmethod
    def feature(logits: Tensor, labels: Tensor) -> Tensor:
        """The attack's feature of each sample of a batch of logits [B, C] and labels [B]: [B] or [B, d]."""
        raise NotImplementedError

    def attack(self, features: dict[str, np.ndarray]) -> float:
        """The attack's value from each needed split's features, in index order."""
        raise NotImplementedError

    def update(self, split: str, logits: Tensor, labels: Tensor, indices: Tensor) -> None:
        """Store the features and in-split indices of one batch of `split`; splits the attack does not use are ignored."""
        if split not in self.splits:
            return
        indices = indices.detach().reshape(-1)  # (checked once, in `split_features`: a check here would sync every batch)
        getattr(self, f"{split}_index").append(indices.to(self.dtype))
        # Flat, so that a process with no sample of a split (torchmetrics' 1-D empty state) joins the gather.
        getattr(self, f"{split}_feature").append(self.feature(logits.detach().float(), labels.detach()).to(self.dtype).reshape(-1))

    def forward(self, *args: Any, **kwargs: Any) -> None:
        """Same as `update`: an attack has no per-batch value."""
        self.update(*args, **kwargs)

    def split_features(self, split: str) -> np.ndarray:
        """The (gathered) features of `split` sorted by index; a repeated index (padding of a sampler) counts once."""
        index, values = getattr(self, f"{split}_index"), getattr(self, f"{split}_feature")
        if isinstance(index, list) and not index:
            return np.empty(0)
        index, values = dim_zero_cat(index), dim_zero_cat(values)
        if len(index) and float(index.max()) >= 2 / torch.finfo(index.dtype).eps:  # (rounding is monotonic: still ≥ the limit)
            raise ValueError(f"{self.name}: indices from {2 / torch.finfo(index.dtype).eps:.0f} on are not exact in {index.dtype}; "
                             f"use set_dtype(torch.float64)")
        values = values.reshape(len(index), -1).squeeze(-1) if len(index) else values
        index, order = torch.sort(index, stable=True)
        first = torch.ones_like(index, dtype=torch.bool)
        first[1:] = index[1:] != index[:-1]
        return values[order][first].cpu().double().numpy()

    def compute(self) -> dict[str, float]:
        return {self.name: self.attack({split: self.split_features(split) for split in self.splits})}


class SVMAttackSuccess(MembershipInference):
    """`mia/svm_asr` (seed 004 §5.2): see `svm_attack_success_rate`. Lower is better."""

    name, splits, higher_is_better, work = "mia/svm_asr", ("forget", "retain", "test"), False, 2
    feature = staticmethod(output_entropy)

    def attack(self, features: dict[str, np.ndarray]) -> float:
        return svm_attack_success_rate(**features, max_samples=self.max_samples)


class MIAEfficacy(MembershipInference):
    """`mia/efficacy` (Jia et al. 2023, SalUn's "confidence"): see `svc_mia_forget_efficacy`. Higher means more forgetting.

    Its subclasses are SalUn's other four features, the same rows and SVC.
    """

    name, splits, higher_is_better, work = "mia/efficacy", ("forget", "retain", "test"), True, 2
    feature = staticmethod(true_label_confidence)

    def attack(self, features: dict[str, np.ndarray]) -> float:
        return svc_mia_forget_efficacy(**features, max_samples=self.max_samples, name=self.name)


class MIAEfficacyCorrectness(MIAEfficacy):
    name, feature = "mia/efficacy_correctness", staticmethod(correctness)


class MIAEfficacyEntropy(MIAEfficacy):
    name, feature, work = "mia/efficacy_entropy", staticmethod(output_entropy), 0


class MIAEfficacyModifiedEntropy(MIAEfficacy):
    name, feature = "mia/efficacy_m_entropy", staticmethod(modified_entropy)


class MIAEfficacyProb(MIAEfficacy):
    name, feature, work = "mia/efficacy_prob", staticmethod(softmax_vector), 3


class GolatkarAttack(MembershipInference):
    """`mia/asr_golatkar` (Golatkar et al. 2020): see `asr_golatkar`. Lower is better."""

    name, splits, higher_is_better, work = "mia/asr_golatkar", ("forget", "retain", "test"), False, 0
    feature = staticmethod(output_entropy)

    def attack(self, features: dict[str, np.ndarray]) -> float:
        return asr_golatkar(**features, max_samples=self.max_samples)


class LogisticAttack(GolatkarAttack):
    """`mia/asr_lr` (SSD, Foster et al. 2024): see `asr_lr`. Lower is better."""

    name, work = "mia/asr_lr", 1

    def attack(self, features: dict[str, np.ndarray]) -> float:
        return asr_lr(**features)


def loss_and_label(logits: Tensor, labels: Tensor) -> Tensor:
    """[cross-entropy, label] per sample: `mia/scrub_loss` restricts the test rows to D_f's classes."""
    return torch.stack([sample_loss(logits, labels), labels.to(logits.dtype)], dim=-1)


class ScrubLossAttack(MembershipInference):
    """`mia/scrub_loss` (Kurmanji et al. 2023): see `scrub_loss`. 0.5 is chance; Retrain is the reference."""

    name, splits, higher_is_better = "mia/scrub_loss", ("forget", "test"), None
    min_rows: ClassVar[dict[str, int]] = {"forget": MIN_CV_ROWS, "test": MIN_CV_ROWS}
    feature = staticmethod(loss_and_label)

    def attack(self, features: dict[str, np.ndarray]) -> float:
        return scrub_loss(**features, seed=self.seed)


class SimpleAttack(MembershipInference):
    """`mia/simple` (NeurIPS 2023 unlearning challenge): see `simple_mia`. 0.5 is chance; Retrain is the reference."""

    name, splits, higher_is_better = "mia/simple", ("forget", "test"), None
    min_rows: ClassVar[dict[str, int]] = {"forget": MIN_CV_ROWS, "test": MIN_CV_ROWS}
    feature = staticmethod(sample_loss)

    def attack(self, features: dict[str, np.ndarray]) -> float:
        return simple_mia(**features, seed=self.seed)


class LossAttackAUC(MembershipInference):
    """`mia/loss_auc` (loss-threshold attack): see `loss_attack_auc`. 0.5 is chance; Retrain is the reference."""

    name, splits, higher_is_better = "mia/loss_auc", ("forget", "test"), None
    feature = staticmethod(sample_loss)

    def attack(self, features: dict[str, np.ndarray]) -> float:
        return loss_attack_auc(**features)


MIA_METRICS: dict[str, type[MembershipInference]] = {
    cls.name: cls
    for cls in (SVMAttackSuccess, MIAEfficacy, MIAEfficacyCorrectness, MIAEfficacyEntropy, MIAEfficacyModifiedEntropy, MIAEfficacyProb,
                GolatkarAttack, LogisticAttack, ScrubLossAttack, SimpleAttack, LossAttackAUC)
}


def attack_classes(names: list[str] | None = None) -> dict[str, type[MembershipInference]]:
    """The attacks named (all when None), in registry order; an unknown name lists the known ones."""
    unknown = sorted(set(names or ()) - set(MIA_METRICS))
    if unknown:
        raise UnknownNameError(f"unknown membership-inference attack(s) {', '.join(unknown)}; known: {', '.join(MIA_METRICS)}")
    return {name: cls for name, cls in MIA_METRICS.items() if names is None or name in names}


def rows_needed(cls: type[MembershipInference], split: str) -> int:
    """The fewest rows of `split` the attack `cls` can be computed on (`min_rows`, at least 1)."""
    return max(cls.min_rows.get(split, 1), 1)


def check_split_sizes(attacks: dict[str, type[MembershipInference]], sizes: dict[str, int]) -> None:
    """Before any work: each attack's splits hold enough rows (`min_rows`), else one line naming the attack and the sizes."""
    for name, cls in attacks.items():
        for split in cls.splits:
            need = rows_needed(cls, split)
            if sizes.get(split, 0) < need:
                raise TooFewSamplesError(f"{name} needs at least {need} rows of {split}, the scenario has {sizes.get(split, 0)} "
                                         f"({', '.join(f'{s} {n}' for s, n in sizes.items())}); choose the attacks with "
                                         f"--evaluation.mia_attacks or turn them off with --evaluation.mia false")


def attacks_that_fit(names: list[str] | None, sizes: dict[str, int]) -> tuple[list[str], list[str]]:
    """The attacks of `names` (None: all) whose splits hold enough rows (`min_rows`) at `sizes`, and those that do not."""
    fit = {name: all(sizes.get(split, 0) >= rows_needed(cls, split) for split in cls.splits)
           for name, cls in attack_classes(names).items()}
    return [name for name, ok in fit.items() if ok], [name for name, ok in fit.items() if not ok]


def create_mia_metric(name: str, **kwargs: Any) -> MembershipInference:
    """The attack metric registered as `name` (a key of `MIA_METRICS`); unknown names list the known ones."""
    if name not in MIA_METRICS:
        raise UnknownNameError(f"unknown membership-inference metric '{name}'; known: {', '.join(MIA_METRICS)}")
    return MIA_METRICS[name](**kwargs)
