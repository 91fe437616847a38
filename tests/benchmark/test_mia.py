"""Membership-inference attacks against direct scikit-learn / NumPy computations of each published recipe.

The synthetic retain rows are ordered (first half confident, second half more confident), so the first rows, all
rows and a random draw give different values: a test fails if an attack's row selection changes.
"""

from __future__ import annotations

import datetime
import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from scipy.optimize import minimize
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedShuffleSplit, cross_val_score
from sklearn.svm import SVC

from benchmark.core.errors import UnknownNameError, UnlearnBenchError
from benchmark.metrics.mia import (
    MIA_METRICS,
    EmptySplitError,
    MembershipInference,
    TooFewSamplesError,
    create_mia_metric,
    modified_entropy,
    output_entropy,
)

NUM_CLASSES = 4
SIZES = {"forget": 40, "retain": 80, "test": 36}
Outputs = dict[str, tuple[torch.Tensor, torch.Tensor]]


def synthetic_outputs() -> Outputs:
    """Fixed logits and labels: retain's first half confident, its second half far more so; test unsure; forget between."""
    g = torch.Generator().manual_seed(1)

    def logits(n: int, margin: float, noise: float) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.randint(NUM_CLASSES, (n,), generator=g)
        out = noise * torch.randn(n, NUM_CLASSES, generator=g)
        out[torch.arange(n), labels] += margin * torch.rand(n, generator=g)
        return out, labels

    first, second = logits(40, 5.0, 1.2), logits(40, 20.0, 1.0)
    retain = (torch.cat([first[0], second[0]]), torch.cat([first[1], second[1]]))
    test = logits(36, 2.0, 1.5)
    return {"forget": logits(40, 8.0, 1.2), "retain": retain, "test": test}


def svc_member_rate(members: np.ndarray, non_members: np.ndarray, targets: np.ndarray) -> float:
    x = np.concatenate([members, non_members]).reshape(len(members) + len(non_members), -1)
    y = np.r_[np.ones(len(members)), np.zeros(len(non_members))]
    return float(SVC(C=3, gamma="auto", kernel="rbf").fit(x, y).predict(targets.reshape(len(targets), -1)).mean())


