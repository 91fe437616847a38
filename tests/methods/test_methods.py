"""Every registered method on `digits`, and the mechanics the base class guarantees."""

import dataclasses
import inspect
import math
import typing

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import CSVLogger

from benchmark.core.errors import DataAccessError, UnlearnBenchError
from benchmark.core.validation import SettingError
from benchmark.core.record import run_identity
from benchmark.experiment.runner import run
from benchmark.metrics.mia import MIA_METRICS
from benchmark.models.pretraining import Pretrained
from benchmark.training import TRAINER_DEFAULTS, fit
from datamodules.access import FORGET_ONLY
from datamodules.scenarios import RandomInstances, WholeClasses
from methods import METHODS, Budget, NegGrad, UnlearningMethod
from methods.base import SHARED_NAMES, load_defaults
from methods.finetune import FineTune
from tests.methods.fixtures import attached

SPLITS = ("forget/acc", "retain/acc", "test/acc")
SMALL = {name: {"attack": {"n_adv": 4, "steps": 10}} for name in ("Adv", "AdvImp")}
SMALL["Fisher"] = {"retain_samples": 200}
SMALL |= {name: {"budget": {"max_epochs": 1}} for name in ("FisherMask", "RandomMask", "ActivationMask", "GradMask", "TFIDF")}
SMALL |= {"Influence": {"depth": 10}, "UNSIR": {"noise_batch": 32}}
SMALL["FewShotInversion"] = {"samples_per_condition": 40, "scrub_epochs": 1, "inversion": {"steps": 30, "batch_size": 32}, "budget": {"max_epochs": 1}}
SMALL["Neutralized"] = {"neutralize_epochs": 1, "budget": {"max_epochs": 1}}
SMALL["IU"] = {"hessian_samples": 100}
SMALL["NegGradPlus"] = {"budget": {"max_epochs": 2}}
ARCH = {"ActivationMask": "narrow_cnn_bn", "GradMask": "narrow_cnn_bn", "TFIDF": "narrow_cnn_bn"}
"""Methods that need a kind of layer the default small CNN lacks (the channel methods: Conv-BatchNorm-ReLU)."""
"""Smaller adversarial sets for the tests that only need the mechanics (the paper's 20 × 100-step PGD takes ~1 min here)."""


@pytest.mark.parametrize("name", METHODS.names())
def test_every_method_unlearns_and_reports_every_split(name, tmp_path):
    method = METHODS.get(name)(**SMALL.get(name, {}))
    retain_subset = {"retain_per_class": 20} if method.data_access.retain == "request" else {}  # (UNSIR's D_r_sub)
    scenario = RandomInstances(k=16, relabel=True) if "relabel" in method.train_splits else WholeClasses(classes=[4], **retain_subset)
    record = run(method, scenario, Pretrained(arch=ARCH.get(name, "small_cnn")), results_dir=str(tmp_path), progress=False)
    assert set(record["metrics"]) == {f"{s}/acc" for s in scenario.eval_split_names} | set(MIA_METRICS)
    assert all(v is None or 0.0 <= v <= 1.0 for v in record["metrics"].values())
    assert record["timings"]["cost/seconds"] >= 0 and record["request"]["num_forget"] == len(scenario.request.forget_indices)
    path = tmp_path / "digits" / record["request"]["hash"][:16] / f"{name}-{run_identity(name, record['hparams'], record['pretrained'])}-seed0.json"
    assert record["path"] == str(path) and path.exists()


def test_original_fits_digits():
    """The papers start from a model that fits D_f: ≥ 99 % train and ≥ 95 % test accuracy on digits."""
    record = run(METHODS.get("Original")(), RandomInstances(fraction=0.1), Pretrained(), progress=False)
    m = record["metrics"]
    assert m["forget/acc"] >= 0.99 and m["retain/acc"] >= 0.99 and m["test/acc"] >= 0.95


def test_retrain_is_cached_and_never_saw_the_forget_set():
    first = run(METHODS.get("Retrain")(), WholeClasses(classes=[0]), Pretrained(), progress=False)
    again = run(METHODS.get("Retrain")(), WholeClasses(classes=[0]), Pretrained(), progress=False)
    assert first["metrics"]["forget/acc"] == 0.0  # a class it never saw cannot be predicted
    assert again["metrics"] == first["metrics"] and again["timings"]["cost/cached"] == 1.0
    assert first["timings"]["cost/cached"] in (0.0, 1.0)  # present in every record: a fresh run says 0


