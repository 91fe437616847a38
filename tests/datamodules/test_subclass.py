import json

import numpy as np
import pytest
import torch

from datamodules.datasets import DatasetNotFoundError, load_dataset
from datamodules.datasets import fashion_sub as fs
from datamodules.datasets.fashion_mnist import DEBIAN_DIR, FILES
from datamodules.requests import RequestError
from datamodules.scenarios import Subclass
from tests.datamodules.test_datasets import write_idx

N_TRAIN, N_TEST = 600, 100  # labels i % 10: 60 / 10 sandals
SUB_TRAIN, SUB_TEST = 40, 4
COMMITTED = fs.INDEX_FILE


def original_index(split) -> list[int]:
    """The fixture writes each image's index into pixels (0, 0) and (0, 1)."""
    pixels = split.images[:, 0, 0, :2].long()
    return (pixels[:, 0] + 256 * pixels[:, 1]).tolist()


@pytest.fixture(scope="module")
def fixture_files(tmp_path_factory):
    """A tiny Fashion-MNIST in torchvision's layout (labels i % 10, the index i in the pixels) and its subclass index."""
    root = tmp_path_factory.mktemp("fashion_sub")
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", N_TRAIN), ("t10k", N_TEST)):
        images = np.zeros((n, 28, 28), dtype=np.uint8)
        images[:, 0, 0], images[:, 0, 1] = np.arange(n) % 256, np.arange(n) // 256
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    index = fs.write_subclass_index(root / "index.json", root, SUB_TRAIN, SUB_TEST, seed=0)
    return root, index


@pytest.fixture
def tiny(fixture_files, monkeypatch):
    root, index = fixture_files
    monkeypatch.setattr(fs, "INDEX_FILE", index)
    return root


def scenario(root, **kwargs) -> Subclass:
    s = Subclass(data_root=str(root), **kwargs)
    s.setup()
    return s


def test_nine_classes_and_no_sandal_outside_the_index(tiny):
    data, index = load_dataset("fashion_sub", tiny), fs.read_subclass_index(fs.INDEX_FILE)
    assert data.info.num_classes == len(data.info.class_names) == 9 and data.info.class_names[fs.FOOTWEAR] == "Footwear"
    for name, split, n in (("train", data.train, N_TRAIN), ("test", data.test, N_TEST)):
        kept = original_index(split)
        sandals = [i for i in kept if i % 10 == fs.SANDAL]
        assert sandals == index[name] and len(sandals) == (SUB_TRAIN if name == "train" else SUB_TEST)
        assert len(split) == n - n // 10 + len(sandals)
        assert [kept[p] for p in fs.subclass_indices(data, name).tolist()] == index[name]
        assert split.targets.tolist() == fs.NEW_ID[torch.tensor(kept) % 10].tolist()
        assert set(split.targets[fs.subclass_indices(data, name)].tolist()) == {fs.FOOTWEAR}
    assert fs.NEW_ID[fs.SNEAKER] == fs.FOOTWEAR and fs.CLASS_NAMES[fs.ANKLE_BOOT] == "Ankle boot"


def test_the_index_file_is_hash_checked(tmp_path):
    committed = fs.read_subclass_index(COMMITTED)
    assert (len(committed["train"]), len(committed["test"]), committed["seed"]) == (800, 137, 0)
    tampered = tmp_path / "tampered.json"
    record = json.loads(COMMITTED.read_text())
    record["train"][0] += 10
    tampered.write_text(json.dumps(record))
    match = r"^fashion_sub: subclass index .*tampered.json: sha256 \w+ does not match its index lists"
    with pytest.raises(DatasetNotFoundError, match=match) as error:
        fs.read_subclass_index(tampered)
    assert "\n" not in str(error.value)
    with pytest.raises(DatasetNotFoundError, match=r"subclass index .*absent.json is missing; it is committed with the repository"):
        fs.read_subclass_index(tmp_path / "absent.json")


def test_an_index_that_does_not_fit_the_data_is_refused(tmp_path, tiny, monkeypatch):
    monkeypatch.setattr(fs, "INDEX_FILE", COMMITTED)
    with pytest.raises(DatasetNotFoundError, match=rf"is for Fashion-MNIST splits of 60000 / 10000 images, the data found has {N_TRAIN} / {N_TEST}"):
        load_dataset("fashion_sub", tiny)
    record = fs.read_subclass_index(COMMITTED) | {"num_train": N_TRAIN, "num_test": N_TEST, "train": [1], "test": []}
    monkeypatch.setattr(fs, "INDEX_FILE", tmp_path / "wrong.json")
    fs.INDEX_FILE.write_text(json.dumps(record | {"sha256": fs.index_sha256([1], [])}))
    with pytest.raises(DatasetNotFoundError, match="names train image 1, a Trouser, not a Sandal"):
        load_dataset("fashion_sub", tiny)


