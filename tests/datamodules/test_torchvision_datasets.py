"""MNIST, CIFAR-10/100/20 and SVHN read from tiny files in their native on-disk formats."""

import pickle
import re

import numpy as np
import pytest
import scipy.io
import torch

import datamodules.datasets.cifar
import datamodules.datasets.mnist
import datamodules.datasets.svhn  # noqa: F401  (registration)
from datamodules.datasets import DatasetNotFoundError, load_dataset
from datamodules.datasets.cifar import cifar100_fine_to_coarse
from tests.datamodules.test_datasets import write_idx

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def fine_to_coarse(fine: int) -> int:
    """The fixture's superclasses (not the real ones): every fine class maps to exactly one."""
    return (7 * fine) % 20


def cifar_rows(labels: list[int]) -> np.ndarray:
    """CIFAR's [N, 3072] rows (R plane, G plane, B plane, each 32×32 row-major): R(0,0) = label, G(0,1) = label + 100."""
    rows = np.zeros((len(labels), 3 * 32 * 32), dtype=np.uint8)
    rows[:, 0] = labels
    rows[:, 1024 + 1] = np.asarray(labels) + 100
    return rows


def dump(path, obj) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=2))


@pytest.fixture
def mnist_root(tmp_path):
    """MNIST/raw/*-ubyte: 5 train and 3 test images, label i, pixel (0, 0) = 50 i."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", 5), ("t10k", 3)):
        images = np.zeros((n, 28, 28), dtype=np.uint8)
        images[:, 0, 0] = np.arange(n) * 50
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n))
    return tmp_path


@pytest.fixture
def cifar10_root(tmp_path):
    """cifar-10-batches-py: data_batch_1..5 of 2 images each (labels 2b-2, 2b-1), a test_batch of 3."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for b in range(1, 6):
        labels = [2 * b - 2, 2 * b - 1]
        dump(folder / f"data_batch_{b}", {"batch_label": f"training batch {b} of 5", "labels": labels, "data": cifar_rows(labels), "filenames": ["a.png", "b.png"]})
    dump(folder / "test_batch", {"batch_label": "testing batch 1 of 1", "labels": [9, 0, 5], "data": cifar_rows([9, 0, 5]), "filenames": ["c.png"] * 3})
    dump(folder / "batches.meta", {"label_names": CIFAR10_CLASSES, "num_cases_per_batch": 2, "num_vis": 3072})
    return tmp_path


@pytest.fixture
def cifar100_root(tmp_path):
    """cifar-100-python: 100 train images (fine label i), 4 test images; coarse labels by `fine_to_coarse`."""
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for name, fine in (("train", list(range(100))), ("test", [99, 3, 42, 0])):
        coarse = [fine_to_coarse(f) for f in fine]
        dump(folder / name, {"batch_label": name, "fine_labels": fine, "coarse_labels": coarse, "data": cifar_rows(fine), "filenames": ["x.png"] * len(fine)})
    dump(folder / "meta", {"fine_label_names": [f"fine{i}" for i in range(100)], "coarse_label_names": [f"coarse{i}" for i in range(20)]})
    return tmp_path


@pytest.fixture
def svhn_root(tmp_path):
    """train_32x32.mat / test_32x32.mat: X [32, 32, 3, N], y [N, 1] with 10 for the digit 0; X[0, 1, 2, n] = 10 n + 1."""
    for split, labels in (("train", [10, 1, 2, 9]), ("test", [3, 10])):
        n = len(labels)
        x = np.zeros((32, 32, 3, n), dtype=np.uint8)
        x[0, 1, 2] = 10 * np.arange(n) + 1
        scipy.io.savemat(tmp_path / f"{split}_32x32.mat", {"X": x, "y": np.asarray(labels, dtype=np.uint8).reshape(n, 1)})
    return tmp_path


