"""The NeurIPS 2023 challenge's forgetting quality (`benchmark/audits/challenge.py`) on cases whose ε is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmark.audits import challenge
from benchmark.audits.challenge import EPSILON_CAP, challenge_confidence, challenge_measures, example_epsilon, forget_quality


def test_confidence_is_the_log_odds_of_the_true_label_with_the_references_floor():
    logits = np.array([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0], [200.0, 0.0, 0.0]], dtype=np.float32)
    targets = np.array([0, 2, 1])
    p = np.exp(logits.astype(np.float64) - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    want = [math.log(p[i, t] + 1e-45) - math.log(1 - p[i, t] + 1e-45) for i, t in enumerate(targets)]
    assert challenge_confidence(logits, targets) == pytest.approx(want, rel=1e-6)
    assert challenge_confidence(logits, targets)[2] == pytest.approx(math.log(1e-45) - 0.0, abs=1e-3)  # p_y = 0: the floor


def test_the_same_outputs_give_epsilon_zero_and_full_points():
    rng = np.random.default_rng(0)
    same = rng.normal(0.0, 1.0, (16, 5))
    assert [example_epsilon(same[:, i], same[:, i]) for i in range(5)] == [0.0] * 5
    assert forget_quality(same, same) == 1.0


def test_separated_or_peaky_outputs_give_the_cap_and_no_points():
    rng = np.random.default_rng(0)
    retrained = rng.normal(0.0, 1.0, (16, 4))
    assert example_epsilon(retrained[:, 0] + 100.0, retrained[:, 0]) == EPSILON_CAP  # perfectly separated: ε = ∞, clipped
    peaky = np.full((16, 4), 0.3) + rng.normal(0.0, 1e-4, (16, 4))  # spread < 1 % of the other side's
    assert example_epsilon(peaky[:, 0], retrained[:, 0]) == EPSILON_CAP
    assert forget_quality(peaky, retrained) == 0.0


def test_one_threshold_epsilon_from_its_rates():
    """8 of 16 unlearned models above every retrained one: the best attack has FNR = 1/2, FPR = 0 → discarded; with one
    retrained model mixed in, FPR = 1/16 and ε = log(1 − δ − 1/2) − log(1/16) (the double-threshold family finds no more)."""
    retrained = np.linspace(0.0, 1.5, 16)
    unlearned = np.r_[np.linspace(0.0, 1.5, 8), np.linspace(3.0, 4.5, 8)]
    retrained[-1] = 4.0
    got = example_epsilon(unlearned, retrained)
    assert got >= math.log(1 - 1e-5 - 0.5) - math.log(1 / 16) - 1e-6


@pytest.mark.parametrize("models, epsilons, points", [
    (16, [0.0, 0.49], [1.0, 1.0]),
    (16, [0.5, 1.2, 2.99, 3.0, 50.0], [0.5, 0.25, 1 / 32, 0.0, 0.0]),
    (512, [6.99, 7.0], [2.0**-13, 0.0]),
])
def test_buckets_of_half_an_epsilon_up_to_log_n_minus_1(monkeypatch, models, epsilons, points):
    values = iter(epsilons)
    monkeypatch.setattr(challenge, "example_epsilon", lambda pos, neg: next(values))
    confs = np.zeros((models, len(epsilons)))
    assert forget_quality(confs, confs) == pytest.approx(sum(points) / len(points))


def test_the_score_scales_f_by_the_accuracy_ratios():
    same = np.random.default_rng(1).normal(size=(4, 3))
    out = challenge_measures(same, same, {"retain": 0.9, "test": 0.8}, {"retain": 1.0, "test": 0.9})
    assert out == pytest.approx({"mia/neurips_f": 1.0, "mia/neurips_score": 0.9 * 0.8 / 0.9, "mia/neurips_models": 4.0})
    with pytest.raises(ValueError, match="at least 3"):
        challenge_measures(same[:2], same[:2], {"retain": 1, "test": 1}, {"retain": 1, "test": 1})
