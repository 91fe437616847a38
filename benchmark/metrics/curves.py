"""Metrics per epoch of unlearning, and seed 003's volatility score computed from them."""

from __future__ import annotations

from collections.abc import Sequence

CURVE_SPLITS = ("forget", "retain", "test")
CLASS_CURVE_SPLITS = ("test_forget", "test_retain")
"""Also curved in class scenarios (seed 003's test-forget and test-remain accuracy)."""


def volatility(curve: Sequence[float]) -> float:
    """Seed 003 §4.1's volatility score of an accuracy curve Acc_0 … Acc_T (Acc_0 before unlearning):
    the mean absolute change between consecutive epochs, (1/T) Σ_{t=1..T} |Acc_t − Acc_{t−1}|.

    Our reading: the paper prints the signed sum Σ (Acc_t − Acc_{t−1}) / (|T| − 1), which telescopes
    to the net change (Acc_T − Acc_0) and cannot measure how much a curve "fluctuates severely", the
    property the score is introduced for; the absolute value measures it, and equals the printed
    formula for monotone curves (up to sign and the |T| − 1 normalisation).
    """
    if len(curve) < 2:
        return 0.0
    return sum(abs(b - a) for a, b in zip(curve, curve[1:])) / (len(curve) - 1)
