"""Membership-inference metrics against direct scikit-learn computations, batch/order invariance, DDP on 2 CPUs."""

from __future__ import annotations

import datetime
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from sklearn.metrics import roc_auc_score
from sklearn.svm import SVC

from benchmark.core.errors import UnknownNameError, UnlearnBenchError
from benchmark.metrics.mia import MIA_METRICS, EmptySplitError, MembershipInference, balanced_subsample, create_mia_metric, output_entropy

NUM_CLASSES = 5
SIZES = {"forget": 7, "retain": 40, "test": 25}
Outputs = dict[str, tuple[torch.Tensor, torch.Tensor]]


def synthetic_outputs() -> Outputs:
    """Fixed logits and labels: retain confident and correct, test less confident, forget a mix of both."""
    g = torch.Generator().manual_seed(0)

    def logits(n: int, margin: float, noise: float) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.randint(NUM_CLASSES, (n,), generator=g)
        out = noise * torch.randn(n, NUM_CLASSES, generator=g)
        out[torch.arange(n), labels] += margin * torch.rand(n, generator=g)
        return out, labels

    retain, test = logits(40, 12.0, 1.0), logits(25, 4.0, 1.5)
    forget_seen, forget_unseen = logits(4, 12.0, 1.0), logits(3, 4.0, 1.5)
    forget = (torch.cat([forget_seen[0], forget_unseen[0]]), torch.cat([forget_seen[1], forget_unseen[1]]))
    return {"forget": forget, "retain": retain, "test": test}


def expected_values(outputs: Outputs, seed: int = 0, max_samples: int | None = None) -> dict[str, float]:
    """The three attacks written out with numpy and scikit-learn."""
    probs = {s: torch.softmax(z.double(), -1).numpy() for s, (z, _) in outputs.items()}
    entropy = {s: -(p * np.log(p)).sum(1) for s, p in probs.items()}
    confidence = {s: p[np.arange(len(p)), outputs[s][1].numpy()] for s, p in probs.items()}

    def member_rate(feature: dict[str, np.ndarray]) -> float:
        members, non_members = feature["retain"], feature["test"]
        size = min(len(members), len(non_members), max_samples or len(members))
        rng = np.random.default_rng(seed)
        members, non_members = (side if len(side) == size else side[np.sort(rng.choice(len(side), size=size, replace=False))]
                                for side in (members, non_members))
        x = np.concatenate([members, non_members]).reshape(-1, 1)
        y = np.r_[np.ones(size), np.zeros(size)]
        svm = SVC(C=3, gamma="auto", kernel="rbf").fit(x, y)
        return float(svm.predict(feature["forget"].reshape(-1, 1)).mean())

    loss = {s: -np.log(c) for s, c in confidence.items()}
    is_forget = np.r_[np.ones(len(loss["forget"])), np.zeros(len(loss["test"]))]
    return {
        "mia/svm_asr": member_rate(entropy),
        "mia/efficacy": 1.0 - member_rate(confidence),
        "mia/loss_auc": float(roc_auc_score(is_forget, -np.r_[loss["forget"], loss["test"]])),
    }


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


def test_matches_scikit_learn(outputs: Outputs, expected: dict[str, float]) -> None:
    assert computed(outputs, in_order()) == pytest.approx(expected, abs=1e-9)


def test_order_batches_and_padding_do_not_matter(outputs: Outputs, expected: dict[str, float]) -> None:
    g = torch.Generator().manual_seed(1)
    shuffled = {s: list(torch.randperm(n, generator=g).split(3)) for s, n in SIZES.items()}
    shuffled["forget"].append(torch.tensor([0, 6]))  # a padding sampler repeats samples
    shuffled["relabel"] = [torch.arange(2)]  # a split no attack uses
    outputs = {**outputs, "relabel": outputs["forget"]}
    assert computed(outputs, shuffled) == pytest.approx(expected, abs=1e-9)


def test_seed_draws_other_shadow_members(outputs: Outputs) -> None:
    assert computed(outputs, in_order(), seed=3) == pytest.approx(expected_values(outputs, seed=3), abs=1e-9)


def test_max_samples_fits_the_svms_on_that_many_a_side(outputs: Outputs) -> None:
    assert [len(side) for side in balanced_subsample(40, 25, seed=0, max_samples=10)] == [10, 10]
    capped = computed(outputs, in_order(), max_samples=20)
    assert capped == pytest.approx(expected_values(outputs, max_samples=20), abs=1e-9)
    assert capped["mia/svm_asr"] != computed(outputs, in_order())["mia/svm_asr"]  # 20 of the 25 test samples: another SVM
    with pytest.raises(UnlearnBenchError, match="max_samples"):
        create_mia_metric("mia/efficacy", max_samples=0)


def test_forget_like_retain_leaks_more_than_forget_like_test(outputs: Outputs) -> None:
    like = {s: computed({**outputs, "forget": outputs[s]}, {**in_order(), "forget": [torch.arange(SIZES[s])]}) for s in ("retain", "test")}
    assert like["retain"]["mia/svm_asr"] > like["test"]["mia/svm_asr"]
    assert like["retain"]["mia/efficacy"] < like["test"]["mia/efficacy"]
    assert like["retain"]["mia/loss_auc"] > 0.5 == like["test"]["mia/loss_auc"]


@pytest.mark.parametrize("name", list(MIA_METRICS))
def test_empty_split_is_a_clear_error(name: str, outputs: Outputs) -> None:
    metric = create_mia_metric(name)
    feed(metric, outputs, {"forget": in_order()["forget"]})
    with pytest.raises(EmptySplitError, match=f"{name}: no samples of split.* test"):
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
    {"forget": [torch.tensor([5, 0]), torch.tensor([3, 6])], "retain": list(torch.arange(40).flip(0).split(16)), "test": [torch.arange(0, 25, 3)]},
    {"forget": [torch.tensor([1, 4, 2])], "test": [torch.tensor([i for i in range(25) if i % 3])]},
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
