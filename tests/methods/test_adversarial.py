"""The ADV family (seed 000 eqs. 1-7): targeted L2-PGD, MAS importance, Adv and AdvImp end to end on digits."""

import pytest
import torch

from benchmark.core.errors import UnlearnBenchError
from benchmark.experiment.runner import obtain_original, run
from benchmark.models import create_model
from benchmark.models.pretraining import Pretrained
from datamodules.scenarios import RandomInstances, WholeClasses
from methods.adv import Adv
from methods.adv_imp import AdvImp
from methods.blocks.adversarial import PGD, adversarial_set, other_labels
from methods.blocks.importance import importance_penalty, mas_importance, normalize_per_tensor, penalty_weights

FAST = {"attack": {"n_adv": 4, "steps": 10}, "budget": {"batch_size": 4}}


@pytest.fixture(scope="module")
def digits():
    """The cached digits original (frozen, eval) and the 8 forget images of RandomInstances(k=8)."""
    scenario = RandomInstances(k=8)
    model = obtain_original(scenario, Pretrained(), progress=False).eval().requires_grad_(False)
    x, y = zip(*(scenario.splits["forget"][i][:2] for i in range(8)))
    return model, torch.stack(x), torch.tensor(y)


@pytest.mark.parametrize("random_start", [False, True])
def test_pgd_examples_are_classified_as_their_targets_within_the_budget(digits, random_start):
    """ε = 4.0 (the authors' run script), step 0.1, 100 iterations (the paper's): on 8×8 digits the paper's
    ε = 0.4 moves only ~8 % of the examples to their target."""
    model, x, y = digits
    eps, n_adv = 4.0, 3
    x_adv, target = adversarial_set(model, x, y, 10, PGD(n_adv=n_adv, eps=eps, steps=100, step_size=0.1, random_start=random_start),
                                    generator=torch.Generator().manual_seed(0))
    assert x_adv.shape == (len(x) * n_adv, *x.shape[1:])
    assert torch.equal(model(x_adv).argmax(1), target)
    assert (x_adv - x.repeat_interleave(n_adv, 0)).flatten(1).norm(dim=1).max() <= eps + 1e-5
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert not (target == y.repeat_interleave(n_adv)).any()


def test_targets_differ_from_the_labels_per_example_or_per_image():
    labels = torch.arange(10).repeat(100)
    drawn = other_labels(labels, 10, torch.Generator().manual_seed(0))
    assert not (drawn == labels).any() and all(set(drawn[labels == c].tolist()) == set(range(10)) - {c} for c in range(10))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 10))
    x, y = torch.rand(6, 1, 2, 2), torch.arange(6)
    _, per_image = adversarial_set(model, x, y, 10, PGD(n_adv=5, steps=1, targets="per_image"))
    assert not (per_image == y.repeat_interleave(5)).any() and (per_image.view(6, 5) == per_image.view(6, 5)[:, :1]).all()


def test_mas_importance_is_eq2_and_normalised_per_tensor(digits):
    model, x, _ = digits
    importance = mas_importance(model, x, batch_size=3)
    for name, p in model.named_parameters():
        reference = sum(torch.autograd.grad(model.requires_grad_(True)(xi[None]).pow(2).sum(), p)[0].abs() for xi in x) / len(x)
        torch.testing.assert_close(importance[name], reference, rtol=1e-4, atol=1e-4)
    model.requires_grad_(False)
    omega, omega_bar = normalize_per_tensor(importance), penalty_weights(model, x)
    for name, w in omega.items():
        assert w.min() >= 0 and (w.max() == 1 or (w == 0).all())
        torch.testing.assert_close(omega_bar[name], 1 - w)
    assert normalize_per_tensor({"flat": torch.full((3,), 2.0)})["flat"].eq(0).all()