def test_mnist_reads_idx_files(mnist_root):
    data = load_dataset("mnist", mnist_root)
    assert (len(data.train), len(data.test)) == (5, 3)
    assert data.train.images.shape == (5, 1, 28, 28) and data.train.images.dtype == torch.uint8
    assert data.train.targets.dtype == torch.long and data.train.targets.tolist() == [0, 1, 2, 3, 4]
    x, y = data.test.__getitems__([2])
    assert x[0, 0, 0, 0].item() == pytest.approx(100 / 255) and y.tolist() == [2]
    info = data.info
    assert (info.num_classes, info.channels, info.image_size, info.mean, info.std) == (10, 1, 28, (0.1307,), (0.3081,))
    assert info.class_names[7] == "7 - seven" and info.train_augment is None and str(mnist_root) in info.source


def test_cifar10_reads_pickled_batches(cifar10_root):
    data = load_dataset("cifar10", cifar10_root)
    assert (len(data.train), len(data.test)) == (10, 3)
    assert data.train.images.shape == (10, 3, 32, 32) and data.train.images.dtype == torch.uint8
    assert data.train.images.is_contiguous() and data.train.targets.dtype == torch.long
    assert data.train.targets.tolist() == list(range(10)) and data.test.targets.tolist() == [9, 0, 5]
    assert data.train.images[:, 0, 0, 0].tolist() == list(range(10)) and data.train.images[:, 1, 0, 1].tolist() == list(range(100, 110))
    assert int(data.train.images.sum()) == sum(range(10)) + sum(range(100, 110))
    info = data.info
    assert info.class_names == tuple(CIFAR10_CLASSES) and info.num_classes == 10 and (info.channels, info.image_size) == (3, 32)
    assert info.mean == (0.4914, 0.4822, 0.4465) and info.std == (0.2470, 0.2435, 0.2616) and info.train_augment == "crop_flip"


def test_cifar100_reads_fine_labels(cifar100_root):
    data = load_dataset("cifar100", cifar100_root)
    assert data.train.images.shape == (100, 3, 32, 32) and data.train.targets.tolist() == list(range(100))
    assert data.test.targets.tolist() == [99, 3, 42, 0] and data.test.images[:, 0, 0, 0].tolist() == [99, 3, 42, 0]
    assert data.info.num_classes == 100 and data.info.class_names[42] == "fine42" and data.info.mean == (0.5071, 0.4865, 0.4409)


def test_cifar20_reads_coarse_labels_in_cifar100_order(cifar100_root):
    coarse, fine = load_dataset("cifar20", cifar100_root), load_dataset("cifar100", cifar100_root)
    assert coarse.test.targets.tolist() == [fine_to_coarse(f) for f in (99, 3, 42, 0)]
    assert torch.equal(coarse.train.images, fine.train.images) and torch.equal(coarse.test.images, fine.test.images)
    assert coarse.train.targets.dtype == torch.long and int(coarse.train.targets.max()) == 19
    info = coarse.info
    assert info.num_classes == len(info.class_names) == 20 and info.class_names[5] == "coarse5"
    assert (info.mean, info.std, info.train_augment) == (fine.info.mean, fine.info.std, "crop_flip")
    assert cifar100_fine_to_coarse(cifar100_root) == [fine_to_coarse(f) for f in range(100)]


def test_svhn_reads_mat_files_and_maps_10_to_0(svhn_root):
    data = load_dataset("svhn", svhn_root)
    assert data.train.targets.tolist() == [0, 1, 2, 9] and data.test.targets.tolist() == [3, 0]
    assert data.train.images.shape == (4, 3, 32, 32) and data.train.images.dtype == torch.uint8 and data.train.targets.dtype == torch.long
    assert data.train.images[:, 2, 0, 1].tolist() == [1, 11, 21, 31] and int(data.train.images.sum()) == 64
    info = data.info
    assert info.class_names == tuple("0123456789") and info.train_augment is None and info.mean == (0.4377, 0.4438, 0.4728)


def test_default_root_is_home_data(cifar10_root, monkeypatch):
    (cifar10_root / "data").mkdir()
    (cifar10_root / "cifar-10-batches-py").rename(cifar10_root / "data" / "cifar-10-batches-py")
    monkeypatch.setenv("UNLEARNBENCH_HOME", str(cifar10_root))
    assert len(load_dataset("cifar10").train) == 10


