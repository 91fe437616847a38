"""Seed 003's masking base, FisherMask and RandomMask on digits: the mask, its hash, the compressed schedule, errors."""

import pytest
import torch
from torch import nn

from benchmark.core.errors import DataAccessError, UnlearnBenchError
from benchmark.experiment.runner import attach, run
from benchmark.metrics.evaluator import Evaluation
from benchmark.models import Classifier, Normalize
from benchmark.models.pretraining import MILESTONES, Pretrained
from datamodules.datasets import ImageTensorDataset
from datamodules.scenarios import RandomInstances, WholeClasses
from methods.blocks.masking import top_fraction
from methods import Original
from methods.fisher_mask import TFIDF, ActivationMask, FisherMask, GradMask, RandomMask, integrated_gradients

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


def test_a_constant_schedule_keeps_the_optimizers_rate():
    """Seed 003 Fig. 5's constant rates (0.1, 0.01, 0.001) against the compressed schedule."""
    method = attached(FisherMask(schedule="constant", optimizer={"init_args": {"lr": 0.01}}, **QUICK))
    method.pretrained = Pretrained(recipe="fashion_mnist_multistep")
    optimizer = method.configure_optimizers()
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.param_groups[0]["lr"] == 0.01


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


class PlantedView(dict):
    """The splits a method's data view would give, with the view's class facts."""

    num_classes, forget_classes = 4, (0,)


def planted(seed: int = 0) -> tuple[Classifier, PlantedView]:
    """A Conv-BN-ReLU net whose channel 2 fires only on a bright 3×3 block, which only class-0 images have (the others:
    classes 1-3, dim noise)."""
    torch.manual_seed(seed)
    backbone = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    model = Classifier(backbone, 4, 4, "planted", Normalize((0.0,), (1.0,))).eval()
    with torch.no_grad():
        backbone[0].weight.uniform_(0.0, 0.3)
        backbone[0].bias.zero_()  # the other channels: about twice as active on the retain set's noise as on a block
        backbone[0].weight[2], backbone[0].bias[2] = 1.0, -5.0
    generator = torch.Generator().manual_seed(0)
    forget = torch.zeros(20, 1, 8, 8)
    for i, (r, c) in enumerate(torch.randint(0, 6, (20, 2), generator=generator).tolist()):
        forget[i, 0, r : r + 3, c : c + 3] = 1.0
    retain = 0.5 * torch.rand(60, 1, 8, 8, generator=generator)
    data = PlantedView(forget=ImageTensorDataset(forget, torch.zeros(20)), retain=ImageTensorDataset(retain, 1 + torch.arange(60) % 3))
    return model, data


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("cls", [ActivationMask, TFIDF])
def test_channel_methods_pick_the_planted_class_0_only_channel_and_zero_its_filter(cls, seed):
    model, data = planted(seed)
    method = cls(ratio=0.25)  # one channel of four
    method.model = model
    scores = method.scores(data)["backbone.0"]
    assert scores.argmax() == 2 and scores[2] > 1.5 * scores[[0, 1, 3]].max()
    method.masks = top_fraction(method.scores(data), 0.25)
    with torch.no_grad():
        method.zero(method.masks)
    assert (model.backbone[0].weight[2] == 0).all() and model.backbone[0].bias[2] == 0 and (model.backbone[0].weight[[0, 1, 3]] != 0).any()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fisher_mask_picks_the_planted_class_0_only_channel(seed):
    """With a head fitted to the features, the parameters with the largest F_f − F_r are channel 2's: its filter, bias
    and BatchNorm scale and shift (its gradient is zero on every retain image, where it never fires)."""
    model, data = planted(seed)
    images = torch.cat([data["forget"].images, data["retain"].images]).float()
    labels = torch.cat([data["forget"].targets, data["retain"].targets]).long()
    with torch.no_grad():
        features = model.features(images)
    optimizer = torch.optim.Adam(model.head.parameters(), lr=0.1)
    for _ in range(300):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model.head(features), labels).backward()
        optimizer.step()
    method = FisherMask(ratio=0.1)
    method.model = model
    scores = method.scores(data)
    assert scores["backbone.0.weight"].flatten(1).sum(1).argmax() == 2
    masks = top_fraction(scores, 9 / sum(p.numel() for p in model.parameters()))  # as many as a filter has weights
    for name in ("backbone.0.weight", "backbone.0.bias", "backbone.1.weight", "backbone.1.bias"):
        channels = masks[name].flatten(1).any(1) if masks[name].ndim > 1 else masks[name]
        assert channels.nonzero().flatten().tolist() == [2], name
    assert not masks["head.weight"].any()


def test_a_channel_method_on_a_net_without_conv_bn_relu_is_refused_and_writes_no_record(tmp_path):
    with pytest.raises(UnlearnBenchError, match="has no Conv-BatchNorm-ReLU layers"):
        run(ActivationMask(**QUICK), WholeClasses(classes=[0]), Pretrained(arch="small_cnn"), results_dir=str(tmp_path), progress=False)
    assert not list(tmp_path.rglob("*.json"))


def test_integrated_gradients_are_complete():
    """Σ over a layer's channels of the integrated gradient = L(x) − L(x with that layer's output at 0), as m grows."""
    model, data = planted()
    x, y = data["retain"].images[:5].float(), data["retain"].targets[:5]
    layer = model.backbone[2]
    attribution = integrated_gradients(model, layer, x, y, steps=400).sum(1)
    zeroed = layer.register_forward_hook(lambda module, inputs, output: torch.zeros_like(output))
    baseline = torch.nn.functional.cross_entropy(model(x), y, reduction="none").detach()
    zeroed.remove()
    full = torch.nn.functional.cross_entropy(model(x), y, reduction="none").detach()
    assert torch.allclose(attribution, full - baseline, atol=5e-3)


def test_grad_mask_masks_exactly_round_r_n_channels(tmp_path):
    method = GradMask(ratio=0.1, steps=4, finetune=False, **QUICK)
    run(method, WholeClasses(classes=[0]), Pretrained(arch="narrow_cnn_bn"), results_dir=str(tmp_path), progress=False, evaluation=Evaluation(mia=False))
    assert method.cost["cost/masked"] == round(0.1 * (32 + 64))
    conv = method.model.backbone[0]
    assert all((conv.weight[j] == 0).all() for j in method.masks["backbone.0"].nonzero().flatten())


def test_tfidf_off_a_class_scenario_is_refused_and_writes_no_record(tmp_path):
    with pytest.raises(UnlearnBenchError, match="TFIDF scores channels for the forgotten class"):
        run(TFIDF(**QUICK), RandomInstances(k=8), Pretrained(arch="narrow_cnn_bn"), results_dir=str(tmp_path), progress=False)
    assert not list(tmp_path.rglob("*.json"))


@pytest.mark.parametrize("cls", [FisherMask, ActivationMask])
def test_scored_on_the_forget_set_alone_without_fine_tuning_the_method_never_sees_the_retain_set(cls):
    """Seed 003 §4.3's "no remain data"."""
    method = attached(cls(score_on="forget", finetune=False, **QUICK))
    with pytest.raises(DataAccessError, match="cannot read the 'retain' split"):
        method.data["retain"]
