"""MNIST (LeCun et al. 1998): 28×28 grey handwritten digits, 10 classes, 60k train / 10k test.

Used by seed 003 (VGG16 on MNIST, Table 1) and seed 004 (7-MNIST, 7-noisyMNIST, 9-MNIST; Tables 1, 4).
Read with torchvision's `MNIST` from its root layout `<root>/MNIST/raw/*-ubyte` (no md5 check there).
"""

from pathlib import Path

from torchvision.datasets import MNIST

from datamodules.datasets import DatasetInfo, DatasetSplits, register_dataset
from datamodules.datasets.torchvision_data import find_files, image_split, reading

FILES = tuple(f"MNIST/raw/{name}" for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))
HOW_TO_GET = (
    "download the four *-ubyte.gz files from https://ossci-datasets.s3.amazonaws.com/mnist/ (torchvision's mirror of "
    "http://yann.lecun.com/exdb/mnist/) and gunzip them into {root}/MNIST/raw/, or pass the directory holding MNIST/raw/ as data_root"
)


@register_dataset("mnist")
def mnist(root: Path | None = None) -> DatasetSplits:
    found = find_files("mnist", root, FILES, HOW_TO_GET)
    with reading("mnist", found, HOW_TO_GET, found.absolute() / "MNIST" / "raw"):
        train, test = (MNIST(found, train=split, download=False) for split in (True, False))
        train_split, test_split = image_split(train.data.unsqueeze(1), train.targets, 10), image_split(test.data.unsqueeze(1), test.targets, 10)
    info = DatasetInfo(
        name="mnist",
        num_classes=10,
        channels=1,
        image_size=28,
        mean=(0.1307,),
        std=(0.3081,),
        class_names=tuple(MNIST.classes),
        source=f"torchvision MNIST IDX files at {found.absolute() / 'MNIST' / 'raw'}",
    )
    return DatasetSplits(train_split, test_split, info)
