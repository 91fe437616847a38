import pytest
import torch

from benchmark.core.errors import DataAccessError, UnlearnBenchError
from datamodules.access import CLASS_IDS_ONLY, FORGET_AND_RETAIN, FORGET_ONLY, RETAIN_FULL, RETAIN_SUBSET
from datamodules.requests import RequestError
from datamodules.scenarios import Outliers, RandomInstances, RequestFile, WholeClasses


@pytest.mark.parametrize("scenario", [RandomInstances(k=100, seed=1), RandomInstances(fraction=0.1), WholeClasses(classes=[3, 7]), Outliers(rho=0.3),
                                      WholeClasses(classes=[9], fraction=0.3, seed=2)])
def test_forget_and_retain_are_disjoint_and_complete(scenario):
    scenario.setup()
    forget, retain, train = scenario.splits["forget"], scenario.splits["retain"], scenario.train_set
    assert len(forget) + len(retain) == len(train)
    assert len(forget) == len(scenario.request.forget_indices)
    forget_rows = set(scenario.request.forget_indices)
    retain_rows = set(scenario.retain_indices().tolist())
    assert forget_rows.isdisjoint(retain_rows) and forget_rows | retain_rows == set(range(len(train)))
    assert torch.equal(forget.images, train.images[list(scenario.request.forget_indices)])


def test_random_instances_are_seeded_and_mixed():
    a, b, c = RandomInstances(k=50, seed=0), RandomInstances(k=50, seed=0), RandomInstances(k=50, seed=1)
    for s in (a, b, c):
        s.setup()
    assert a.request.hash == b.request.hash != c.request.hash
    assert len(set(a.splits["forget"].targets.tolist())) > 1


def test_class_scenario_splits_test_set_by_class():
    scenario = WholeClasses(classes=[2])
    scenario.setup()
    assert set(scenario.splits["forget"].targets.tolist()) == {2}
    assert 2 not in set(scenario.splits["retain"].targets.tolist())
    assert set(scenario.splits["test_forget"].targets.tolist()) == {2}
    assert len(scenario.splits["test_forget"]) + len(scenario.splits["test_retain"]) == len(scenario.splits["test"])
    assert scenario.eval_split_names == ["forget", "retain", "test", "test_forget", "test_retain"]


def test_a_fraction_of_a_class_is_nested_seeded_and_leaves_the_rest_to_retain():
    """Seed 004 App. C / D.1: D_e is p of the class (3 % ⊂ 10 % ⊂ 30 % for one seed, one image first); the rest is retained,
    the class's whole test split still scores D_e; the whole-class request keeps its identity (its records and tracks)."""
    whole, *parts = (WholeClasses(classes=[9], seed=1, **kw) for kw in ({}, {"one_image": True}, {"fraction": 0.03}, {"fraction": 0.1}, {"fraction": 0.3}))
    for s in (whole, *parts):
        s.setup()
    forgets = [set(s.request.forget_indices) for s in parts]
    n = len(whole.request.forget_indices)
    assert [len(f) for f in forgets] == [1, round(0.03 * n), round(0.1 * n), round(0.3 * n)]
    assert all(a < b for a, b in zip(forgets, forgets[1:])) and forgets[-1] < set(whole.request.forget_indices)
    assert sum(parts[2].splits["retain"].targets == 9) == n - len(forgets[2])
    assert len(parts[2].splits["test_forget"]) == len(whole.splits["test_forget"])
    other_seed = WholeClasses(classes=[9], seed=2, fraction=0.1)
    other_seed.setup()
    assert set(other_seed.request.forget_indices) != forgets[2]
    assert whole.request.scenario == {"kind": "whole_classes", "classes": [9]}
    with pytest.raises(RequestError, match="fraction must be in"):
        WholeClasses(classes=[9], fraction=0)
    with pytest.raises(RequestError, match="selects none"):
        WholeClasses(classes=[9], fraction=0.001).setup()


def test_relabel_targets_differ_from_true_labels():
    scenario = RandomInstances(k=200, relabel=True)
    scenario.setup()
    assert (scenario.splits["relabel"].targets != scenario.splits["forget"].targets).all()


@pytest.mark.parametrize(("access", "visible"), [
    (FORGET_ONLY, {"forget"}), (RETAIN_FULL, {"retain"}), (RETAIN_SUBSET, {"retain"}), (FORGET_AND_RETAIN, {"forget", "retain"}), (CLASS_IDS_ONLY, set()),
])
def test_view_only_shows_declared_access(access, visible):
    scenario = WholeClasses(classes=[1])
    view = scenario.view("M", access, retain_subset_size=30)
    assert set(view.names) == visible
    assert view.forget_classes == (1,)
    for hidden in {"forget", "retain", "test"} - visible:
        with pytest.raises(DataAccessError, match=f"M declared access to .* cannot read the '{hidden}' split"):
            view[hidden]
    if access == RETAIN_SUBSET:
        assert len(view["retain"]) == 30
        assert torch.equal(view["retain"].images, scenario.view("N", access, 30)["retain"].images)


