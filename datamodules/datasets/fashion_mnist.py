"""Fashion-MNIST (Xiao et al. 2017): 28×28 grey images, 10 classes, 60k train / 10k test.

Read with torchvision's `FashionMNIST` from its root layout (`<root>/FashionMNIST/raw/*-ubyte`), or
from the gzipped IDX files of Debian's `dataset-fashion-mnist` package, which are unpacked once into
that layout under `$UNLEARNBENCH_HOME/data`.
"""

import gzip
import sys
from pathlib import Path

from torchvision.datasets import FashionMNIST

from benchmark.core.paths import atomic_write_bytes
from datamodules.datasets import DatasetInfo, DatasetNotFoundError, DatasetSplits, ImageTensorDataset, default_root, register_dataset
from datamodules.datasets.torchvision_data import image_split, reading

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
HOW_TO_GET = (
    "install Debian's package (apt-get install -y dataset-fashion-mnist) or place torchvision's "
    "FashionMNIST/raw/*-ubyte files under --data.data_root"
)


def _unpack_gzipped(source: Path, root: Path) -> None:
    raw = root / "FashionMNIST" / "raw"
    if any(not (raw / name).exists() for name in FILES):
        size = sum((source / f"{name}.gz").stat().st_size for name in FILES) / 2**20
        print(f"fashion_mnist: unpacking {size:.0f} MB of gzipped IDX files from {source} into {raw} (once)", file=sys.stderr)
    for name in FILES:
        if not (raw / name).exists():
            atomic_write_bytes(raw / name, gzip.decompress((source / f"{name}.gz").read_bytes()))


def _find_root(root: Path | None) -> Path:
    candidates = [root] if root is not None else [default_root(), DEBIAN_DIR]
    for candidate in candidates:
        if all((candidate / "FashionMNIST" / "raw" / f).exists() for f in FILES):
            return candidate
        if all((candidate / f"{f}.gz").exists() for f in FILES):
            cache = default_root() if candidate == DEBIAN_DIR else candidate
            _unpack_gzipped(candidate, cache)
            return cache
    tried = " or ".join(str(c) for c in candidates)
    raise DatasetNotFoundError(f"fashion_mnist: no IDX files found at {tried}; {HOW_TO_GET}")


def _split(root: Path, train: bool) -> ImageTensorDataset:
    with reading("fashion_mnist", root, HOW_TO_GET):
        data = FashionMNIST(root, train=train, download=False)
        return image_split(data.data.unsqueeze(1), data.targets, 10)


@register_dataset("fashion_mnist")
def fashion_mnist(root: Path | None = None) -> DatasetSplits:
    found = _find_root(root)
    train, test = _split(found, True), _split(found, False)
    info = DatasetInfo(
        name="fashion_mnist",
        num_classes=10,
        channels=1,
        image_size=28,
        mean=(0.2860,),
        std=(0.3530,),
        class_names=tuple(FashionMNIST.classes),
        source=f"torchvision FashionMNIST IDX files at {found}",
    )
    return DatasetSplits(train, test, info)
