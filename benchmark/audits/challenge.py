"""`mia/neurips_f`, `mia/neurips_score`: the NeurIPS 2023 machine-unlearning challenge's forgetting quality.

The challenge's evaluation (google-deepmind/unlearning_evaluation, `metric.py` and `main.py`), computed row for
row on CPU with NumPy, from U-LiRA's shadow models (`benchmark/audits/ulira.py`) instead of the challenge's 512:

1. per forget example and model, the logit-scaled confidence log(p_y + 1e-45) − log(Σ_{j≠y} p_j + 1e-45)
   (`compute_logit_scaled_confidence`), over N unlearned and N retrained models;
2. per example, the "positive" side is whichever of the two has the larger median; ε is the largest
   (ε, δ = 1e-5) bound over a family of single-threshold and double-threshold (interval) attacks,
   max(log(1 − δ − FPR) − log FNR, log(1 − δ − FNR) − log FPR) clipped at 0, thresholds where exactly one of
   FPR, FNR is 0 discarded, ∞ where both are, ε = 50 when one side's spread is < 1 % of the other's, and
   every ε clipped to [0, 50] (`_get_epsilons`);
3. ε scores 2^−k in the k-th bucket of width 0.5 up to ⌈log(N − 1)⌉ and 0 beyond; F is the mean over the forget
   set (`compute_forget_score_from_confs`);
4. the final score is F × (RA_unlearned / RA_retrained) × (TA_unlearned / TA_retrained), mean retain and test
   accuracies over the models (`main.py`).

With N models a rate is a multiple of 1/N, so the largest ε an attack can show is about log(N − 1): the
challenge's 512 models resolve ε up to ⌈log 511⌉ = 7 (14 buckets); 16 resolve up to ⌈log 15⌉ = 3 (6 buckets),
and an ε above that scores 0. Fewer models give a coarser, noisier ε per example, so F is not comparable across
shadow counts; `mia/neurips_models` states N.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

DELTA = 1e-5
EPSILON_CAP = 50.0
NUM_THRESHOLDS_PER_UNIT = 100
BUFFER = 2.0
NAMES = ("mia/neurips_f", "mia/neurips_score", "mia/neurips_models")


def challenge_confidence(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """`compute_logit_scaled_confidence`: log(p_y + 1e-45) − log(Σ_{j≠y} p_j + 1e-45), softmax after removing the max."""
    logits = logits - np.max(logits, axis=1, keepdims=True)
    probs = np.array(np.exp(logits), dtype=np.float64)
    probs /= np.sum(probs, axis=1, keepdims=True)
    rows = np.arange(len(probs))
    correct = probs[rows, targets].copy()
    probs[rows, targets] = 0
    return np.log(correct + 1e-45) - np.log(np.sum(probs, axis=1) + 1e-45)


def _double_threshold_rates(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, ...]:
    """`_get_double_threshold_rates`: intervals [left, right] that predict the peakier side; (tpr, fnr, fpr, tnr)."""
    pos_diff, neg_diff = pos.max() - pos.min(), neg.max() - neg.min()
    width = min(pos_diff, neg_diff)
    if pos_diff >= neg_diff:
        pos, neg = neg, pos
    low, high = pos.min() + width - BUFFER, pos.max() + BUFFER
    right = np.linspace(low, high, num=int(np.ceil((high - low) * NUM_THRESHOLDS_PER_UNIT)))
    num_left = int(np.ceil(2 * BUFFER * NUM_THRESHOLDS_PER_UNIT))
    left = np.concatenate([np.linspace(r - width - BUFFER, r - width + BUFFER, num=num_left) for r in right]) if len(right) else np.empty(0)
    right = np.repeat(right, num_left)

    def inside(confs: np.ndarray) -> np.ndarray:  # [models, thresholds]: predicted positive
        return (left[None] <= confs[:, None]) & (confs[:, None] <= right[None])

    pos_in, neg_in = inside(pos), inside(neg)
    return _share(pos_in), _share(~pos_in), _share(neg_in), _share(~neg_in)


def _share(predicted: np.ndarray) -> np.ndarray:
    """The mean over models in float32, as the reference code's `torch.mean(....type(torch.float32), 0)`."""
    return predicted.mean(0, dtype=np.float32)