def features(outputs: Outputs) -> dict[str, dict[str, np.ndarray]]:
    """Each feature of each split written out with NumPy, in float32 as the metrics keep them."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for split, (z, y) in outputs.items():
        p = torch.softmax(z, -1).numpy().astype(np.float64)
        y = y.numpy()
        rows = np.arange(len(y))
        p_y = p[rows, y]
        log = lambda a: np.log(np.maximum(a, 1e-30))  # noqa: E731
        m_entropy = -((1 - p_y) * log(p_y) + (p * log(1 - p)).sum(1) - p_y * log(1 - p_y))
        out[split] = {
            "entropy": -(p * np.log(p)).sum(1),
            "confidence": p_y,
            "correctness": (p.argmax(1) == y).astype(float),
            "m_entropy": m_entropy,
            "prob": p,
            "loss": -np.log(p_y),
            "label": y,
        }
    return out


def expected_values(outputs: Outputs, seed: int = 0, cap: int | None = None) -> dict[str, float]:
    """Every attack as its published code computes it (see `benchmark/metrics/mia.py`), on these outputs."""
    f = features(outputs)
    fo, re, te = f["forget"], f["retain"], f["test"]
    n_test = len(te["entropy"]) if cap is None else min(cap, len(te["entropy"]))
    m = min(len(re["entropy"]), n_test)
    values = {"mia/svm_asr": svc_member_rate(re["entropy"][:m], te["entropy"][:m], fo["entropy"])}
    for feature, name in [("confidence", "mia/efficacy"), ("correctness", "mia/efficacy_correctness"), ("entropy", "mia/efficacy_entropy"),
                          ("m_entropy", "mia/efficacy_m_entropy"), ("prob", "mia/efficacy_prob")]:
        values[name] = 1.0 - svc_member_rate(re[feature][:n_test], te[feature][:n_test], fo[feature])
    cut = slice(None) if cap is None else slice(cap)
    values["mia/asr_golatkar"] = svc_member_rate(re["entropy"][cut], te["entropy"][cut], fo["entropy"])
    x = np.r_[re["entropy"], te["entropy"]].reshape(-1, 1)
    y = np.r_[np.ones(len(re["entropy"])), np.zeros(len(te["entropy"]))]
    values["mia/asr_lr"] = float(LogisticRegression(C=2.0, class_weight="balanced").fit(x, y).predict(fo["entropy"].reshape(-1, 1)).mean())

    def cv(test_losses: list, forget_losses: list, n_splits: int, random_state: int, clip: bool) -> float:
        x = np.array(test_losses + forget_losses).reshape(-1, 1)
        x = np.clip(x, -100, 100) if clip else x
        y = np.array([0] * len(test_losses) + [1] * len(forget_losses))
        return float(cross_val_score(LogisticRegression(), x, y, cv=StratifiedShuffleSplit(n_splits=n_splits, random_state=random_state), scoring="accuracy").mean())

    # SCRUB's MIA_experiments.ipynb: test rows of the forget classes, random.seed(seed) + random.sample of the larger side.
    forget_losses, test_losses = list(fo["loss"]), list(te["loss"][np.isin(te["label"], np.unique(fo["label"]))])
    random.seed(seed)
    if len(forget_losses) > len(test_losses):
        forget_losses = list(random.sample(forget_losses, len(test_losses)))
    elif len(test_losses) > len(forget_losses):
        test_losses = list(random.sample(test_losses, len(forget_losses)))
    values["mia/scrub_loss"] = cv(test_losses, forget_losses, 5, seed, clip=True)
    # The starting kit's simple_mia: shuffle the larger side, keep as many as the smaller one has.
    forget_losses, test_losses = fo["loss"].copy(), te["loss"].copy()
    np.random.RandomState(seed).shuffle(forget_losses if len(forget_losses) > len(test_losses) else test_losses)
    n = min(len(forget_losses), len(test_losses))
    values["mia/simple"] = cv(list(test_losses[:n]), list(forget_losses[:n]), 10, 0, clip=False)
    is_forget = np.r_[np.ones(len(fo["loss"])), np.zeros(len(te["loss"]))]
    values["mia/loss_auc"] = float(roc_auc_score(is_forget, -np.r_[fo["loss"], te["loss"]]))
    return values


def feed(metric: MembershipInference, outputs: Outputs, splits: dict[str, list[torch.Tensor]]) -> None:
    """`metric.update` with each split's samples at the given positions, one batch per tensor of positions."""
    for split, batches in splits.items():
        logits, labels = outputs[split]
        for idx in batches:
            metric.update(split, logits[idx], labels[idx], idx)


def in_order(batch_size: int = 512) -> dict[str, list[torch.Tensor]]:
    return {s: list(torch.arange(n).split(batch_size)) for s, n in SIZES.items()}


def computed(outputs: Outputs, splits: dict[str, list[torch.Tensor]], **kwargs: int) -> dict[str, float]:
    values = {}
    for name in MIA_METRICS:
        metric = create_mia_metric(name, **kwargs)
        feed(metric, outputs, splits)
        values |= metric.compute()
    return values


@pytest.fixture(scope="module")
def outputs() -> Outputs:
    return synthetic_outputs()


@pytest.fixture(scope="module")
def expected(outputs: Outputs) -> dict[str, float]:
    values = expected_values(outputs)
    assert all(0.0 < v < 1.0 for v in values.values()), values  # non-degenerate attacks
    return values


def test_every_attack_is_its_published_recipe(outputs: Outputs, expected: dict[str, float]) -> None:
    assert set(expected) == set(MIA_METRICS)
    assert computed(outputs, in_order()) == pytest.approx(expected, abs=1e-9)


def test_the_synthetic_retain_order_tells_first_all_and_random_rows_apart(outputs: Outputs) -> None:
    """Without this the recipe test could not see a change of row selection."""
    f = features(outputs)
    re, te, fo = f["retain"]["entropy"], f["test"]["entropy"], f["forget"]["entropy"]
    drawn = np.sort(np.random.default_rng(0).choice(len(re), size=len(te), replace=False))
    first, every, random_rows = (svc_member_rate(rows, te, fo) for rows in (re[: len(te)], re, re[drawn]))
    assert len({first, every, random_rows}) == 3, (first, every, random_rows)
    conf = f["retain"]["confidence"], f["test"]["confidence"], f["forget"]["confidence"]
    assert svc_member_rate(conf[0][: len(te)], conf[1], conf[2]) != svc_member_rate(conf[0][drawn], conf[1], conf[2])


