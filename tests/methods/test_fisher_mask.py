"""Seed 003's masking base, FisherMask and RandomMask on digits: the mask, its hash, the compressed schedule, errors."""

import pytest
import torch

from benchmark.core.errors import UnlearnBenchError
from benchmark.experiment.runner import attach, run
from benchmark.metrics.evaluator import Evaluation
from benchmark.models.pretraining import MILESTONES, Pretrained
from datamodules.scenarios import WholeClasses
from methods.blocks.masking import top_fraction
from methods import Original
from methods.fisher_mask import FisherMask, RandomMask

QUICK = {"budget": {"max_epochs": 1, "batch_size": 64}}


def attached(method, classes=(0,)):
    attach(method, WholeClasses(classes=list(classes)), Pretrained(), Evaluation(mia=False), progress=False)
    return method


def test_top_fraction_picks_exactly_round_r_n_of_all_tensors_together():
    scores = {"a": torch.tensor([5.0, 1.0, 3.0]), "b": torch.tensor([[4.0, 0.0], [2.0, 6.0]])}
    masks = top_fraction(scores, 0.45)  # round(0.45 · 7) = 3: the scores 6, 5, 4
    assert masks["a"].tolist() == [True, False, False] and masks["b"].tolist() == [[True, False], [False, True]]


@pytest.mark.parametrize("cls", [FisherMask, RandomMask])
def test_exactly_round_r_n_parameters_are_zeroed_and_fine_tuning_moves_them(cls, tmp_path):
    method = cls(ratio=0.04, **QUICK)
    run(method, WholeClasses(classes=[0]), Pretrained(), results_dir=str(tmp_path), progress=False, evaluation=Evaluation(mia=False))
    total = sum(p.numel() for p in method.model.parameters())
    assert method.cost["cost/masked"] == round(0.04 * total) == sum(int(m.sum()) for m in method.masks.values())
    parameters = dict(method.model.named_parameters())
    moved = torch.cat([parameters[name].detach()[mask] for name, mask in method.masks.items()])
    assert (moved != 0).any()  # zeroed, not frozen (a unit whose whole filter is zeroed may stay dead behind its ReLU)


def test_without_fine_tuning_the_masked_parameters_stay_zero_and_test_reads_them(tmp_path):
    method = FisherMask(ratio=0.04, finetune=False, **QUICK)
    record = run(method, WholeClasses(classes=[0]), Pretrained(), results_dir=str(tmp_path), progress=False, evaluation=Evaluation(mia=False))
    parameters = dict(method.model.named_parameters())
    assert all((parameters[name].detach()[mask] == 0).all() for name, mask in method.masks.items())
    assert record["timings"]["cost/epochs"] == 0 and method.one_shot


def test_fisher_masking_alone_hits_the_forgotten_class_far_harder_than_the_others_and_than_random_masking(tmp_path):
    """Seed 003 claim (a), on digits' saturated small CNN: masking alone (no fine-tuning) by F_f − F_r."""
    def masked(method) -> dict:
        return run(method, WholeClasses(classes=[0]), Pretrained(), results_dir=str(tmp_path), progress=False, evaluation=Evaluation(mia=False))["metrics"]

    before, fisher, random = masked(Original()), masked(FisherMask(ratio=0.04, finetune=False, **QUICK)), masked(RandomMask(ratio=0.04, finetune=False, **QUICK))
    forget_drop, retain_drop = before["test_forget/acc"] - fisher["test_forget/acc"], before["test_retain/acc"] - fisher["test_retain/acc"]
    assert forget_drop > 0.3 and forget_drop > 3 * retain_drop
    assert fisher["test_forget/acc"] < random["test_forget/acc"]


@pytest.mark.parametrize("cls", [FisherMask, RandomMask])
def test_the_same_seed_gives_the_same_mask(cls):
    first, again = (attached(cls(ratio=0.02, seed=3, **QUICK) if cls is RandomMask else cls(ratio=0.02, **QUICK)) for _ in range(2))
    for method in (first, again):
        method.prepare(method.data)
    assert first.mask_hash == again.mask_hash
    if cls is RandomMask:
        other = attached(RandomMask(ratio=0.02, seed=4, **QUICK))
        other.prepare(other.data)
        assert other.mask_hash != first.mask_hash


def test_the_original_multistep_schedule_is_replayed_in_s_epochs_stepped_per_iteration():
    method = attached(FisherMask(compress_epochs=5, **QUICK))
    method.pretrained = Pretrained(recipe="fashion_mnist_multistep")  # (the schedule's shape only: ×0.1 at 1/2 and 3/4)
    steps = 5 * method.iterations_per_epoch()
    scheduler = method.configure_optimizers()["lr_scheduler"]["scheduler"]
    rates = []
    for _ in range(steps + 3):
        rates.append(scheduler.get_last_lr()[0])
        scheduler.optimizer.step()
        scheduler.step()
    changes = [i for i in range(1, len(rates)) if rates[i] != rates[i - 1]]
    assert changes == [int(m * steps) for m in MILESTONES] and rates[-1] == pytest.approx(0.1 * 0.01)  # then the last rate is kept


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"ratio": 1.0}, r"FisherMask\.ratio = 1\.0 is not allowed; a fraction in \[0, 1\)"),
    ({"ratio": -0.1}, r"FisherMask\.ratio = -0\.1 is not allowed"),
    ({"compress_epochs": 0}, r"FisherMask\.compress_epochs = 0 is not allowed"),
])
def test_bad_settings_are_one_line_errors(kwargs, message):
    with pytest.raises(UnlearnBenchError, match=message):
        FisherMask(**kwargs)


def test_a_ratio_masking_less_than_one_unit_is_refused_and_writes_no_record(tmp_path):
    with pytest.raises(UnlearnBenchError, match="masks 0.\\d+ of \\d+ units, less than one"):
        run(FisherMask(ratio=1e-9, **QUICK), WholeClasses(classes=[0]), Pretrained(), results_dir=str(tmp_path), progress=False)
    assert not list(tmp_path.rglob("*.json"))
