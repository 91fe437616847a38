"""The shared callbacks: BatchNorm modes (`frozen` never updates the running statistics, `reestimate` changes them only), and the trainer options `ChannelsLast` and `Compile`."""

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from benchmark.callbacks import BN_SAMPLES, BatchNormMode, ChannelsLast, Compile
from datamodules.access import FORGET_ONLY, RETAIN_FULL
from datamodules.datasets import ImageTensorDataset
from methods.finetune import FineTune
from methods.neggrad import NegGrad


def bn_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))


def method(mode: str, retain: ImageTensorDataset | None = None) -> SimpleNamespace:
    return SimpleNamespace(model=bn_net(), batchnorm=mode, device=torch.device("cpu"), data={"retain": retain})


def bn_buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: b.clone() for name, b in model.named_buffers() if name.split(".")[-1] in ("running_mean", "running_var", "num_batches_tracked")}


@pytest.mark.parametrize("mode", ["train", "frozen"])
def test_frozen_batchnorm_keeps_its_running_statistics_while_training(mode):
    pl_module = method(mode)
    before = bn_buffers(pl_module.model)
    optimizer = torch.optim.SGD(pl_module.model.parameters(), lr=0.1)
    for step in range(3):
        pl_module.model.train()  # Lightning's mode at every epoch start
        BatchNormMode().on_train_batch_start(None, pl_module, None, step)
        loss = pl_module.model(torch.randn(8, 1, 8, 8) * 3 + 1).logsumexp(1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = bn_buffers(pl_module.model)
    unchanged = all(torch.equal(before[name], after[name]) for name in before)
    assert unchanged == (mode == "frozen")
    assert not torch.equal(pl_module.model[1].weight, torch.ones(4))  # the affine weights still train


def test_reestimation_recomputes_the_running_statistics_from_retain_and_changes_nothing_else():
    images = torch.rand(BN_SAMPLES + 40, 1, 8, 8)
    pl_module = method("reestimate", ImageTensorDataset(images, torch.zeros(len(images), dtype=torch.long)))
    model = pl_module.model
    model.train()
    weights = {name: t.clone() for name, t in model.state_dict().items()}
    BatchNormMode().on_fit_end(None, pl_module)
    changed = {name for name, t in model.state_dict().items() if not torch.equal(t, weights[name])}
    assert changed == {"1.running_mean", "1.running_var", "1.num_batches_tracked"} and model.training
    rows = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:BN_SAMPLES].sort().values
    with torch.no_grad():
        batches = model[0](images[rows]).split(250)
    torch.testing.assert_close(model[1].running_mean, torch.stack([f.mean((0, 2, 3)) for f in batches]).mean(0))
    torch.testing.assert_close(model[1].running_var, torch.stack([f.var((0, 2, 3)) for f in batches]).mean(0))


def test_reestimation_gives_a_forget_only_method_that_many_retain_images_and_no_more():
    assert NegGrad().data_access == FORGET_ONLY
    reestimating = NegGrad(batchnorm="reestimate")
    assert reestimating.data_access.forget and reestimating.data_access.retain == "subset" and reestimating.retain_subset_size == BN_SAMPLES
    assert FineTune(batchnorm="reestimate").data_access == RETAIN_FULL


@pytest.fixture(scope="module")
def fits(tmp_path_factory) -> dict[str, dict]:
    """One FineTune epoch on digits (k = 16), eager, with `ChannelsLast`, with `Compile` (aot_eager: no C++ compiler)."""
    import datamodules
    from benchmark.experiment import runner
    from benchmark.metrics.evaluator import Evaluation
    from benchmark.models.pretraining import Pretrained

    results = str(tmp_path_factory.mktemp("results"))
    options = {"eager": [], "channels_last": [ChannelsLast()], "compile": [Compile(backend="aot_eager")]}
    return {name: runner.run(FineTune(budget={"max_epochs": 1}), datamodules.scenarios.RandomInstances(k=16), Pretrained(), results_dir=results,
                             progress=False, evaluation=Evaluation(mia=False), callbacks=callbacks) for name, callbacks in options.items()}


def test_channels_last_and_compile_are_trainer_options_recorded_as_numerics_with_the_eager_results(fits) -> None:
    assert "numerics" not in fits["eager"]
    assert fits["channels_last"]["numerics"] == {"memory_format": "channels_last"}
    assert fits["compile"]["numerics"] == {"compile": {"backend": "aot_eager", "mode": None}}
    assert len({record["path"] for record in fits.values()}) == 3  # none overwrites another
    for name in ("channels_last", "compile"):
        for metric in ("forget/acc", "retain/acc", "test/acc"):
            assert abs(fits[name]["metrics"][metric] - fits["eager"]["metrics"][metric]) <= 0.01, (name, metric)


def test_the_weights_of_a_compiled_or_channels_last_fit_load_into_the_plain_model(fits) -> None:
    eager = torch.load(fits["eager"]["weights"], weights_only=True)
    for name in ("channels_last", "compile"):
        weights = torch.load(fits[name]["weights"], weights_only=True)
        assert list(weights) == list(eager)


def test_channels_last_puts_the_methods_4d_weights_in_nhwc() -> None:
    module = FineTune()
    module.model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4, 2))  # (with one input channel both layouts coincide)
    ChannelsLast().setup(None, module, "fit")
    weight = module.model[0].weight
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
