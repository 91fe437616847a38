"""Recipes that fine-tune a pretrained body (`Recipe.init`, seed 002's Tables III / IV): the original and Retrain start
from the source original's backbone with a fresh head."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
import torch

from benchmark.core.errors import UnlearnBenchError
from benchmark.models.pretraining import RECIPES, Pretrained, build_model, cache_path, initial_model, load_checkpoint
from benchmark.training import obtain_original
from datamodules.datasets import load_dataset
from datamodules.scenarios import NothingForgotten, WholeClasses
from methods.retrain import Retrain


@pytest.fixture
def finetune_recipe(monkeypatch) -> str:
    """`digits_finetune`: one epoch on digits from the body of the `smoke` original of digits."""
    monkeypatch.setitem(RECIPES._items, "digits_finetune", replace(RECIPES.get("smoke"), init=("digits", "smoke")))
    return "digits_finetune"


def source_weights(seed: int) -> torch.nn.Module:
    scenario = NothingForgotten("digits")
    scenario.setup()
    model = build_model("small_cnn", scenario.info, seed)
    load_checkpoint(cache_path(Pretrained("small_cnn", "smoke", seed), "digits", scenario.request.training_set_hash), model)
    return model


def test_the_original_of_a_finetuning_recipe_trains_its_source_first_and_starts_from_its_body(finetune_recipe) -> None:
    scenario = WholeClasses(classes=[0], dataset="digits")
    pretrained = Pretrained("small_cnn", finetune_recipe, seed=5)
    original = obtain_original(scenario, pretrained, progress=False)
    source = source_weights(5)
    start = initial_model(pretrained, scenario.info)
    fresh = build_model("small_cnn", scenario.info, 5)
    for name, value in source.backbone.state_dict().items():
        assert torch.equal(start.backbone.state_dict()[name], value), name
    assert torch.equal(start.head.weight, fresh.head.weight) and not torch.equal(start.head.weight, source.head.weight)
    assert not torch.equal(original.head.weight, start.head.weight)  # then trained by the recipe


def test_a_finetuning_recipe_whose_source_is_missing_names_the_command_that_trains_it(finetune_recipe) -> None:
    info = load_dataset("digits").info
    with pytest.raises(UnlearnBenchError, match="starts from small_cnn trained on digits by recipe smoke, which is not trained yet: "
                                                "python cli.py pretrain --dataset digits --arch small_cnn --recipe smoke --seed 9"):
        initial_model(Pretrained("small_cnn", finetune_recipe, seed=9), info)


def test_a_source_of_another_image_size_is_refused_in_one_line(finetune_recipe) -> None:
    obtain_original(NothingForgotten("digits"), Pretrained("small_cnn", "smoke", seed=6), progress=False)
    with pytest.raises(UnlearnBenchError, match=r"small_cnn trained on digits \(1 × 8²\) does not fit digits28's images \(1 × 28²\)"):
        initial_model(Pretrained("small_cnn", finetune_recipe, seed=6), load_dataset("digits28").info)


def test_digits28_is_digits_resized() -> None:
    small, large = load_dataset("digits"), load_dataset("digits28")
    assert torch.equal(small.train.targets, large.train.targets) and large.train.images.shape[1:] == (1, 28, 28)
    resized = torch.nn.functional.interpolate(large.test.images[:4], size=(8, 8), mode="area")
    assert (resized - small.test.images[:4]).abs().mean() < 0.1


def test_ulira_shadows_of_a_finetuning_recipe_are_refused(finetune_recipe) -> None:
    from types import SimpleNamespace

    from benchmark.audits.ulira import trained_shadows

    scenario = SimpleNamespace(info=load_dataset("digits").info)
    with pytest.raises(UnlearnBenchError, match="U-LiRA's shadow models train from scratch, and recipe digits_finetune fine-tunes"):
        trained_shadows("original", scenario, Pretrained("small_cnn", finetune_recipe), [0], torch.device("cpu"))


def test_processes_started_together_pretrain_a_missing_original_once(tmp_path, monkeypatch, capfd) -> None:
    """`torchrun` / `srun` start every process at once: the first pretrains the missing original, the others wait for it
    and read it (one "pretraining" line, the same weights). Two threads here: the lock (`flock`) is per open file, so
    they exclude each other as processes do."""
    monkeypatch.setenv("UNLEARNBENCH_HOME", str(tmp_path))
    models: list = [None, None]

    def obtain(i: int) -> None:
        models[i] = obtain_original(NothingForgotten("digits"), Pretrained("small_cnn", "smoke", 3), progress=False)

    threads = [threading.Thread(target=obtain, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert capfd.readouterr().err.count("pretraining the original") == 1
    first, second = (m.state_dict() for m in models)
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_an_interrupted_pretraining_resumes_from_its_last_epoch_to_the_uninterrupted_weights(tmp_path, monkeypatch, capfd) -> None:
    """A pretraining whose process died (here: at the start of its second of three epochs) goes on from the checkpoint
    of its last finished epoch, kept beside the cache file, and ends with the weights of an uninterrupted one; the
    checkpoint folder is removed once the original is cached."""
    monkeypatch.setitem(RECIPES._items, "digits_three", replace(RECIPES.get("smoke"), epochs=3))
    pretrained = Pretrained("small_cnn", "digits_three", 0)

    def original(home: str):
        monkeypatch.setenv("UNLEARNBENCH_HOME", str(tmp_path / home))
        return obtain_original(NothingForgotten("digits"), pretrained, progress=False)

    class Died(Exception):
        pass

    epochs: list[int] = []

    def die_at_epoch_1(self) -> None:
        epochs.append(self.trainer.current_epoch)
        if epochs == [0, 1]:
            raise Died

    monkeypatch.setattr(Retrain, "on_train_epoch_start", die_at_epoch_1, raising=False)
    with pytest.raises(Died):
        original("resumed")
    assert list((tmp_path / "resumed").rglob("*.resume/last.ckpt"))
    resumed = original("resumed").state_dict()
    assert epochs == [0, 1, 1, 2]  # (the second process trained epochs 1 and 2 only)
    assert "resuming it from" in capfd.readouterr().err
    assert not list((tmp_path / "resumed").rglob("*.resume"))
    uninterrupted = original("uninterrupted").state_dict()
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in uninterrupted)


@pytest.fixture
def fast_recipe(monkeypatch) -> str:
    """`smoke_fast`: `smoke` in bf16 autocast and channels_last (issue 21's recipe options)."""
    monkeypatch.setitem(RECIPES._items, "smoke_fast", replace(RECIPES.get("smoke"), precision="bf16-mixed", channels_last=True))
    return "smoke_fast"


def test_a_recipe_keeps_its_cache_key_while_the_fields_added_later_are_at_their_defaults(monkeypatch) -> None:
    """The 100-epoch original took 52 minutes to train: a new `Recipe` field must not move it out of its cache."""
    key = cache_path(Pretrained("narrow_resnet18", "fashion_mnist_sgd_long", 0), "fashion_mnist", "abc").name
    assert key == "fashion_mnist_sgd_long-seed0-cd0e3fc7f53126a8.pt"  # (its key before `precision`, `channels_last`, `compile`)
    monkeypatch.setitem(RECIPES._items, "fashion_mnist_sgd_long", replace(RECIPES.get("fashion_mnist_sgd_long"), channels_last=True))
    assert cache_path(Pretrained("narrow_resnet18", "fashion_mnist_sgd_long", 0), "fashion_mnist", "abc").name != key


def test_a_recipe_in_bf16_and_channels_last_trains_another_original_and_retrain_asks_for_its_precision(fast_recipe) -> None:
    from benchmark.experiment import runner

    scenario = NothingForgotten("digits")
    fp32 = obtain_original(scenario, Pretrained("small_cnn", "smoke", seed=8), progress=False)
    bf16 = obtain_original(scenario, Pretrained("small_cnn", fast_recipe, seed=8), progress=False)
    assert not torch.equal(fp32.head.weight, bf16.head.weight)  # the same seed and data, other arithmetic
    with pytest.raises(UnlearnBenchError, match="recipe smoke_fast trains in bf16-mixed precision, this trainer in 32-true: give --trainer.precision bf16-mixed"):
        runner.run(Retrain(), WholeClasses(classes=[0], dataset="digits"), Pretrained("small_cnn", fast_recipe, seed=8), progress=False)


def test_ulira_shadows_of_a_recipe_in_other_numerics_are_refused(fast_recipe) -> None:
    from types import SimpleNamespace

    from benchmark.audits.ulira import trained_shadows

    scenario = SimpleNamespace(info=load_dataset("digits").info)
    with pytest.raises(UnlearnBenchError, match="recipe smoke_fast sets precision=bf16-mixed, channels_last=True: not supported"):
        trained_shadows("original", scenario, Pretrained("small_cnn", fast_recipe), [0], torch.device("cpu"))


def test_a_recipe_precision_lightning_does_not_name_is_refused() -> None:
    with pytest.raises(UnlearnBenchError, match="Recipe.precision 'bf16' is not one of Lightning's 32-true, bf16-mixed"):
        replace(RECIPES.get("smoke"), precision="bf16")
