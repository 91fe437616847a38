"""CIFAR-10, CIFAR-100 and CIFAR-20 (Krizhevsky 2009, "Learning Multiple Layers of Features from Tiny
Images"): 32×32 colour images, 50k train / 10k test, in the python pickles of the official archives.

CIFAR-10: seed 000 Table 1 (ResNet-18), seed 002 Table I (ResNet-18, AllCNN), seed 003 (ResNet20),
seed 004 (Truck-CIFAR10). CIFAR-100: seed 000 Table 1 (ResNet-50), seed 002 (ResNet-18, MobileNetV2),
seed 003 (GoogLeNet). CIFAR-20 (the 20 superclasses of CIFAR-100) is in none of the four papers; it is
here for sub-class forgetting (forget one fine class, e.g. "rocket", of a model that predicts its
superclass). Its samples are in CIFAR-100's order, so `load_dataset("cifar100").train.targets` are their
fine labels, and `cifar100_fine_to_coarse` maps a fine class to its superclass.
"""

import pickle
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torchvision.datasets import CIFAR10, CIFAR100

from datamodules.datasets import DatasetInfo, DatasetSplits, register_dataset
from datamodules.datasets.torchvision_data import find_files, image_split, reading

CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)
HOW_TO_GET = (
    "download the {title} python version, {url} (see https://www.cs.toronto.edu/~kriz/cifar.html), "
    "and extract it under {{root}}, or pass the directory holding {folder}/ as data_root"
)


class _CIFAR10(CIFAR10):
    """torchvision's CIFAR10 reader, with its md5 check reduced to "the file exists".

    torchvision compares each pickle with the md5 sum of the official archive, which no hand-made file
    can match; without it the tests feed this same reading code small files in the same format. A
    truncated or foreign file still fails (in pickle, or in the reshape to [N, 3, 32, 32]), and
    `image_split` checks the label range and counts.
    """

    how_to_get = HOW_TO_GET.format(title="CIFAR-10", url=CIFAR10.url, folder=CIFAR10.base_folder)
    train_list = [[name, None] for name, _ in CIFAR10.train_list]
    test_list = [[name, None] for name, _ in CIFAR10.test_list]
    meta = {**CIFAR10.meta, "md5": None}


class _CIFAR100(CIFAR100):
    """torchvision's CIFAR100 reader (fine labels), its md5 check reduced as in `_CIFAR10`."""

    how_to_get = HOW_TO_GET.format(title="CIFAR-100", url=CIFAR100.url, folder=CIFAR100.base_folder)
    train_list = [[name, None] for name, _ in CIFAR100.train_list]
    test_list = [[name, None] for name, _ in CIFAR100.test_list]
    meta = {**CIFAR100.meta, "md5": None}


def _files(cls: type[_CIFAR10] | type[_CIFAR100]) -> list[str]:
    return [f"{cls.base_folder}/{name}" for name, _ in cls.train_list + cls.test_list] + [f"{cls.base_folder}/{cls.meta['filename']}"]


def _torchvision_cifar(name: str, cls: type[_CIFAR10] | type[_CIFAR100], root: Path | None, num_classes: int, mean: tuple[float, ...], std: tuple[float, ...]) -> DatasetSplits:
    how = cls.how_to_get
    found = find_files(name, root, _files(cls), how)
    with reading(name, found, how, found.absolute() / cls.base_folder):
        train, test = cls(found, train=True, download=False), cls(found, train=False, download=False)
        splits = [image_split(data.data, data.targets, num_classes, channels_last=True) for data in (train, test)]
        if len(train.classes) != num_classes:
            raise ValueError(f"{len(train.classes)} class names, expected {num_classes}")
    info = DatasetInfo(
        name=name,
        num_classes=num_classes,
        channels=3,
        image_size=32,
        mean=mean,
        std=std,
        class_names=tuple(train.classes),
        source=f"torchvision {cls.__base__.__name__} pickles at {found.absolute() / cls.base_folder}",
        train_augment="crop_flip",
    )
    return DatasetSplits(*splits, info)


@register_dataset("cifar10")
def cifar10(root: Path | None = None) -> DatasetSplits:
    return _torchvision_cifar("cifar10", _CIFAR10, root, 10, CIFAR10_MEAN, CIFAR10_STD)


OPTML_SPLIT_SEED = 2
"""The seed of the OPTML code's 45,000 / 5,000 split of CIFAR-10's training set: `cifar10_dataloaders(seed=args.seed)`,
`--seed` 2 by default (Unlearn-Saliency @ Classification/arg_parser.py)."""