def _single_threshold_rates(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, ...]:
    """`_get_single_threshold_rates`: "≥ threshold ⇒ positive" over a grid of the pooled range; (tpr, fnr, fpr, tnr)."""
    pooled = np.concatenate([pos, neg])
    thresholds = np.linspace(pooled.min(), pooled.max(), int(np.ceil((pooled.max() - pooled.min()) * NUM_THRESHOLDS_PER_UNIT)))
    pos_above, neg_above = pos[:, None] >= thresholds[None], neg[:, None] >= thresholds[None]
    return _share(pos_above), _share(~pos_above), _share(neg_above), _share(~neg_above)


def example_epsilon(pos: np.ndarray, neg: np.ndarray, delta: float = DELTA) -> float:
    """One forget example's ε from its confidences under the positive and the negative models (`_get_epsilons`)."""
    pos_diff, neg_diff = pos.max() - pos.min(), neg.max() - neg.min()
    largest, smallest = (pos_diff, neg_diff) if pos_diff > neg_diff else (neg_diff, pos_diff)
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nanmax of all-nan columns: those thresholds are discarded below
        if smallest / largest < 0.01:
            return EPSILON_CAP
        rates = [np.concatenate(parts) for parts in zip(_double_threshold_rates(pos, neg), _single_threshold_rates(pos, neg), strict=True)]
        tpr, fnr, fpr, tnr = rates
        eps = np.where((fpr + fnr == 0) & (tpr + tnr == 2), np.float32(np.inf), np.float32(0))
        eps = np.where((eps == 0) & (fpr * fnr == 0), np.float32(np.nan), eps)
        bound = np.clip(np.nanmax([np.log(1 - delta - fpr) - np.log(fnr), np.log(1 - delta - fnr) - np.log(fpr)], axis=0), 0, None)
        eps = np.where(eps == 0, bound, eps)  # float32 throughout, as the reference's rates
    kept = eps[~np.isnan(eps)]
    if not len(kept):
        raise ValueError("every threshold gave a nan epsilon")
    return float(np.clip(np.nanmax(kept), 0, EPSILON_CAP))


def forget_quality(unlearned: np.ndarray, retrained: np.ndarray) -> float:
    """F of `compute_forget_score_from_confs` from confidences [models, forget examples] of each kind (same N)."""
    positive = np.median(retrained, axis=0) > np.median(unlearned, axis=0)
    pos, neg = np.where(positive, retrained, unlearned), np.where(positive, unlearned, retrained)
    epsilons = [example_epsilon(pos[:, i], neg[:, i]) for i in range(pos.shape[1])]
    top = math.ceil(math.log(unlearned.shape[0] - 1))
    starts = np.arange(0, top - 0.5 + 1e-12, 0.5)  # buckets [s, s + 0.5) with s + 0.5 ≤ ⌈log(N − 1)⌉
    points = 0.5 ** np.arange(len(starts))
    score = sum(next((p for s, p in zip(starts, points, strict=True) if e < s + 0.5), 0.0) for e in epsilons)
    return float(score / pos.shape[1])


def challenge_measures(unlearned: np.ndarray, retrained: np.ndarray, accuracy_unlearned: dict[str, float], accuracy_retrained: dict[str, float]) -> dict[str, float]:
    """`mia/neurips_f`, `mia/neurips_score` (F × RA_u/RA_r × TA_u/TA_r, `main.py`) and `mia/neurips_models` (N)."""
    if unlearned.shape != retrained.shape or unlearned.shape[0] < 3:
        raise ValueError(f"the challenge's score needs as many unlearned as retrained models, at least 3, got {unlearned.shape} and {retrained.shape}")
    f = forget_quality(unlearned, retrained)
    score = f * (accuracy_unlearned["retain"] / accuracy_retrained["retain"]) * (accuracy_unlearned["test"] / accuracy_retrained["test"])
    return {"mia/neurips_f": f, "mia/neurips_score": score, "mia/neurips_models": float(unlearned.shape[0])}
