"""UNSIR (seed 002) on digits: the noise of eq. 1, zero-glance access, the impair / repair phases, bad input."""

import math

import pytest
import torch
import torch.nn.functional as F

from benchmark.core.errors import DataAccessError, UnlearnBenchError
from benchmark.experiment.runner import attach, run
from benchmark.models.pretraining import Pretrained
from datamodules.requests import RequestError
from datamodules.scenarios import RandomInstances, WholeClasses
from methods.original import Original
from methods.unsir import UNSIR
from tests.conftest import run_here

SMALL = {"noise_batch": 16, "noise_steps": 10, "noise_copies": 2, "budget": {"batch_size": 64}}
"""Small enough for digits: 16 noise images per class, 2 copies."""
BN = Pretrained(arch="narrow_cnn_bn")


def attached(classes=(1, 2), pretrained=BN, **kwargs) -> UNSIR:
    method = UNSIR(**{**SMALL, **kwargs})
    attach(method, WholeClasses(classes=list(classes), retain_per_class=20), pretrained, progress=False)
    return method


def state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.clone() for name, value in model.state_dict().items()}


@pytest.mark.parametrize("compat", [False, True])
def test_noise_leaves_the_weights_and_only_compat_mode_changes_batchnorm_buffers(compat):
    method = attached(notebook_compat=compat)
    before = state(method.model)
    method.prepare(method.data)
    after = method.model.state_dict()
    buffers = [n for n in before if "running_" in n or "num_batches_tracked" in n]
    assert buffers and all(torch.equal(before[n], after[n]) for n in before if n not in buffers)
    assert any(not torch.equal(before[n], after[n]) for n in buffers) == compat
    assert all(torch.equal(v, method.original.state_dict()[n]) for n, v in before.items())


def test_noise_raises_its_class_loss_and_a_larger_lambda_gives_a_smaller_noise():
    method = attached()
    shape = (16, 1, 8, 8)

    def noise(steps: int, lam: float) -> torch.Tensor:
        method.noise_steps, method.noise_lambda = steps, lam
        torch.manual_seed(0)
        return method.make_noise(method.original, 1, shape)

    def loss(n: torch.Tensor) -> float:
        return F.cross_entropy(method.logits_of_normalised(method.original, n), torch.full((16,), 1)).item()

    assert loss(noise(40, 0.1)) > loss(noise(0, 0.1)) + 1.0
    assert noise(40, 1.0).norm() < noise(40, 0.01).norm()


@pytest.mark.parametrize(("compat", "labels"), [(False, {1, 2}), (True, {0})])
def test_noise_labels_are_the_forgotten_classes_and_compat_labels_all_zero(compat, labels):
    """Issue #2 of vikram2000b/Fast-Machine-Unlearning: the notebook labels all noise 0."""
    method = attached(notebook_compat=compat)
    method.prepare(method.data)
    x, y = method.noise.tensors
    assert set(y.tolist()) == labels
    per_class = 1 if compat else 16  # (compat: the first C = 1 images of each copy)
    assert len(y) == 2 * per_class * SMALL["noise_copies"]


def test_unsir_sees_only_the_requests_retain_subset():
    method = attached()
    with pytest.raises(DataAccessError, match="cannot read the 'forget' split"):
        method.data["forget"]
    retain = method.data["retain"]
    assert len(retain) == 8 * 20 and not set(retain.targets.tolist()) & {1, 2}


def test_phases_take_one_epoch_each_of_ceil_set_over_batch_steps_at_their_learning_rates(tmp_path):
    seen: list[tuple[str, tuple[float, ...]]] = []

    class Watched(UNSIR):
        def training_step(self, batch, batch_idx):
            seen.append((self.phase, tuple(g["lr"] for g in self.optimizers().optimizer.param_groups)))
            return super().training_step(batch, batch_idx)

    method = Watched(**{**SMALL, "budget": {"max_epochs": 4, "batch_size": 64}}, schedule="IRIR", body_lrs=(1e-4, 2e-5))
    record = run(method, WholeClasses(classes=[1, 2], retain_per_class=20), BN, results_dir=str(tmp_path), progress=False)
    impair, repair = method.steps_of("impair"), method.steps_of("repair")
    assert impair == math.ceil((160 + 64) / 64) and repair == math.ceil(160 / 64)
    assert record["timings"]["cost/steps"] == 2 * (impair + repair)
    phases = [p for p, _ in seen]
    assert phases == ["impair"] * impair + ["repair"] * repair + ["impair"] * impair + ["repair"] * repair
    assert {lrs for p, lrs in seen if p == "impair"} == {(0.02, 1e-4)} and {lrs for p, lrs in seen if p == "repair"} == {(0.01, 2e-5)}
    assert {"cost/noise_seconds", "cost/impair_seconds", "cost/repair_seconds"} <= set(record["timings"])