def test_k_larger_than_training_set_is_rejected():
    with pytest.raises(RequestError, match="k=5000 must be at least 1 and smaller than the 1437 training samples of digits"):
        RandomInstances(k=5000).setup()


def test_request_file_scenario_reproduces_the_request(tmp_path):
    original = RandomInstances(k=10, seed=3)
    original.setup()
    from_file = RequestFile(path=str(original.request.save(tmp_path / "r.json")))
    from_file.setup()
    assert from_file.request.hash == original.request.hash
    assert torch.equal(from_file.splits["forget"].images, original.splits["forget"].images)


def test_outliers_are_trained_with_labels_shuffled_within_the_group_and_evaluated_on_their_true_labels():
    scenario = Outliers(rho=0.1, seed=2)
    scenario.setup()
    forget, noise = scenario.splits["forget"], scenario.splits["noise"]
    assert len(forget) == round(0.1 * len(scenario.data.train)) == len(noise)
    assert sorted(forget.targets.tolist()) == sorted(noise.targets.tolist())  # shuffled among themselves
    assert (forget.targets != noise.targets).float().mean() > 0.5 and torch.equal(forget.images, noise.images)
    assert scenario.request.corruption.indices == scenario.request.forget_indices
    assert "noise" not in scenario.view("M", FORGET_AND_RETAIN).names  # a method never sees the true labels


@pytest.mark.parametrize("rho", [0.0, 1.0, -0.5])
def test_outliers_refuse_a_fraction_outside_0_1(rho):
    with pytest.raises(RequestError, match=r"rho must be in \(0, 1\)"):
        Outliers(rho=rho)


def test_a_configs_batch_size_is_the_global_batch_shared_by_the_processes(monkeypatch):
    import datamodules.scenarios.base as base

    scenario = RandomInstances(k=8)
    scenario.setup()
    forget = scenario.splits["forget"]
    assert scenario.make_train_loader(forget, 64).batch_size == 64
    monkeypatch.setattr(base, "_world", lambda: (2, 1))
    loader = scenario.make_train_loader(forget, 64)
    assert loader.batch_size == 32 and loader.sampler.num_replicas == 2 and loader.sampler.rank == 1
    monkeypatch.setattr(base, "_world", lambda: (3, 0))
    with pytest.raises(UnlearnBenchError, match="^batch size 64 is the batch of all 3 processes together: give a multiple of 3$"):
        scenario.make_train_loader(forget, 64)


class _Strategy:
    root_device = torch.device("meta")


class _Trainer:
    strategy = _Strategy()


@pytest.mark.parametrize("resident", [True, False])
def test_in_memory_splits_are_moved_once_to_the_trainers_device_and_batched_there(resident):
    # The meta device stands in for a GPU: a batch made on the host would be on the CPU.
    scenario = RandomInstances(k=8, resident=resident)
    scenario.setup()
    scenario.trainer = _Trainer()
    scenario.setup("fit")
    expected = "meta" if resident else "cpu"
    x, y = next(iter(scenario.make_train_loader(scenario.splits["retain"], 16)))
    assert x.device.type == y.device.type == expected and x.dtype == torch.float32 and x.shape[0] == 16
    x, y, index = next(iter(scenario.eval_loader("forget")))
    assert x.device.type == y.device.type == index.device.type == expected
    if resident:
        retain = scenario.splits["retain"]
        assert scenario.resident_copy(retain) is scenario.resident_copy(retain)  # moved once
        assert scenario.resident_copy(retain).images.dtype == retain.images.dtype  # (uint8 stays uint8: converted per batch)
        assert retain.images.device.type == "cpu"  # the view's datasets stay on the host


def test_a_resident_dataset_keeps_its_device_through_subsets():
    from datamodules.datasets import ImageTensorDataset

    dataset = ImageTensorDataset(torch.zeros(6, 1, 2, 2, dtype=torch.uint8), torch.arange(6))
    assert dataset.to("cpu") is dataset
    moved = dataset.to("meta")
    part = moved.subset([1, 3], targets=torch.tensor([0, 0]))
    assert part.images.device.type == part.targets.device.type == "meta" and part.images.dtype == torch.uint8 and len(part) == 2


def test_the_optml_draw_is_their_numpy_choice_and_leaves_other_requests_hashes_alone():
    import numpy as np

    scenario = RandomInstances(k=100, seed=2, draw="optml")
    scenario.setup()
    n = len(scenario.train_set)
    assert list(scenario.request.forget_indices) == sorted(np.random.RandomState(1).choice(np.arange(n), 100, replace=False).tolist())
    assert scenario.request.scenario["draw"] == "optml"
    default = RandomInstances(k=100, seed=2)
    default.setup()
    assert "draw" not in default.request.scenario and default.request.hash != scenario.request.hash
    with pytest.raises(RequestError, match="seed must be at least 1, got 0"):
        RandomInstances(k=100, seed=0, draw="optml")
    with pytest.raises(RequestError, match="never relabels"):
        RandomInstances(k=100, seed=2, draw="optml", relabel=True)