def optml_train_rows(targets: np.ndarray, seed: int = OPTML_SPLIT_SEED) -> np.ndarray:
    """The training rows the OPTML code keeps (OPTML-Group/Unlearn-Saliency @ Classification/dataset.py,
    `cifar10_dataloaders`): `RandomState(seed)` draws `int(0.1 · n_c)` validation rows of each class c in class order,
    without replacement; the rest, in ascending order (`list(set(range(N)) - set(valid_idx))`), are the training set."""
    rng = np.random.RandomState(seed)
    valid = [rng.choice(np.where(targets == c)[0], int(0.1 * int((targets == c).sum())), replace=False) for c in range(int(targets.max()) + 1)]
    return np.setdiff1d(np.arange(len(targets)), np.hstack(valid))


@register_dataset("cifar10_optml")
def cifar10_optml(root: Path | None = None) -> DatasetSplits:
    """CIFAR-10 as the OPTML family (SalUn, Unlearn-Sparse) splits it: the 45,000 training rows of `optml_train_rows`
    (5,000 held out for validation, never used here) and the 10,000 test images. Its forget requests are made on these
    45,000 (`RandomInstances(k=4500, seed=2, draw="optml")`: their random 10 %; `WholeClasses`: a class's 4,500).

    The authors' code trains the original on another split: `setup_model_dataset` calls `cifar10_dataloaders` without
    a seed for `train_full_loader` (its default, 1) and with `--seed` (2) for the marked loader that D_f and D_r come
    from, so about a tenth of their D_f was in the original's validation set and never trained on. Here the original
    is trained on the same 45,000 as D_f and D_r, as the papers describe the setting."""
    full = _torchvision_cifar("cifar10", _CIFAR10, root, 10, CIFAR10_MEAN, CIFAR10_STD)
    rows = torch.from_numpy(optml_train_rows(full.train.targets.numpy()))
    info = replace(full.info, name="cifar10_optml", source=f"{full.info.source}, OPTML's 45,000 training rows (split seed {OPTML_SPLIT_SEED})")
    return DatasetSplits(full.train.subset(rows), full.test, info)


@register_dataset("cifar100")
def cifar100(root: Path | None = None) -> DatasetSplits:
    return _torchvision_cifar("cifar100", _CIFAR100, root, 100, CIFAR100_MEAN, CIFAR100_STD)


def _unpickle(root: Path, name: str) -> dict:
    """One pickle of the CIFAR-100 archive, read as torchvision reads it."""
    with open(root / CIFAR100.base_folder / name, "rb") as file:
        return pickle.load(file, encoding="latin1")


@register_dataset("cifar20")
def cifar20(root: Path | None = None) -> DatasetSplits:
    """CIFAR-100's images with the `coarse_labels` of the same pickles (torchvision exposes only the fine ones)."""
    how = _CIFAR100.how_to_get
    found = find_files("cifar20", root, _files(_CIFAR100), how)
    with reading("cifar20", found, how, found.absolute() / CIFAR100.base_folder):
        batches = [_unpickle(found, name) for name in ("train", "test")]
        splits = [image_split(batch["data"].reshape(-1, 3, 32, 32), batch["coarse_labels"], 20) for batch in batches]
        class_names = tuple(_unpickle(found, "meta")["coarse_label_names"])
        if len(class_names) != 20:
            raise ValueError(f"{len(class_names)} coarse class names, expected 20")
    info = DatasetInfo(
        name="cifar20",
        num_classes=20,
        channels=3,
        image_size=32,
        mean=CIFAR100_MEAN,
        std=CIFAR100_STD,
        class_names=class_names,
        source=f"CIFAR-100 pickles (coarse labels) at {found.absolute() / CIFAR100.base_folder}",
        train_augment="crop_flip",
    )
    return DatasetSplits(*splits, info)


def cifar100_fine_to_coarse(root: Path | None = None) -> list[int]:
    """`mapping[fine]`: the CIFAR-20 superclass of each CIFAR-100 class, from the training pickle's label pairs."""
    how = _CIFAR100.how_to_get
    found = find_files("cifar20", root, _files(_CIFAR100), how)
    with reading("cifar20", found, how, found.absolute() / CIFAR100.base_folder / "train"):
        batch = _unpickle(found, "train")
        pairs = set(zip(batch["fine_labels"], batch["coarse_labels"]))
        mapping = dict(pairs)
        if len(mapping) != len(pairs) or sorted(mapping) != list(range(100)):
            raise ValueError("fine labels do not each map to exactly one coarse label")
    return [mapping[fine] for fine in range(100)]
