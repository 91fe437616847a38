"""SVHN (Netzer et al. 2011, "Reading Digits in Natural Images with Unsupervised Feature Learning"):
32×32 colour house-number digits, 10 classes, 73,257 train / 26,032 test (the `extra` set is not used).

None of the four papers uses SVHN; it is here as a second colour dataset with CIFAR-10's image size.
Read with torchvision's `SVHN` from `<root>/train_32x32.mat` and `<root>/test_32x32.mat`; torchvision
maps the label 10 of the digit 0 to 0. No flips in training: mirrored digits are other digits.
"""

from pathlib import Path

from torchvision.datasets import SVHN

from datamodules.datasets import DatasetInfo, DatasetSplits, register_dataset
from datamodules.datasets.torchvision_data import find_files, image_split, reading

HOW_TO_GET = (
    "download train_32x32.mat and test_32x32.mat (format 2, cropped digits) from http://ufldl.stanford.edu/housenumbers/ "
    "into {root}, or pass the directory holding them as data_root"
)


class _SVHN(SVHN):
    """torchvision's SVHN reader, with its md5 check reduced to "the file exists".

    torchvision compares each .mat file with the md5 sum of the official one, which no hand-made file can
    match; without it the tests feed this same reading code small files in the same format. A truncated
    or foreign file still fails in scipy.io.loadmat or in the reshape, and `image_split` checks labels.
    """

    split_list = {split: [url, filename, None] for split, (url, filename, _) in SVHN.split_list.items()}


@register_dataset("svhn")
def svhn(root: Path | None = None) -> DatasetSplits:
    found = find_files("svhn", root, [_SVHN.split_list[split][1] for split in ("train", "test")], HOW_TO_GET)
    with reading("svhn", found, HOW_TO_GET):
        splits = []
        for split in ("train", "test"):
            data = _SVHN(found, split=split, download=False)
            splits.append(image_split(data.data, data.labels, 10))
    info = DatasetInfo(
        name="svhn",
        num_classes=10,
        channels=3,
        image_size=32,
        mean=(0.4377, 0.4438, 0.4728),
        std=(0.1980, 0.2010, 0.1970),
        class_names=tuple(str(digit) for digit in range(10)),
        source=f"torchvision SVHN .mat files at {found.absolute()}",
        train_augment=None,
    )
    return DatasetSplits(*splits, info)
