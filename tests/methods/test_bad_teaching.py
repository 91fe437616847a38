"""BadTeaching (Chundawat et al.'s bad teaching with its own defaults): the defaults against Incompetent's, the 30 %
retain share, frozen teachers through a run with the defaults, and the declared access."""

from __future__ import annotations

import inspect

import pytest
import torch

from benchmark.core.errors import DataAccessError
from benchmark.experiment.runner import attach, run
from benchmark.metrics.evaluator import Evaluation
from benchmark.models.pretraining import Pretrained
from datamodules.access import FORGET_AND_RETAIN
from datamodules.scenarios import WholeClasses
from methods import METHODS
from methods.bad_teaching import BadTeaching
from methods.incompetent import FORGET, RETAIN, Incompetent

Y_F = 9


def test_the_defaults_are_incompetents_but_the_kls_own_reduction():
    ours, theirs = inspect.signature(BadTeaching).parameters, inspect.signature(Incompetent).parameters
    assert list(ours) == list(theirs)
    differ = {name for name in ours if ours[name].default != theirs[name].default}
    assert differ == {"reduction"} and ours["reduction"].default == "batchmean" and theirs["reduction"].default == "mean"
    hparams = BadTeaching().hparams
    assert hparams["optimizer"]["class_path"] == "torch.optim.adam.Adam" and hparams["optimizer"]["init_args"]["lr"] == 1e-4
    assert hparams["budget"]["max_epochs"] == 1 and hparams["budget"]["batch_size"] == 256
    assert hparams["temperature"] == 1.0 and hparams["retain_fraction"] == 0.3
    assert BadTeaching(reduction="mean").hparams == Incompetent().hparams
    assert METHODS.get("BadTeaching") is BadTeaching and issubclass(BadTeaching, Incompetent)


def test_d_f_joins_the_floor_of_30_percent_of_d_r():
    method = BadTeaching()
    attach(method, WholeClasses(classes=[Y_F]), Pretrained(), progress=False)
    assert method.data_access == FORGET_AND_RETAIN and method.data.names == ("forget", "retain")
    method.prepare(method.data)
    forget, retain = method.data["forget"], method.data["retain"]
    share = len(retain) * 3 // 10
    assert len(method.unlearning_set.datasets[1]) == share and method.cost["cost/retain_samples"] == share
    labels = torch.cat([part.targets for part in method.unlearning_set.datasets])
    assert (labels == FORGET).sum() == len(forget) and (labels == RETAIN).sum() == share
    with pytest.raises(DataAccessError, match="BadTeaching declared access to forget set \\+ the full retain set and cannot read the 'test' split"):
        method.data["test"]


class Snapshot(BadTeaching):
    """Keeps both teachers' weights and buffers as training starts."""

    def on_train_start(self) -> None:
        self.teachers = [{k: t.clone() for k, t in m.state_dict().items()} for m in (self.original, self.incompetent)]


def test_the_teachers_stay_frozen_while_the_student_learns(tmp_path):
    method = Snapshot()
    run(method, WholeClasses(classes=[Y_F]), Pretrained(), results_dir=str(tmp_path), progress=False, evaluation=Evaluation(mia=False))
    for before, teacher in zip(method.teachers, (method.original, method.incompetent)):
        assert before.keys() == teacher.state_dict().keys()
        assert all(torch.equal(before[k], t) for k, t in teacher.state_dict().items())
        assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    assert any(not torch.equal(p, q) for p, q in zip(method.model.parameters(), method.original.parameters()))
