"""IntentionOracle (seed 004's Oracle_std / unt / neg / cor) on digits with a 3-epoch copy of the digits recipe: `std`
is Retrain, the other intentions train D_r ∪ I_e under their own cache keys, D_e's rows are augmented as D_r's, and
the errors are one line. Checks that need no training attach a fresh model (the oracle ignores the original)."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
import torch
from torch.utils.data import DataLoader

from benchmark.core.errors import UnlearnBenchError
from benchmark.experiment.runner import run
from benchmark.metrics.evaluator import Evaluation
from benchmark.models.pretraining import RECIPES, Pretrained, build_model
from benchmark.training import attach_model
from datamodules.scenarios import NothingForgotten, WholeClasses
from methods import FewShotInversion, IntentionOracle, Retrain
from methods.blocks.objectives import untrained_targets
from methods.few_shot import NEGATIVE, SOFT
from methods.few_shot import drawn_untrained_seed
from methods.intention_oracle import UNION, RetainAndIntended

SHORT = Pretrained(recipe="digits_short")
"""The digits recipe (Adam, batch 32) for 3 epochs instead of 30: an original and each oracle train in seconds."""
Y_E, CORRECT = 9, 4
"""D_e: training 9s of digits; `cor` pretends 4 is their correct label."""


@pytest.fixture(scope="module", autouse=True)
def short_recipe():
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(RECIPES._items, "digits_short", dataclasses.replace(RECIPES.get("digits"), epochs=3))
        yield


def attached(method: IntentionOracle, scenario, pretrained: Pretrained = SHORT) -> IntentionOracle:
    """`method` attached to `scenario` with a fresh model as the original (no pretraining)."""
    scenario.setup()
    attach_model(method, build_model(pretrained.arch, scenario.info, pretrained.seed), scenario, pretrained, Evaluation(mia=False))
    return method


def fitted(method, scenario) -> tuple:
    record = run(method, scenario, SHORT, progress=False, evaluation=Evaluation(mia=False))
    return method, record


def images(split) -> torch.Tensor:
    return split.__getitems__(list(range(len(split))))[0]


def d_e(method) -> torch.Tensor:
    return images(method.data["forget"])


def predicted(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(x).argmax(-1)


def mean_probability(model: torch.nn.Module, x: torch.Tensor, label: int) -> float:
    with torch.no_grad():
        return torch.softmax(model.eval()(x), dim=-1)[:, label].mean().item()


def half_of_the_nines() -> WholeClasses:
    """D_e is half of the 9s; the other half stays in D_r."""
    return WholeClasses(classes=[Y_E], fraction=0.5)


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_std_is_retrain_same_cache_same_weights():
    retrain, _ = fitted(Retrain(), half_of_the_nines())
    cached, record = fitted(IntentionOracle(), half_of_the_nines())
    assert cached.cache_file == retrain.cache_file and record["timings"]["cost/cached"] == 1.0 and same_weights(cached.model, retrain.model)
    retrain.cache_file.unlink()  # trained afresh, with the same seeds: the very same steps on D_r
    fresh, record = fitted(IntentionOracle(), half_of_the_nines())
    assert record["timings"]["cost/cached"] == 0.0 and same_weights(fresh.model, retrain.model) and fresh.cache_file.exists()
    assert fresh.intended_rows is None  # nothing of D_e


def test_neg_pushes_d_e_off_its_label_where_std_keeps_it():
    """Half of the 9s stay in D_r: Oracle_std calls D_e 9 (it generalises from the other 9s); Oracle_neg, trained
    against the label 9 on D_e, much less (3 epochs: 0.86 → 0.62 of D_e called 9, mean p_9 0.77 → 0.45)."""
    std, _ = fitted(IntentionOracle(), half_of_the_nines())
    neg, record = fitted(IntentionOracle(intention="neg"), half_of_the_nines())
    x = d_e(neg)
    (std_nines, std_p), (neg_nines, neg_p) = (((predicted(m.model, x) == Y_E).float().mean().item(), mean_probability(m.model, x, Y_E))
                                              for m in (std, neg))
    assert std_nines > 0.8 and neg_nines < std_nines - 0.1 and neg_p < std_p - 0.2
    assert record["timings"]["cost/cached"] == 0.0 and neg.cache_file != std.cache_file
    assert record["metrics"]["retain/acc"] > 0.9


def test_cor_predicts_the_correct_label_on_d_e_which_the_original_does_not():
    method, record = fitted(IntentionOracle(intention="cor", correct_label=CORRECT), WholeClasses(classes=[Y_E]))
    x = d_e(method)
    assert (predicted(method.original, x) == CORRECT).float().mean() < 0.1
    assert (predicted(method.model, x) == CORRECT).float().mean() > 0.9
    assert record["metrics"]["retain/acc"] > 0.9 and record["hparams"]["correct_label"] == CORRECT


def test_one_epoch_is_every_row_of_d_r_and_of_i_e_once():
    method = attached(IntentionOracle(intention="cor", correct_label=CORRECT), WholeClasses(classes=[Y_E]))
    method.prepare(method.data)
    retain, forget = method.data["retain"], method.data["forget"]
    rows = RetainAndIntended(retain, method.intended_rows, method.num_classes)
    batches = list(DataLoader(rows, batch_size=100, shuffle=True, collate_fn=rows.collate_fn))
    x, targets, kinds = (torch.cat(column) for column in zip(*batches))
    assert len(x) == len(retain) + len(forget) and (kinds == SOFT).all() and torch.equal(targets.sum(1), torch.ones(len(x)))
    labels = targets.argmax(1)
    assert (labels == CORRECT).sum() == (retain.targets == CORRECT).sum() + len(forget) and not (labels == Y_E).any()
    assert torch.isclose(x.sum(), images(retain).sum() + d_e(method).sum())
    neg = attached(IntentionOracle(intention="neg"), WholeClasses(classes=[Y_E]))
    neg.prepare(neg.data)
    assert (neg.intended_rows.kinds == NEGATIVE).all() and len(neg.intended_rows) == len(forget) and neg.y_e == Y_E


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")  # (a training step called by hand)
def test_d_e_rows_get_the_recipes_augmentation_as_d_r_rows():
    """`digits_fewshot` trains with Φ's crop: the scenario applies the oracle's `train_augment` (the recipe's) to whole
    batches of D_r ∪ I_e, as to D_r's for `std`."""
    method = attached(IntentionOracle(intention="cor", correct_label=CORRECT), WholeClasses(classes=[Y_E]), Pretrained(recipe="digits_fewshot"))
    assert method.train_augment == "crop" and method.augmented_keys == (UNION,)
    method.prepare(method.data)
    x, targets, kinds = method.intended_rows.x, method.intended_rows.targets, method.intended_rows.kinds
    scenario = WholeClasses(classes=[Y_E])
    scenario.setup()
    scenario.trainer = SimpleNamespace(lightning_module=method, training=True)
    out = scenario.on_after_batch_transfer({UNION: [x, targets, kinds]}, 0)[UNION]
    assert not torch.equal(out[0], x) and out[1] is targets and out[2] is kinds


def test_unt_labels_d_e_with_the_untrained_model_ours_unt_uses_by_default():
    method = attached(IntentionOracle(intention="unt"), WholeClasses(classes=[Y_E]))
    method.prepare(method.data)
    few_shot = FewShotInversion(intention="unt")
    few_shot.generation_seed = 0  # (its seed: the run's, 0 by default; the original's seed is 0 by default too)
    assert method.w_unt_seed == drawn_untrained_seed(0) == int(torch.randint(2**31, (1,), generator=few_shot.rng(2)))
    expected = untrained_targets("small_cnn", method.data.info, method.w_unt_seed, d_e(method))
    assert torch.equal(method.intended_rows.targets, expected) and (method.intended_rows.kinds == SOFT).all()
    hard = attached(IntentionOracle(intention="unt", unt_labels="hard", untrained_seed=7), WholeClasses(classes=[Y_E]))
    hard.prepare(hard.data)
    assert hard.w_unt_seed == 7 and torch.equal(hard.intended_rows.targets.sum(1), torch.ones(len(expected)))


def test_each_intention_and_its_labels_have_their_own_cache_and_std_has_retrains():
    scenario = WholeClasses(classes=[Y_E])
    files = {name: attached(method, scenario).cache_file for name, method in {
        "retrain": Retrain(), "std": IntentionOracle(), "neg": IntentionOracle(intention="neg"),
        "unt": IntentionOracle(intention="unt"), "unt_hard": IntentionOracle(intention="unt", unt_labels="hard"),
        "unt_seed": IntentionOracle(intention="unt", untrained_seed=7), "cor": IntentionOracle(intention="cor", correct_label=CORRECT),
        "cor_3": IntentionOracle(intention="cor", correct_label=3)}.items()}
    assert files["std"] == files["retrain"]
    assert len(set(files.values())) == len(files) - 1


@pytest.mark.parametrize(("kwargs", "scenario", "message"), [
    ({"intention": "neg"}, WholeClasses(classes=[3, Y_E]), r"intention 'neg' learns against D_e's one label y_e, and D_e holds the labels \[3, 9\]"),
    ({"intention": "cor", "correct_label": Y_E}, WholeClasses(classes=[Y_E]), "correct_label = 9 is D_e's label already"),
    ({"intention": "cor", "correct_label": 12}, WholeClasses(classes=[Y_E]), r"correct_label = 12 is not a class of digits \[0, 10\)"),
    ({"intention": "unt"}, NothingForgotten(), "intention 'unt' relabels D_e, and request [0-9a-f]{16} forgets nothing"),
])
def test_requests_the_intention_cannot_serve_are_one_line_errors_before_any_work(kwargs, scenario, message):
    method = IntentionOracle(**kwargs)
    with pytest.raises(UnlearnBenchError, match=message) as error:
        attached(method, scenario)
    assert "\n" not in str(error.value) and not hasattr(method, "cache_file")  # (raised before Retrain's attach)


def test_settings_that_contradict_the_intention_are_one_line_errors():
    with pytest.raises(UnlearnBenchError, match="intention 'cor' trains D_e with its correct label") as error:
        IntentionOracle(intention="cor")
    assert "\n" not in str(error.value)
    with pytest.raises(UnlearnBenchError, match="correct_label = 4 is only read by intention 'cor', not 'neg'") as error:
        IntentionOracle(intention="neg", correct_label=4)
    assert "\n" not in str(error.value)
