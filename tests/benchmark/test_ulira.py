"""U-LiRA (Hayes et al. 2024): its statistics against a direct computation, and an end-to-end run on digits."""

import numpy as np
import pytest
import torch
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from benchmark.audits.ulira import MIN_STD, ULiRA, logit_confidence
from benchmark.core.errors import UnlearnBenchError
from benchmark.experiment.runner import run
from benchmark.metrics.evaluator import Evaluation
from benchmark.models.pretraining import Pretrained
from datamodules.scenarios import RandomInstances
from methods import Original, Retrain


def test_logit_confidence_is_log_odds_of_the_true_label():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 0.0, 0.0], [1.0, 3.0, 2.0]])
    labels = torch.tensor([0, 2, 1])
    p = logits.double().softmax(-1)[torch.arange(3), labels]
    assert torch.allclose(logit_confidence(logits, labels), torch.log(p) - torch.log1p(-p))
    saturated = logit_confidence(torch.tensor([[1e4, -1e4, 0.0]]), torch.tensor([0]))
    assert torch.isfinite(saturated).all() and saturated.item() == pytest.approx(1e4)


def _direct(unlearned, retrained, targets, truth):
    """The attack written out with scipy and scikit-learn, sample by sample."""
    scores = []
    for model_phi in targets:
        for j, phi in enumerate(model_phi):
            u, r = unlearned[:, j], retrained[:, j]
            scores.append(norm.logpdf(phi, u.mean(), max(u.std(ddof=1), MIN_STD)) - norm.logpdf(phi, r.mean(), max(r.std(ddof=1), MIN_STD)))
    scores, labels = np.array(scores), np.repeat(truth, targets.shape[1])
    said = scores > 0
    return 0.5 * (said[labels == 1].mean() + (~said[labels == 0]).mean()), roc_auc_score(labels, scores)


@pytest.mark.parametrize("shift", [0.0, 1.0, 5.0])
def test_matches_a_direct_computation_in_any_batch_order(shift):
    rng = np.random.default_rng(0)
    n = 40
    unlearned, retrained = rng.normal(shift, 1.0, (8, n)), rng.normal(0.0, 1.0, (8, n))
    targets = np.stack([rng.normal(shift, 1.0, n), rng.normal(0.0, 1.0, n)])
    expected_acc, expected_auc = _direct(unlearned, retrained, targets, np.array([1, 0]))
    metric = ULiRA(torch.tensor(unlearned), torch.tensor(retrained))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(1))
    for part in order.split(7):  # the retrained target first, in shuffled batches
        metric.update(torch.tensor(targets[1])[part], part, unlearned=False)
    for part in order.split(13):
        metric.update(torch.tensor(targets[0])[part], part, unlearned=True)
    result = metric.compute()
    assert result["mia/ulira_acc"] == pytest.approx(expected_acc, abs=1e-12)
    assert result["mia/ulira_auc"] == pytest.approx(expected_auc, abs=1e-12)
    if shift == 5.0:
        assert result["mia/ulira_acc"] > 0.95
    if shift == 0.0:
        assert 0.3 < result["mia/ulira_auc"] < 0.7


def test_needs_two_shadows_and_both_kinds_of_target():
    with pytest.raises(UnlearnBenchError, match="at least 2 shadow"):
        ULiRA(torch.zeros(1, 5), torch.zeros(3, 5))
    metric = ULiRA(torch.randn(3, 5), torch.randn(3, 5))
    metric.update(torch.randn(5), torch.arange(5), unlearned=True)
    with pytest.raises(UnlearnBenchError, match="one unlearned and one retrained"):
        metric.compute()


@pytest.fixture(scope="module")
def smoke_records(tmp_path_factory):
    """Original and Retrain with U-LiRA and the NeurIPS challenge's score on digits, 3 + 3 shadows, one-epoch recipe."""
    folder = tmp_path_factory.mktemp("ulira")
    evaluation = Evaluation(mia=False, ulira=True, neurips=True, ulira_shadows=3)
    pretrained = Pretrained(recipe="smoke")
    return {cls.__name__: run(cls(), RandomInstances(k=50), pretrained, evaluation=evaluation, results_dir=str(folder), progress=False)
            for cls in (Retrain, Original)}


def test_end_to_end_on_digits_writes_both_numbers(smoke_records):
    for record in smoke_records.values():
        assert 0.0 <= record["metrics"]["mia/ulira_acc"] <= 1.0 and 0.0 <= record["metrics"]["mia/ulira_auc"] <= 1.0
        assert 0.0 <= record["metrics"]["mia/neurips_f"] <= 1.0 and record["metrics"]["mia/neurips_models"] == 3
        assert record["metrics"]["mia/neurips_score"] <= 1.5 * record["metrics"]["mia/neurips_f"]
    # Retrain's "unlearned" shadows are retrained models of other seeds: the attack has little to find
    assert smoke_records["Retrain"]["metrics"]["mia/neurips_f"] > smoke_records["Original"]["metrics"]["mia/neurips_f"]
    assert "cost/speedup_vs_retrain" not in smoke_records["Original"]["timings"]  # Original unlearns nothing


def test_shadows_are_cached_per_request(smoke_records, tmp_path):
    from benchmark.core.paths import home

    shadows = sorted(p.relative_to(home()) for p in (home() / "shadows").rglob("*.pt"))
    assert len(shadows) == 3 + (3 + 1) + 3  # shadow originals, retrained (+1 target), Retrain's unlearned shadows
    evaluation = Evaluation(mia=False, ulira=True, neurips=True, ulira_shadows=3)
    run(Original(), RandomInstances(k=50), Pretrained(recipe="smoke"), evaluation=evaluation, results_dir=str(tmp_path), progress=False)
    assert sorted(p.relative_to(home()) for p in (home() / "shadows").rglob("*.pt")) == shadows


def _shadows():
    rng = np.random.default_rng(3)
    return torch.tensor(rng.normal(1.0, 1.0, (6, 11))), torch.tensor(rng.normal(0.0, 1.0, (6, 11))), torch.tensor(rng.normal(0.5, 1.0, (2, 11)))


# Uneven shards over 2 processes: rank 1 sees no sample of the unlearned target.
ULIRA_SHARDS = [{True: [0, 3, 4, 7, 8, 9, 10, 1, 2, 5, 6], False: [2, 9]}, {False: [0, 1, 3, 4, 5, 6, 7, 8, 10]}]


def _ulira_worker(rank: int, init_file: str, out_dir: str) -> None:
    import datetime
    from pathlib import Path

    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2, timeout=datetime.timedelta(seconds=60))
    try:
        unlearned, retrained, targets = _shadows()
        metric = ULiRA(unlearned, retrained)
        for is_unlearned, index in ULIRA_SHARDS[rank].items():
            index = torch.tensor(index)
            metric.update(targets[0 if is_unlearned else 1][index], index, unlearned=is_unlearned)
        torch.save(metric.compute(), Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_ddp_two_processes_match_one(tmp_path):
    import torch.multiprocessing as mp

    unlearned, retrained, targets = _shadows()
    single = ULiRA(unlearned, retrained)
    single.update(targets[0], torch.arange(11), unlearned=True)
    single.update(targets[1], torch.arange(11), unlearned=False)
    expected = single.compute()
    mp.spawn(_ulira_worker, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    for rank in (0, 1):
        assert torch.load(tmp_path / f"rank{rank}.pt", weights_only=True) == pytest.approx(expected, abs=1e-12)