@pytest.mark.parametrize(
    ("name", "missing", "how"),
    [
        ("mnist", "MNIST/raw/train-images-idx3-ubyte", r"gunzip them into .*/MNIST/raw/"),
        ("cifar10", "cifar-10-batches-py/data_batch_1", r"download the CIFAR-10 python version, https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"),
        ("cifar100", "cifar-100-python/train", r"download the CIFAR-100 python version, .* and extract it under"),
        ("cifar20", "cifar-100-python/train", r"download the CIFAR-100 python version"),
        ("svhn", "train_32x32.mat", r"download train_32x32.mat and test_32x32.mat .* from http://ufldl.stanford.edu/housenumbers/"),
    ],
)
def test_missing_files_say_where_and_how_to_get_them(name, missing, how, tmp_path):
    with pytest.raises(DatasetNotFoundError) as error:
        load_dataset(name, tmp_path / "nowhere")
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{name}: {tmp_path / 'nowhere' / missing} not found; ")
    assert re.search(how, message) and "data_root" in message


@pytest.mark.parametrize(
    ("name", "fixture", "file", "content"),
    [
        ("mnist", "mnist_root", "MNIST/raw/t10k-images-idx3-ubyte", b"garbage"),
        ("cifar10", "cifar10_root", "cifar-10-batches-py/data_batch_3", b"garbage"),
        ("cifar10", "cifar10_root", "cifar-10-batches-py/test_batch", pickle.dumps({"labels": [10], "data": cifar_rows([1])})),
        ("cifar100", "cifar100_root", "cifar-100-python/test", pickle.dumps({"fine_labels": [1]})),
        ("cifar20", "cifar100_root", "cifar-100-python/meta", b"\x80\x02garbage"),
        ("svhn", "svhn_root", "test_32x32.mat", b"MATLAB 5.0 garbage"),
    ],
)
def test_malformed_files_are_one_line_errors(name, fixture, file, content, request):
    root = request.getfixturevalue(fixture)
    (root / file).write_bytes(content)
    with pytest.raises(DatasetNotFoundError, match=rf"^{name}: cannot read {root}") as error:
        load_dataset(name, root)
    assert "\n" not in str(error.value)


def test_cifar10_optml_keeps_the_45k_rows_the_optml_code_keeps(tmp_path):
    """The split as the authors' `cifar10_dataloaders` makes it (Unlearn-Saliency @ Classification/dataset.py), restated
    with their Python sets, on 5 batches of 40 images with 20 of each class: 2 of each class held out."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    labels = np.random.RandomState(7).permutation(np.repeat(np.arange(10), 20))
    for b in range(5):
        part = labels[40 * b: 40 * b + 40].tolist()
        dump(folder / f"data_batch_{b + 1}", {"batch_label": "b", "labels": part, "data": cifar_rows(part), "filenames": ["a.png"] * 40})
    dump(folder / "test_batch", {"batch_label": "t", "labels": [9, 0, 5], "data": cifar_rows([9, 0, 5]), "filenames": ["c.png"] * 3})
    dump(folder / "batches.meta", {"label_names": CIFAR10_CLASSES, "num_cases_per_batch": 40, "num_vis": 3072})

    rng, valid_idx = np.random.RandomState(2), []
    for i in range(max(labels) + 1):
        class_idx = np.where(labels == i)[0]
        valid_idx.append(rng.choice(class_idx, int(0.1 * len(class_idx)), replace=False))
    train_idx = list(set(range(len(labels))) - set(np.hstack(valid_idx)))

    data = load_dataset("cifar10_optml", tmp_path)
    assert data.info.name == "cifar10_optml" and len(data.train) == 180 and len(data.test) == 3
    assert data.train.targets.tolist() == labels[train_idx].tolist()
    assert data.train.images[:, 0, 0, 0].tolist() == labels[train_idx].tolist()  # (R(0,0) = the label: the images moved with them)
    assert torch.equal(data.train.images, load_dataset("cifar10", tmp_path).train.images[train_idx])