def test_a_relabeling_request_reuses_the_retrain_of_the_same_forget_set():
    """Retrain trains on D_r only: forgetting the same images with or without new labels is one Retrain."""
    plain = run(METHODS.get("Retrain")(), RandomInstances(k=12, seed=5), Pretrained(), progress=False)
    relabel = run(METHODS.get("Retrain")(), RandomInstances(k=12, seed=5, relabel=True), Pretrained(), progress=False)
    assert relabel["timings"]["cost/cached"] == 1.0 and relabel["request"]["hash"] != plain["request"]["hash"]
    assert relabel["metrics"]["retain/acc"] == plain["metrics"]["retain/acc"] and "relabel/acc" in relabel["metrics"]
    hashes = set()
    for seed in (5, 6):
        scenario = RandomInstances(k=12, seed=seed)
        scenario.setup()
        hashes.add(scenario.request.training_set_hash)
    assert len(hashes) == 2  # another forget set is another Retrain


@pytest.mark.parametrize("stop_check", ["step", "epoch"])
def test_neggrad_stops_when_the_forget_set_is_misclassified(stop_check):
    method = NegGrad(budget={"stop_check": stop_check, "max_epochs": 100, "batch_size": 4})
    record = run(method, RandomInstances(k=8, seed=2), Pretrained(), progress=False)
    assert record["metrics"]["forget/acc"] == 0.0
    assert method.stopped_at is not None
    steps_per_epoch = 2
    if stop_check == "epoch":
        assert record["stopped_at"]["step"] % steps_per_epoch == 0
    assert record["timings"]["cost/steps"] == record["stopped_at"]["step"] < 100 * steps_per_epoch


class Overflowing(UnlearningMethod):
    """Finite loss and weights, but outputs that overflow to inf after its first step."""

    data_access = FORGET_ONLY

    def __init__(self) -> None:
        super().__init__(budget=Budget(max_epochs=5, stop="misclassify", stop_check="step"))

    def training_step(self, batch, batch_idx):
        with torch.no_grad():
            self.model.head.weight.mul_(1e38)
        x, y = batch["forget"]
        return 0.0 * self.model(x).nan_to_num().sum()


def test_non_finite_outputs_are_a_divergence_not_a_reached_stop(tmp_path):
    method = Overflowing()
    record = run(method, RandomInstances(k=8, seed=2), Pretrained(), results_dir=str(tmp_path), progress=False)
    assert record["stopped_at"] is None and record["diverged"] == {"epoch": 0, "step": 1}
    assert record["metrics"]["forget/acc"] is None  # NaN, written as null
    assert math.isnan(method.results["forget/acc"])


class Snooper(UnlearningMethod):
    """Forget-only, but tries to read the retain set."""

    data_access = FORGET_ONLY
    seen: list[set] = []

    def __init__(self, snoop: bool = False) -> None:
        super().__init__(budget=Budget(max_epochs=1, batch_size=16))
        self.snoop = snoop

    def prepare(self, data):
        if self.snoop:
            data["retain"]

    def training_step(self, batch, batch_idx):
        Snooper.seen.append(set(batch))
        x, y = batch["forget"]
        return F.cross_entropy(self.model(x), y)


def test_forget_only_method_receives_only_forget_batches():
    Snooper.seen.clear()
    run(Snooper(), RandomInstances(k=40), Pretrained(), progress=False)
    assert Snooper.seen and all(keys == {"forget"} for keys in Snooper.seen)


def test_forget_only_method_cannot_reach_retain_data():
    with pytest.raises(DataAccessError, match="Snooper declared access to forget set and cannot read the 'retain' split"):
        run(Snooper(snoop=True), RandomInstances(k=40), Pretrained(), progress=False)


def test_same_seed_same_numbers():
    a = run(NegGrad(budget={"max_epochs": 3, "stop": "none"}), RandomInstances(k=30), Pretrained(), seed=5, progress=False)
    b = run(NegGrad(budget={"max_epochs": 3, "stop": "none"}), RandomInstances(k=30), Pretrained(), seed=5, progress=False)
    assert a["metrics"] == b["metrics"]


def test_original_weights_stay_frozen():
    method = NegGrad(budget={"max_epochs": 2, "stop": "none"})
    run(method, RandomInstances(k=30), Pretrained(), progress=False)
    changed = [not torch.equal(p, q) for p, q in zip(method.model.parameters(), method.original.parameters())]
    assert any(changed) and not any(p.requires_grad for p in method.original.parameters())


@pytest.mark.parametrize("name", METHODS.names())
def test_a_method_declares_only_its_own_hyperparameters(name):
    """The base settings (optimizer, budget, BatchNorm mode) and what they hold are never re-declared by a method:
    its paper's values for them are its defaults file's (`configs/methods/<Method>/<paper>.yaml`)."""
    cls = METHODS.get(name)
    for klass in cls.__mro__[: cls.__mro__.index(UnlearningMethod)]:
        own = getattr(klass.__dict__.get("__init__"), "__declared__", klass.__dict__.get("__init__"))
        if own is not None:
            declared = set(inspect.signature(own).parameters) - {"self", "kwargs"}
            assert not declared & SHARED_NAMES, f"{klass.__name__}.__init__ re-declares base settings {sorted(declared & SHARED_NAMES)}"


