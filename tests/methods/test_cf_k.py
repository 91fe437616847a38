"""CFk (catastrophic forgetting of the last k blocks) on digits, from an untrained `narrow_cnn_bn` (no pretraining):
what trains, what stays bit-identical, the frozen BatchNorm statistics, and the declared access."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch

from benchmark.core.errors import DataAccessError, UnlearnBenchError
from benchmark.metrics.evaluator import Evaluation
from benchmark.models.pretraining import Pretrained, build_model
from benchmark.training import TRAINER_DEFAULTS, attach_model, fit
from datamodules.access import RETAIN_FULL
from datamodules.scenarios import WholeClasses
from methods.cf_k import CFk

ARCH = "narrow_cnn_bn"
"""Three blocks: conv+BN, conv+BN, FC+BN1d (`backbone.7`, `backbone.8`)."""
LAST = ("backbone.7.", "backbone.8.")
ONE_EPOCH = {"budget": {"max_epochs": 1}}


def attached(method: CFk) -> CFk:
    scenario = WholeClasses(classes=[9])
    scenario.setup()
    attach_model(method, build_model(ARCH, scenario.info, 1), scenario, Pretrained(arch=ARCH), Evaluation(mia=False))
    return method


def fitted(method: CFk) -> CFk:
    attached(method)
    pl.seed_everything(0, verbose=False)
    fit(method, WholeClasses(classes=[9]), pl.Trainer(**TRAINER_DEFAULTS, accelerator="cpu", devices=1, enable_progress_bar=False))
    return method


def changed(method: CFk) -> dict[str, bool]:
    """Per tensor of the state dict (parameters and buffers): whether it differs from the original's."""
    original = method.original.state_dict()
    return {name: not torch.equal(value, original[name]) for name, value in method.model.state_dict().items()}


def test_only_the_last_block_and_the_head_train_and_the_frozen_blocks_stay_bit_identical():
    method = fitted(CFk(**ONE_EPOCH))
    moved = changed(method)
    trained = [name for name in moved if name.startswith((*LAST, "head."))]
    assert trained and all(moved[name] for name in trained)  # weights, BatchNorm1d's statistics and its counter
    assert not any(moved[name] for name in moved if name not in trained)  # every frozen parameter and buffer
    frozen_bn = method.model.backbone[1]
    assert torch.equal(frozen_bn.running_mean, method.original.backbone[1].running_mean) and int(frozen_bn.num_batches_tracked) == 0
    optimized = {id(p) for group in method.configure_optimizers().param_groups for p in group["params"]}
    assert optimized == {id(p) for name, p in method.model.named_parameters() if name.startswith((*LAST, "head."))}
    assert method.cost["cost/trainable_parameters"] == sum(p.numel() for name, p in method.model.named_parameters() if name.startswith((*LAST, "head.")))


def test_frozen_mode_train_lets_the_frozen_blocks_running_statistics_follow_the_retain_set():
    moved = changed(fitted(CFk(frozen_mode="train", **ONE_EPOCH)))
    assert moved["backbone.1.running_mean"] and moved["backbone.4.running_var"]  # the authors' code: model.train() throughout
    assert not any(moved[name] for name in moved if name.endswith(("weight", "bias")) and not name.startswith((*LAST, "head.")))


def test_head_frozen_trains_the_last_block_alone_and_k_counts_blocks():
    moved = changed(fitted(CFk(head="frozen", k=2, **ONE_EPOCH)))
    assert not moved["head.weight"] and not moved["head.bias"]
    assert moved["backbone.3.weight"] and moved["backbone.7.weight"] and not moved["backbone.0.weight"]
    with pytest.raises(UnlearnBenchError, match=r"^k = 4 is more than the 3 blocks of narrow_cnn_bn \(0\+1, 3\+4, 7\+8\)$"):
        attached(CFk(k=4))


def test_cfk_reads_the_retain_set_only():
    method = attached(CFk())
    assert CFk.data_access == RETAIN_FULL and method.data.names == ("retain",)
    with pytest.raises(DataAccessError, match="CFk declared access to the full retain set and cannot read the 'forget' split"):
        method.data["forget"]
    batch = next(iter(method.train_loader(method.data)))[0]
    assert set(batch) == {"retain"} and len(batch["retain"][0]) == 64