def test_order_batches_and_padding_do_not_matter(outputs: Outputs, expected: dict[str, float]) -> None:
    g = torch.Generator().manual_seed(1)
    shuffled = {s: list(torch.randperm(n, generator=g).split(3)) for s, n in SIZES.items()}
    shuffled["forget"].append(torch.tensor([0, 6]))  # a padding sampler repeats samples
    shuffled["relabel"] = [torch.arange(2)]  # a split no attack uses
    outputs = {**outputs, "relabel": outputs["forget"]}
    assert computed(outputs, shuffled) == pytest.approx(expected, abs=1e-9)


def test_the_seed_moves_only_the_attacks_that_draw(outputs: Outputs) -> None:
    seeded = computed(outputs, in_order(), seed=3)
    assert seeded == pytest.approx(expected_values(outputs, seed=3), abs=1e-9)
    unseeded = computed(outputs, in_order())
    assert {name for name in MIA_METRICS if seeded[name] != unseeded[name]} <= {"mia/scrub_loss", "mia/simple"}


def test_max_samples_keeps_a_prefix_for_the_svm_attacks(outputs: Outputs) -> None:
    capped = computed(outputs, in_order(), max_samples=20)
    assert capped == pytest.approx(expected_values(outputs, cap=20), abs=1e-9)
    uncapped = computed(outputs, in_order())
    changed = {name for name in MIA_METRICS if capped[name] != uncapped[name]}
    assert {"mia/efficacy", "mia/asr_golatkar"} <= changed <= {name for name in MIA_METRICS if "efficacy" in name or "svm" in name or "golatkar" in name}
    with pytest.raises(UnlearnBenchError, match="max_samples"):
        create_mia_metric("mia/efficacy", max_samples=0)


def test_asr_lr_is_the_two_class_multinomial_fit_of_ssd() -> None:
    """SSD fits `LogisticRegression(multi_class="multinomial", class_weight="balanced")`; ours is binomial with C = 2."""
    rng = np.random.default_rng(0)
    x = np.r_[rng.normal(0.2, 0.3, 70), rng.normal(0.9, 0.5, 30)].reshape(-1, 1)
    y = np.r_[np.ones(70), np.zeros(30)]
    weight = np.where(y == 1, len(y) / (2 * 70), len(y) / (2 * 30))

    def objective(theta: np.ndarray) -> float:  # C = 1: Σ w·CE(softmax) + ½‖W‖², intercepts unpenalised
        w, b = theta[:2], theta[2:]
        z = x * w + b
        log_p = z - np.logaddexp(z[:, 0], z[:, 1])[:, None]
        return float(-(weight * log_p[np.arange(len(y)), y.astype(int)]).sum() + 0.5 * (w**2).sum())

    w0, w1, b0, b1 = minimize(objective, np.zeros(4), method="L-BFGS-B", options={"gtol": 1e-10}).x
    ours = LogisticRegression(C=2.0, class_weight="balanced", tol=1e-10).fit(x, y)
    assert ours.coef_[0, 0] == pytest.approx(w1 - w0, rel=1e-4) and ours.intercept_[0] == pytest.approx(b1 - b0, rel=1e-4)


def test_m_entropy_is_song_and_mittal_per_row() -> None:
    logits = torch.tensor([[3.0, 0.0, -1.0], [0.0, 2.0, 0.0], [50.0, -50.0, 0.0]])
    labels = torch.tensor([0, 2, 1])
    p = logits.double().softmax(-1)
    want = []
    for row, y in zip(p, labels.tolist(), strict=True):
        value = -(1 - row[y]) * math.log(max(row[y], 1e-30))
        value -= sum(row[c] * math.log(max(1 - row[c], 1e-30)) for c in range(3) if c != y)
        want.append(float(value))
    assert modified_entropy(logits, labels).tolist() == pytest.approx(want, rel=1e-6)


def test_forget_like_retain_leaks_more_than_forget_like_test(outputs: Outputs) -> None:
    like = {s: computed({**outputs, "forget": outputs[s]}, {**in_order(), "forget": [torch.arange(SIZES[s])]}) for s in ("retain", "test")}
    assert like["retain"]["mia/svm_asr"] > like["test"]["mia/svm_asr"]
    assert like["retain"]["mia/efficacy"] < like["test"]["mia/efficacy"]
    assert like["retain"]["mia/loss_auc"] > 0.5 == pytest.approx(like["test"]["mia/loss_auc"])
    for name in ("mia/asr_golatkar", "mia/asr_lr", "mia/scrub_loss", "mia/simple"):
        assert like["retain"][name] > like["test"][name], name