@pytest.mark.parametrize("name", [n for n in METHODS.names() if METHODS.get(n).defaults])
def test_a_method_without_arguments_has_its_papers_defaults(name):
    cls = METHODS.get(name)
    defaults = load_defaults(cls.defaults)
    hparams = cls().hparams
    for key, value in defaults.items():
        if isinstance(value, dict) and "init_args" in value:
            assert {k: hparams[key]["init_args"][k] for k in value["init_args"]} == value["init_args"], key
        elif isinstance(value, dict):
            assert {k: hparams[key][k] for k in value} == value, key
        else:
            assert hparams[key] == value, key


def test_a_group_given_in_part_keeps_the_papers_other_values():
    method = NegGrad(budget={"max_epochs": 3}, optimizer={"init_args": {"lr": 0.1}})
    assert method.budget == Budget(max_epochs=3, batch_size=64, stop=None, stop_check="epoch") and method.stop_target == "misclassify"
    assert {k: method.optimizer_spec["init_args"][k] for k in ("lr", "momentum", "weight_decay")} == {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-5}
    assert method.optimizer_spec == NegGrad(optimizer={"class_path": "torch.optim.sgd.SGD", "init_args": {"lr": 0.1, "dampening": 0}}).optimizer_spec  # one spelling
    with pytest.raises(TypeError, match="max_epochs"):
        NegGrad(max_epochs=3)


def bad_values(annotation, default) -> list:
    """Values a setting's type hint does not allow (a wrong type, and out of range for jsonargparse's restricted numbers)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return ["bogus", 3]
    if annotation is bool:
        return ["yes", 1]
    if isinstance(annotation, type) and issubclass(annotation, (int, float)):
        return ["many", *([-1] if hasattr(annotation, "_expression") else []), *([2.5] if issubclass(annotation, int) else [])]
    return []


def settings(cls) -> list[tuple[str, dict, object]]:
    """(name as an error says it, keyword arguments, a bad value) for every checked setting of a method, groups' fields included."""
    out = []
    for p in inspect.signature(cls).parameters.values():
        if dataclasses.is_dataclass(p.default):
            hints = typing.get_type_hints(type(p.default))
            out += [(f"{p.name}.{f.name}", {p.name: {f.name: v}}, v) for f in dataclasses.fields(p.default) for v in bad_values(hints[f.name], None)]
        else:
            out += [(f"{cls.__name__}.{p.name}", {p.name: v}, v) for v in bad_values(p.annotation, p.default)]
    return out


@pytest.mark.parametrize("name", METHODS.names())
def test_every_setting_is_checked_when_the_method_is_built(name):
    cls = METHODS.get(name)
    cases = settings(cls)
    assert cases or not inspect.signature(cls).parameters  # Original and Retrain take none
    for where, kwargs, value in cases:
        with pytest.raises(SettingError) as error:
            cls(**kwargs)
        message = str(error.value)
        assert message.startswith(f"{where} = {value!r} is not allowed; ") and "\n" not in message, message


def test_numbers_are_coerced_and_the_optimizer_checks_its_own_arguments():
    method = NegGrad(budget={"max_epochs": "3"}, optimizer={"init_args": {"lr": "1e-4"}})  # YAML 1.1 reads 1e-4 as a string
    assert method.budget.max_epochs == 3 and method.optimizer_spec["init_args"]["lr"] == 1e-4
    with pytest.raises(UnlearnBenchError, match="Invalid learning rate: -0.1"):
        NegGrad(optimizer={"init_args": {"lr": -0.1}})
    with pytest.raises(UnlearnBenchError, match=r"has no argument\(s\) \['learning_rate'\]; its arguments: lr, momentum"):
        NegGrad(optimizer={"init_args": {"learning_rate": 0.1}})


@pytest.mark.parametrize("logged", [False, True])
def test_the_training_loss_is_logged_when_a_logger_reads_it(logged, tmp_path):
    """`train/loss` reaches a user's logger (`--trainer.logger`); with none, and no callback monitoring it, Lightning's
    `log` (~1 ms a step on CPU) is skipped."""
    scenario = RandomInstances(k=8)
    method = attached(FineTune(budget={"max_epochs": 1}), scenario)
    trainer = pl.Trainer(**{**TRAINER_DEFAULTS, "logger": CSVLogger(tmp_path) if logged else False}, accelerator="cpu", devices=1,
                         enable_progress_bar=False, limit_train_batches=2)
    fit(method, scenario, trainer)
    assert ("train/loss" in trainer.callback_metrics) == logged