def test_fractions_are_nested_for_one_seed_and_differ_between_seeds(tiny):
    sets = [set(scenario(tiny, fraction=p, seed=0).request.forget_indices) for p in (0.03, 0.1, 0.3, 1.0)]
    assert [len(s) for s in sets] == [round(p * SUB_TRAIN) for p in (0.03, 0.1, 0.3, 1.0)]
    assert sets[0] < sets[1] < sets[2] < sets[3]
    assert set(scenario(tiny, fraction=0.3, seed=1).request.forget_indices) != sets[2]
    one = scenario(tiny, one_image=True, seed=0).request.forget_indices
    assert len(one) == 1 and set(one) <= sets[0]


def test_unselected_subclass_images_stay_in_the_retain_set(tiny):
    s = scenario(tiny, fraction=0.3, seed=2)
    members, forget = set(fs.subclass_indices(s.data, "train").tolist()), set(s.request.forget_indices)
    rest = members - forget
    assert forget <= members and len(rest) == SUB_TRAIN - 12
    assert rest <= set(s.retain_indices().tolist())
    assert original_index(s.splits["sub_train_rest"]) == sorted(original_index(s.data.train.subset(sorted(rest))))
    assert set(s.splits["sub_train_rest"].targets.tolist()) == set(s.splits["forget"].targets.tolist()) == {fs.FOOTWEAR}
    assert len(s.splits["test_forget"]) == SUB_TEST and set(s.splits["test_forget"].targets.tolist()) == {fs.FOOTWEAR}
    assert len(s.splits["test_forget"]) + len(s.splits["test_retain"]) == len(s.splits["test"])
    assert {i % 10 for i in original_index(s.splits["test_retain"])} == set(range(10)) - {fs.SANDAL}
    assert s.eval_split_names == ["forget", "retain", "test", "test_forget", "test_retain", "sub_train_rest"]
    assert s.request.scenario == {"kind": "subclass", "fraction": 0.3, "one_image": False, "mislabelled": False, "seed": 2,
                                  "subclass_index_sha256": fs.read_subclass_index(fs.INDEX_FILE)["sha256"]}
    assert "sub_train_rest" not in scenario(tiny, fraction=1.0).eval_split_names  # (empty)


def test_mislabelled_twin_trains_the_subclass_as_ankle_boot_and_scores_d_e_as_footwear(tiny):
    s = scenario(tiny, fraction=0.1, mislabelled=True)
    members = fs.subclass_indices(s.data, "train")
    assert s.request.corruption.indices == tuple(members.tolist()) and set(s.request.corruption.labels) == {fs.ANKLE_BOOT}
    changed = (s.train_set.targets != s.data.train.targets).nonzero().flatten()
    assert torch.equal(changed, members) and set(s.train_set.targets[members].tolist()) == {fs.ANKLE_BOOT}
    assert set(s.splits["forget"].targets.tolist()) == {fs.ANKLE_BOOT}  # what the original was trained with
    assert set(s.splits["noise"].targets.tolist()) == {fs.FOOTWEAR} and torch.equal(s.splits["noise"].images, s.splits["forget"].images)
    assert set(s.splits["sub_train_rest"].targets.tolist()) == set(s.splits["test_forget"].targets.tolist()) == {fs.FOOTWEAR}
    retained = s.train_set.targets[s.retain_indices()]
    assert int((retained == fs.ANKLE_BOOT).sum()) == N_TRAIN // 10 + SUB_TRAIN - 4  # ankle boots + the unselected sandals


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"fraction": 0.0}, r"fraction must be in \(0, 1\], got 0.0"),
    ({"fraction": 1.5}, r"fraction must be in \(0, 1\], got 1.5"),
    ({"fraction": 0.5, "one_image": True}, "one_image=True gives one image whatever the fraction"),
    ({"dataset": "fashion_mnist"}, "dataset fashion_mnist has no subclass index; datasets with one: fashion_sub"),
])
def test_unusable_arguments_are_refused(kwargs, message):
    with pytest.raises(RequestError, match=message):
        Subclass(**kwargs)


def test_a_fraction_selecting_no_image_is_refused(tiny):
    with pytest.raises(RequestError, match=f"fraction=0.01 of the {SUB_TRAIN} subclass training images of fashion_sub selects none"):
        scenario(tiny, fraction=0.01)


@pytest.mark.skipif(not all((DEBIAN_DIR / f"{name}.gz").exists() for name in FILES), reason="Fashion-MNIST is not installed")
def test_real_fashion_sub_and_its_mislabelled_twin():
    data = load_dataset("fashion_sub")
    assert (len(data.train), len(data.test)) == (54800, 9137)
    assert data.train.targets.bincount().tolist() == [6000] * 6 + [6800] + [6000] * 2
    assert len(fs.subclass_indices(data, "train")) == 800 and len(fs.subclass_indices(data, "test")) == 137
    x = data.train.images.float() / 255
    assert (x.mean().item(), x.std().item()) == pytest.approx((data.info.mean[0], data.info.std[0]), abs=1e-4)
    s = Subclass(fraction=0.03, mislabelled=True)
    s.data = data
    s.setup()
    assert len(s.request.forget_indices) == 24 and len(s.request.corruption.indices) == 800
    assert int((s.train_set.targets != data.train.targets).sum()) == 800
    assert set(s.splits["noise"].targets.tolist()) == {fs.FOOTWEAR} and len(s.splits["sub_train_rest"]) == 776