@pytest.mark.parametrize("name", list(MIA_METRICS))
def test_empty_split_is_a_clear_error(name: str, outputs: Outputs) -> None:
    metric = create_mia_metric(name)
    feed(metric, outputs, {"forget": in_order()["forget"]})
    with pytest.raises(EmptySplitError, match=f"{name}: no samples of split.* test"):
        metric.compute()


@pytest.mark.parametrize(("name", "forget", "test", "message"), [
    ("mia/scrub_loss", 40, 36, "6 test rows of D_f's classes; got 40 and 5"),
    ("mia/simple", 5, 36, "6 D_f rows and 6 test rows; got 5 and 36"),
])
def test_a_split_too_small_for_the_cross_validation_names_the_attack_and_sizes(outputs: Outputs, name: str, forget: int, test: int, message: str) -> None:
    outputs = dict(outputs)
    if name == "mia/scrub_loss":  # only 5 test rows of the classes D_f has
        logits, labels = outputs["test"][0], torch.full((36,), 3)
        labels[:5] = 0
        outputs["test"], outputs["forget"] = (logits, labels), (outputs["forget"][0], torch.arange(40) % 3)
    metric = create_mia_metric(name)
    feed(metric, outputs, {"forget": [torch.arange(forget)], "test": [torch.arange(test)]})
    with pytest.raises(TooFewSamplesError, match=f"{name}: .*{message}"):
        metric.compute()


@pytest.mark.parametrize("name", list(MIA_METRICS))
def test_registry_names_and_metric_contract(name: str) -> None:
    metric = create_mia_metric(name)
    assert metric.name == name and not metric.is_differentiable
    assert all(split in ("forget", "retain", "test") for split in metric.splits)


def test_unknown_name_lists_known_ones() -> None:
    with pytest.raises(UnknownNameError, match="mia/svm_asr"):
        create_mia_metric("mia/nope")


# Uneven shards of the same samples over 2 processes; rank 1 has no retain sample at all.
SHARDS = [
    {"forget": [torch.tensor([5, 0, 13, 39]), torch.arange(20, 30)], "retain": list(torch.arange(80).flip(0).split(16)), "test": [torch.arange(0, 36, 3)]},
    {"forget": [torch.tensor([i for i in range(40) if i not in (5, 0, 13, 39) and not 20 <= i < 30])], "test": [torch.tensor([i for i in range(36) if i % 3])]},
]


def _ddp_worker(rank: int, world_size: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size, timeout=datetime.timedelta(seconds=60))
    try:
        torch.save(computed(synthetic_outputs(), SHARDS[rank]), Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_ddp_two_processes_match_one(tmp_path: Path, outputs: Outputs, expected: dict[str, float]) -> None:
    for split, n in SIZES.items():
        assert sorted(torch.cat([i for shard in SHARDS for i in shard.get(split, [])]).tolist()) == list(range(n))
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    single = computed(outputs, in_order())
    assert single == pytest.approx(expected, abs=1e-9)
    for rank in (0, 1):
        assert torch.load(tmp_path / f"rank{rank}.pt", weights_only=True) == single


def test_entropy_is_finite_for_saturated_outputs():
    """Unlearning by gradient ascent drives logits to extremes; 0 · log 0 must count as 0, not NaN."""
    logits = torch.tensor([[1e4, -1e4, 0.0], [0.0, 0.0, 0.0]])
    entropy = output_entropy(logits)
    assert torch.isfinite(entropy).all()
    assert entropy[0].item() == 0.0 and abs(entropy[1].item() - math.log(3)) < 1e-6


def test_an_index_float32_cannot_hold_exactly_is_a_clear_error_at_compute() -> None:
    # Checked once when the features are put in order, not per batch (each check would wait for the device).
    metric = create_mia_metric("mia/efficacy")
    logits, labels = torch.randn(2, NUM_CLASSES), torch.tensor([0, 1])
    metric.update("forget", logits, labels, torch.tensor([0, 2**24 + 1]))
    with pytest.raises(ValueError, match=r"mia/efficacy: indices from 16777216 on are not exact in torch.float32; use set_dtype\(torch.float64\)"):
        metric.split_features("forget")
    exact = create_mia_metric("mia/efficacy").set_dtype(torch.float64)
    exact.update("forget", logits, labels, torch.tensor([2**24 + 1, 0]))
    assert len(exact.split_features("forget")) == 2
