"""D_f from another dataset with its true labels (seed 000 Table 4), and the ImageNet-A and UTKFace paper configs, on tiny fixtures."""

import pytest
import torch

from cli import cli_main
from datamodules.requests import RequestError
from datamodules.scenarios import ExternalInstances
from tests.conftest import QUIET, ROOT, records_in
from tests.datamodules.test_folder_datasets import assert_colour, imagenet_a_root, imagenet_root, utk_root  # noqa: F401 (fixtures)


@pytest.fixture
def both_roots(imagenet_root, imagenet_a_root):  # noqa: F811
    assert imagenet_root == imagenet_a_root  # one data root holding imagenet/ and imagenet-a/
    return imagenet_root


def test_forget_set_is_source_images_with_true_labels_and_nothing_of_the_training_set(both_roots):
    scenario = ExternalInstances(source="imagenet_a", k=3, seed=0, dataset="imagenet", data_root=str(both_roots))
    scenario.setup()
    forget, relabel = scenario.splits["forget"], scenario.splits["relabel"]
    chosen = scenario.request.scenario["source_indices"]
    assert len(chosen) == len(set(chosen)) == 3 and scenario.request.forget_indices == ()
    a_targets = [6, 6, 11, 13]  # the fixture's ImageNet-A labels, as ImageNet-1K indices
    assert forget.targets.tolist() == [a_targets[i] for i in chosen] and torch.equal(relabel.targets, forget.targets)
    for i in range(3):
        assert_colour(forget[i][0], forget.targets[i].item())
    assert len(scenario.splits["retain"]) == 6 and len(scenario.splits["test"]) == 3  # all of ImageNet train, its val
    assert scenario.eval_split_names == ["forget", "retain", "test", "relabel"]
    again = ExternalInstances(source="imagenet_a", k=3, seed=0, dataset="imagenet", data_root=str(both_roots))
    again.setup()
    other = ExternalInstances(source="imagenet_a", k=3, seed=1, dataset="imagenet", data_root=str(both_roots))
    other.setup()
    assert again.request.hash == scenario.request.hash != other.request.hash


def test_source_must_fit_the_dataset(both_roots):
    with pytest.raises(RequestError, match=r"k=5 must be between 1 and the 4 images of imagenet_a"):
        ExternalInstances(k=5, data_root=str(both_roots)).setup()
    with pytest.raises(RequestError, match=r"digits \(10 classes, 1×8×8\) does not match imagenet \(1000 classes, 3×224×224\)"):
        ExternalInstances(source="digits", k=2, data_root=str(both_roots)).setup()


FIXTURE_RUN = ["--model.attack.n_adv", "1", "--model.attack.steps", "1", "--model.budget.max_epochs", "1", "--data.k", "2", "--data.num_workers", "0",
               "--pretrained.arch", "small_cnn", "--pretrained.recipe", "smoke", "--evaluation.mia", "false", "--trainer.devices", "1", *QUIET]


def test_imagenet_a_config_runs_on_the_fixture(both_roots, tmp_path, monkeypatch):
    """Seed 000 Table 4's Adv config end to end on the fixtures (smaller k, N_adv, PGD, epochs; a one-epoch `smoke` original)."""
    monkeypatch.chdir(ROOT)
    cli_main(["fit", "--config", "configs/papers/imagenet_a_resnet50_adv.yaml", "--data.data_root", str(both_roots), *FIXTURE_RUN, "--results_dir", str(tmp_path)])
    (record,) = records_in(tmp_path)
    assert record["method"] == "Adv" and record["config"]["model"]["init_args"]["goal"] == "relabel"
    assert set(record["metrics"]) == {"forget/acc", "retain/acc", "test/acc", "relabel/acc"}
    assert record["metrics"]["forget/acc"] == record["metrics"]["relabel/acc"]
    assert record["dataset"] == "imagenet" and record["scenario"]["source"] == "imagenet_a" and len(record["scenario"]["source_indices"]) == 2


def test_utkface_config_runs_on_the_fixture(utk_root, tmp_path, monkeypatch):  # noqa: F811
    """Seed 000 Table 2's Adv config end to end on the UTKFace fixture."""
    monkeypatch.chdir(ROOT)
    cli_main(["fit", "--config", "configs/papers/utkface_resnet18_adv.yaml", "--data.data_root", str(utk_root), *FIXTURE_RUN, "--results_dir", str(tmp_path)])
    (record,) = records_in(tmp_path)
    assert record["method"] == "Adv" and record["dataset"] == "utkface" and record["request"]["num_forget"] == 2
    assert set(record["metrics"]) == {"forget/acc", "retain/acc", "test/acc"}
