"""Relearn time (seed 002): 0 at the target, > 0 after damage, deterministic, capped, never touches the caller's model."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from benchmark.audits.relearn import relearn_time
from benchmark.core.errors import UnlearnBenchError
from benchmark.experiment.runner import run
from benchmark.metrics.accuracy import evaluate_accuracy
from benchmark.metrics.evaluator import Evaluation
from benchmark.models import Classifier, create_model
from benchmark.models.pretraining import Pretrained
from datamodules.datasets import ImageTensorDataset, collate_batch
from datamodules.scenarios import RandomInstances, WholeClasses
from methods import NegGrad, Original

NUM_CLASSES = 10
FAST = {"samples": 20, "batch_size": 20}


def prototype_data(n: int, seed: int) -> ImageTensorDataset:
    """Digits-sized images: one fixed random prototype per class plus noise, so the labels are learnable."""
    prototypes = torch.rand(NUM_CLASSES, 1, 8, 8, generator=torch.Generator().manual_seed(123))
    targets = torch.arange(n) % NUM_CLASSES
    noise = 0.15 * torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))
    return ImageTensorDataset((prototypes[targets] + noise).clamp(0, 1), targets)


@pytest.fixture(scope="module")
def trained() -> tuple[Classifier, ImageTensorDataset, ImageTensorDataset, float]:
    torch.manual_seed(0)
    model = create_model("small_cnn", num_classes=NUM_CLASSES, in_chans=1, image_size=8)
    train = prototype_data(300, seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(8):
        for x, y in DataLoader(train, batch_size=50, shuffle=True, collate_fn=collate_batch):
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
    forget = train.subset((train.targets == 0).nonzero().flatten())
    target = evaluate_accuracy(model, DataLoader(forget, batch_size=64, collate_fn=collate_batch), NUM_CLASSES, torch.device("cpu"))
    assert target == 1.0
    return model, train, forget, target


def damaged(model: Classifier) -> Classifier:
    """The trained model with a re-initialised head (forget accuracy near chance)."""
    model = copy.deepcopy(model)
    torch.manual_seed(1)
    model.head.reset_parameters()
    return model


def test_zero_when_already_at_target(trained) -> None:
    model, train, forget, target = trained
    assert relearn_time(model, train, forget, target, NUM_CLASSES, cap=3, **FAST) == (0, True)
    indexed = DataLoader(list(zip(forget.images, forget.targets, range(len(forget)))), batch_size=7)
    assert relearn_time(model, train, indexed, target, NUM_CLASSES, cap=3, **FAST) == (0, True)


def test_reinitialised_head_needs_epochs_and_is_deterministic(trained) -> None:
    model, train, forget, target = trained
    model = damaged(model)
    before = copy.deepcopy(model.state_dict())
    first = relearn_time(model, train, forget, target, NUM_CLASSES, cap=40, seed=3, **FAST)
    assert first[1] and 0 < first[0] <= 40
    assert relearn_time(model, train, forget, target, NUM_CLASSES, cap=40, seed=3, **FAST) == first
    assert relearn_time(model, train, forget, target, NUM_CLASSES, cap=40, seed=4, **FAST) != first
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(tensor, before[name], rtol=0, atol=0)
    assert model.training


def test_capped_when_not_reached(trained) -> None:
    model, train, forget, target = trained
    assert relearn_time(damaged(model), train, forget, target, NUM_CLASSES, cap=2, lr=0.0, **FAST) == (2, False)
    assert relearn_time(damaged(model), train, forget, target, NUM_CLASSES, cap=0, **FAST) == (0, False)


def test_rejects_impossible_target(trained) -> None:
    model, train, forget, _ = trained
    with pytest.raises(ValueError, match="target_acc"):
        relearn_time(model, train, forget, 1.5, NUM_CLASSES)


def test_seed_002s_reading_regains_the_forgotten_classes_test_accuracy_with_the_recipes_optimizer(tmp_path) -> None:
    """`relearn_split="test_forget"`, `relearn_optimizer="recipe"`: the original needs 0 epochs, NegGrad (which
    misclassifies class 0) needs some; a scenario without that split is refused before any work."""
    evaluation = Evaluation(mia=False, relearn=True, relearn_split="test_forget", relearn_optimizer="recipe", relearn_cap=5)
    original = run(Original(), WholeClasses(classes=[0]), Pretrained(), results_dir=str(tmp_path), progress=False, evaluation=evaluation)
    forgot = run(NegGrad(), WholeClasses(classes=[0]), Pretrained(), results_dir=str(tmp_path), progress=False, evaluation=evaluation)
    assert original["metrics"]["rt/epochs"] == 0 and forgot["metrics"]["test_forget/acc"] < 0.5 and forgot["metrics"]["rt/epochs"] >= 1
    assert original["evaluation"]["relearn_split"] == "test_forget"
    with pytest.raises(UnlearnBenchError, match="relearn_split = 'test_forget' is not a split of this scenario"):
        run(Original(), RandomInstances(k=8), Pretrained(), results_dir=str(tmp_path / "bad"), progress=False, evaluation=evaluation)
    assert not list((tmp_path / "bad").rglob("*.json"))