def test_unsir_forgets_the_classes_and_keeps_the_rest(tmp_path):
    """Digits' scale: 100 retain images per class and 8 noise copies keep the noise : D_r_sub ratio near CIFAR-10's
    (5,120 : 9,000), batch 64 gives impair more than 4 steps."""
    scenario = WholeClasses(classes=[3], retain_per_class=100)
    original = run(Original(), scenario, BN, results_dir=str(tmp_path), progress=False)
    unsir = run(UNSIR(noise_batch=64, noise_copies=8, budget={"batch_size": 64}), scenario, BN, results_dir=str(tmp_path), progress=False)
    before, after = original["metrics"], unsir["metrics"]
    assert before["test_forget/acc"] > 0.8 and after["test_forget/acc"] < 0.2
    assert after["test_retain/acc"] > before["test_retain/acc"] - 0.15


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"noise_copies": 0}, r"UNSIR\.noise_copies = 0 is not allowed; an integer > 0"),
    ({"noise_lambda": -0.1}, r"UNSIR\.noise_lambda = -0\.1 is not allowed; a number ≥ 0"),
    ({"schedule": "IX"}, r"UNSIR\.schedule = 'IX' is not allowed"),
    ({"schedule": "IIR"}, r"schedule IIR has 3 phases but budget\.max_epochs is 2"),
    ({"head": "("}, r"UNSIR\.head = '\(' is not a regular expression"),
])
def test_bad_settings_are_one_line_errors(kwargs, message):
    with pytest.raises(UnlearnBenchError, match=message):
        UNSIR(**kwargs)


@pytest.mark.parametrize(("scenario", "message"), [
    (lambda: WholeClasses(classes=[1, 1], retain_per_class=5), "class 1 is given more than once"),
    (lambda: WholeClasses(classes=list(range(10)), retain_per_class=5), "forgetting every class of digits"),
    (lambda: WholeClasses(classes=[12], retain_per_class=5), "class 12 is outside the dataset's classes"),
    (lambda: WholeClasses(classes=[0], retain_per_class=10_000), r"more than the \d+ training images of class 1"),
    (lambda: RandomInstances(k=8), "only class scenarios name one"),
    (lambda: WholeClasses(classes=[0]), "names none: give the scenario one"),
])
def test_bad_requests_fail_with_one_line_and_no_record(scenario, message, tmp_path):
    with pytest.raises(UnlearnBenchError, match=message):
        run(UNSIR(**SMALL), scenario(), BN, results_dir=str(tmp_path), progress=False)
    assert not list(tmp_path.rglob("*.json"))


def test_a_head_pattern_matching_no_parameter_and_a_non_finite_noise_loss_are_errors(tmp_path):
    with pytest.raises(UnlearnBenchError, match="matches no parameter"):
        run(UNSIR(**SMALL, head="^nothing", body_lrs=(1e-4, 1e-4)), WholeClasses(classes=[0], retain_per_class=5), BN,
            results_dir=str(tmp_path), progress=False)
    exploding = {"class_path": "torch.optim.SGD", "init_args": {"lr": 1e30}}
    with pytest.raises(UnlearnBenchError, match="noise loss of class 0 is not finite"):
        run(UNSIR(**SMALL, noise_optimizer=exploding), WholeClasses(classes=[0], retain_per_class=5), BN, results_dir=str(tmp_path), progress=False)
    assert not list(tmp_path.rglob("*.json"))


def test_the_cli_refuses_a_duplicated_forget_class_in_one_line(capsys, tmp_path):
    out = run_here(capsys, "fit", "--model", "UNSIR", "--data", "WholeClasses", "--data.classes", "[0, 0]",
                   "--data.retain_per_class", "5", "--results_dir", str(tmp_path), "--trainer.enable_progress_bar", "false")
    assert out.returncode != 0 and "class 0 is given more than once" in out.stderr
    assert "Traceback" not in out.stderr and not list(tmp_path.rglob("*.json"))
