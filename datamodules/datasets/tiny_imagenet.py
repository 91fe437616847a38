"""Tiny-ImageNet (Le & Yang 2015): 200 classes of 64×64 images, 100k train / 10k val; seed 003 (Fisher masking).

Read from the official `tiny-imagenet-200/` layout: `wnids.txt`, `words.txt` (class names),
`train/<wnid>/images/*.JPEG`, `val/images/*.JPEG` labeled by `val/val_annotations.txt`. Labels are
indices in sorted(wnids.txt). The test split is the official val split (the official test labels are
not public). The images are decoded once into memory (uint8, ≈1.2 GB for train + val): at 64×64
the whole set fits, training passes then cost no decoding, and the on-device "crop_flip" (the
CIFAR recipe, also used for 64×64 Tiny-ImageNet) works on whole batches.
"""

from pathlib import Path

import torch

from datamodules.datasets import DatasetInfo, DatasetSplits, register_dataset
from datamodules.datasets.folders import ImageFileDataset, find_dir, folder_per_class, malformed, not_found

NAME = "tiny_imagenet"
HOW_TO_GET = "download http://cs231n.stanford.edu/tiny-imagenet-200.zip and unzip it into --data.data_root (default $UNLEARNBENCH_HOME/data)"


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise not_found(NAME, path, HOW_TO_GET)
    return [line for line in path.read_text().splitlines() if line.strip()]


def _val(folder: Path, classes: dict[str, int]) -> tuple[list[Path], list[int]]:
    annotations = folder / "val" / "val_annotations.txt"
    files, targets = [], []
    for number, line in enumerate(_lines(annotations), 1):
        fields = line.split("\t")
        if len(fields) < 2 or fields[1] not in classes:
            raise malformed(NAME, annotations, f"line {number} is not '<file>\\t<wnid in wnids.txt>\\t…': {line[:60]!r}", HOW_TO_GET)
        files.append(folder / "val" / "images" / fields[0])
        targets.append(classes[fields[1]])
    return files, targets


@register_dataset(NAME)
def tiny_imagenet(root: Path | None = None) -> DatasetSplits:
    folder = find_dir(NAME, root, "tiny-imagenet-200", HOW_TO_GET)
    wnids = sorted({line.strip() for line in _lines(folder / "wnids.txt")})
    classes = {wnid: i for i, wnid in enumerate(wnids)}
    words_file = folder / "words.txt"
    words = dict(line.split("\t", 1) for line in _lines(words_file) if "\t" in line) if words_file.is_file() else {}
    train_files, train_targets = folder_per_class(NAME, folder / "train", classes, HOW_TO_GET, inner="images")
    val_files, val_targets = _val(folder, classes)
    train = ImageFileDataset(train_files, train_targets, 64, name=NAME).to_memory()
    test = ImageFileDataset(val_files, torch.tensor(val_targets), 64, name=NAME).to_memory()
    info = DatasetInfo(
        name=NAME,
        num_classes=len(wnids),
        channels=3,
        image_size=64,
        mean=(0.4802, 0.4481, 0.3975),
        std=(0.2770, 0.2691, 0.2821),
        class_names=tuple(words.get(wnid, wnid).strip() for wnid in wnids),
        source=f"tiny-imagenet-200 at {folder} ({len(train)} train, {len(test)} val images, decoded into memory)",
        train_augment="crop_flip",
    )
    return DatasetSplits(train, test, info)
