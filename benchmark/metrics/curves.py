"""Metrics per epoch of unlearning, and seed 003's volatility scores computed from them."""

from __future__ import annotations

from collections.abc import Sequence

CURVE_SPLITS = ("forget", "retain", "test")
SCENARIO_CURVE_SPLITS = ("test_forget", "test_retain", "noise")
"""Also curved in the scenarios that have them: class scenarios' test_forget / test_retain (seed 003's test-forget and
test-remain accuracy), `Outliers`' noise (the forgotten group with its true labels, seed 003 Table 2)."""
FORGET_SPLITS = ("forget", "test_forget")
"""Curves whose volatility seed 003 counts downwards (forget accuracy should fall)."""


def volatility(curve: Sequence[float], forget: bool) -> float:
    """Seed 003 §4.1's volatility, exactly as printed, of an accuracy curve Acc_0 … Acc_T (Acc_0 right after the method's
    one-off step, e.g. masking): remain (`forget=False`) (|T| − 1)⁻¹ Σ_{t=1..|T|} (Acc_t − Acc_{t−1}); forget
    (|T| − 1)⁻¹ Σ_{t=0..|T|−1} (Acc_t − Acc_{t+1}). Both telescope: (Acc_T − Acc_0) / (T − 1) and its negative. NaN
    with fewer than 3 points (T − 1 = 0)."""
    steps = len(curve) - 1
    if steps < 2:
        return float("nan")
    net = curve[-1] - curve[0]
    return (-net if forget else net) / (steps - 1)


def volatility_table1(curve: Sequence[float], forget: bool) -> float:
    """The unnormalised sums of the re-upload's `cal_avg_acc.py` (shivank21/Unlearning-with-Fisher-Masking), which
    reproduce seed 003's Table 1: remain Acc_T − Acc_0; forget Acc_{n−2} − Acc_{n−1} (n points: what Python's index
    −1 makes of the printed sum's Acc_{t+1})."""
    if len(curve) < 2:
        return float("nan")
    return curve[-2] - curve[-1] if forget else curve[-1] - curve[0]


def mean_abs_delta(curve: Sequence[float]) -> float:
    """The mean absolute change between consecutive epochs, (1/T) Σ_{t=1..T} |Acc_t − Acc_{t−1}|: how much a curve
    fluctuates, which the printed (telescoping) volatility cannot tell (0.0 for a single point)."""
    if len(curve) < 2:
        return 0.0
    return sum(abs(b - a) for a, b in zip(curve, curve[1:])) / (len(curve) - 1)


def curve_measures(curves: dict[str, Sequence[float]]) -> dict[str, float]:
    """`{split}/volatility`, `{split}/volatility_table1` and `{split}/mean_abs_delta` of every `{split}/acc` curve, and
    `{split}/best_acc`, its highest point (seed 003 Table 2's "best" test and noise accuracy over epochs 0..T), for the
    splits whose accuracy should not fall."""
    results = {}
    for name, curve in curves.items():
        split = name.removesuffix("/acc")
        forget = split in FORGET_SPLITS
        results |= {f"{split}/volatility": volatility(curve, forget), f"{split}/volatility_table1": volatility_table1(curve, forget),
                    f"{split}/mean_abs_delta": mean_abs_delta(curve)}
        if not forget and curve:
            results[f"{split}/best_acc"] = max(curve)
    return results