def test_importance_penalty_is_the_weighted_squared_distance():
    reference = create_model("small_cnn", num_classes=10, in_chans=1, image_size=8)
    model = create_model("small_cnn", num_classes=10, in_chans=1, image_size=8)
    weights = {name: torch.rand_like(p) for name, p in model.named_parameters()}
    expected = sum((weights[n] * (p - q).pow(2)).sum() for (n, p), q in zip(model.named_parameters(), reference.parameters()))
    torch.testing.assert_close(importance_penalty(model, reference, weights), expected)
    assert importance_penalty(reference, reference, weights) == 0


@pytest.mark.parametrize(("random_start", "targets", "distinct"), [(False, "per_image", 8), (True, "per_image", 8 * 20), (True, "per_example", 8 * 20)])
def test_the_record_counts_the_distinct_adversarial_examples(digits, random_start, targets, distinct):
    """Without a random start, the 20 examples of an image towards one target are one example 20 times."""
    attack = {"n_adv": 20, "steps": 2, "random_start": random_start, "targets": targets}
    record = run(Adv(attack=attack, budget={"max_epochs": 1}), RandomInstances(k=8), Pretrained(), progress=False)
    assert record["timings"]["cost/adversarial_distinct"] == distinct


@pytest.mark.parametrize("method_class", [Adv, AdvImp])
@pytest.mark.parametrize("goal", ["misclassify", "relabel"])
def test_method_reaches_its_stop_target(method_class, goal):
    method = method_class(goal=goal, **FAST)
    record = run(method, RandomInstances(k=8, relabel=goal == "relabel"), Pretrained(), progress=False)
    assert method.stopped_at is not None, f"no stop within {method.budget.max_epochs} epochs: {record['metrics']}"
    if goal == "misclassify":
        assert record["metrics"]["forget/acc"] == 0.0
    else:
        assert record["metrics"]["relabel/acc"] == 1.0
    assert len(method.adversarial[1]) == 8 * FAST["attack"]["n_adv"]


@pytest.mark.parametrize("bad", [{"eps": 0.0}, {"eps": -1.0}, {"n_adv": 0}])
@pytest.mark.parametrize("make", [lambda **kw: Adv(attack=kw), lambda **kw: AdvImp(attack=kw), PGD])
def test_bad_attack_settings_give_a_one_line_error(make, bad):
    with pytest.raises(UnlearnBenchError) as error:
        make(**bad)
    assert "\n" not in str(error.value) and next(iter(bad)) in str(error.value)


def test_relabel_goal_without_new_labels_is_a_one_line_error():
    with pytest.raises(UnlearnBenchError, match="needs a request with new labels"):
        run(Adv(goal="relabel", **FAST), WholeClasses(classes=[4]), Pretrained(), progress=False)


def test_adv_and_adv_imp_share_one_adversarial_set_and_a_warm_cache_changes_no_result():
    import shutil

    from benchmark.core.paths import home

    shutil.rmtree(home() / "adversarial", ignore_errors=True)
    settings = {"attack": {**FAST["attack"], "eps": 4.0}, "budget": {**FAST["budget"], "max_epochs": 2}}
    runs = []
    for method in (Adv(**settings), AdvImp(**settings), Adv(**settings)):  # cold, then warm, then warm
        record = run(method, RandomInstances(k=8), Pretrained(), seed=3, progress=False)
        runs.append((method, record))
    (cold, cold_record), (imp, imp_record), (warm, warm_record) = runs
    assert cold.reused_seconds == 0.0 and cold_record["timings"]["cost/reused_seconds"] == 0.0
    assert imp.reused_seconds > 0 and warm.reused_seconds == imp.reused_seconds
    assert all(torch.equal(a, b) for a, b in zip(cold.adversarial, imp.adversarial))
    assert warm_record["timings"]["cost/prepare_seconds"] >= warm.reused_seconds  # counted as spent
    for (name, a), b in zip(cold.model.state_dict().items(), warm.model.state_dict().values()):
        assert torch.equal(a, b), name  # the same random numbers were drawn with and without the cache
