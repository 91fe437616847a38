import gzip
import struct

import numpy as np
import pytest
import torch

from benchmark.core.errors import UnknownNameError
from datamodules.datasets import DatasetNotFoundError, load_dataset

IDX_FILES = {"train-images-idx3-ubyte": (5, 28, 28), "train-labels-idx1-ubyte": (5,), "t10k-images-idx3-ubyte": (3, 28, 28), "t10k-labels-idx1-ubyte": (3,)}


def write_idx(path, array: np.ndarray) -> None:
    """The IDX format of (Fashion-)MNIST: magic (0x0800 | ndim, uint8), big-endian dims, raw bytes."""
    path.write_bytes(struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes())


@pytest.fixture
def fashion_fixture(tmp_path):
    """A tiny Fashion-MNIST in torchvision's root layout; labels are 0, 1, 2, … and pixel (0, 0) = label."""
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for name, shape in IDX_FILES.items():
        n = shape[0]
        array = np.arange(n) if len(shape) == 1 else np.zeros(shape, dtype=np.uint8)
        if len(shape) == 3:
            array[:, 0, 0] = np.arange(n) * 50
        write_idx(raw / name, array)
    return tmp_path


def test_fashion_mnist_reads_torchvision_layout(fashion_fixture):
    data = load_dataset("fashion_mnist", fashion_fixture)
    assert (len(data.train), len(data.test)) == (5, 3)
    x, y = data.train.__getitems__([0, 4])
    assert x.shape == (2, 1, 28, 28) and x.dtype == torch.float32
    assert y.tolist() == [0, 4] and x[1, 0, 0, 0].item() == pytest.approx(200 / 255)
    assert data.info.num_classes == 10 and data.info.class_names[0] == "T-shirt/top"


def test_fashion_mnist_reads_gzipped_idx(fashion_fixture, tmp_path, capsys):
    gz_dir = tmp_path / "debian"
    gz_dir.mkdir()
    for name in IDX_FILES:
        (gz_dir / f"{name}.gz").write_bytes(gzip.compress((fashion_fixture / "FashionMNIST" / "raw" / name).read_bytes()))
    assert len(load_dataset("fashion_mnist", gz_dir).train) == 5
    assert f"fashion_mnist: unpacking 0 MB of gzipped IDX files from {gz_dir}" in capsys.readouterr().err  # said once, not silent
    load_dataset("fashion_mnist", gz_dir)
    assert "unpacking" not in capsys.readouterr().err


def test_missing_dataset_says_how_to_get_it(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"fashion_mnist: no IDX files found at .*apt-get install -y dataset-fashion-mnist"):
        load_dataset("fashion_mnist", tmp_path / "nowhere")


def test_malformed_dataset_is_a_clear_error(fashion_fixture):
    (fashion_fixture / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").write_bytes(b"garbage")
    with pytest.raises(DatasetNotFoundError, match="fashion_mnist: cannot read"):
        load_dataset("fashion_mnist", fashion_fixture)


def test_unknown_dataset_lists_known_names():
    with pytest.raises(UnknownNameError, match="unknown dataset 'cifar1000'; known: .*digits, digits28, fashion_mnist, fashion_sub"):
        load_dataset("cifar1000")


@pytest.mark.parametrize("name", ["digits", "fashion_mnist"])
def test_in_memory_datasets_are_consistent(name, fashion_fixture):
    data = load_dataset(name, fashion_fixture if name == "fashion_mnist" else None)
    info = data.info
    x, y = data.train.__getitems__(list(range(min(4, len(data.train)))))
    assert x.shape[1:] == (info.channels, info.image_size, info.image_size)
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert len(info.class_names) == info.num_classes == 10 and len(info.mean) == len(info.std) == info.channels
    assert int(data.test.targets.max()) < info.num_classes


def test_digits_split_is_fixed():
    a, b = load_dataset("digits"), load_dataset("digits")
    assert (len(a.train), len(a.test)) == (1437, 360)
    assert torch.equal(a.train.targets, b.train.targets) and torch.equal(a.test.images, b.test.images)
