"""UTKFace (Zhang, Song & Qi 2017): ≈23.7k aligned, cropped faces labeled by age, as 3 age groups.

Seed 000 (Cha et al., Table 2) trains a ResNet-18 age-group classifier on [0, 19], [20, 40] and
[41, 116] years (the paper writes [40, 116]; 40 belongs to the middle group). The age is the first
field of the file name `<age>_<gender>_<race>_<datetime>.jpg[.chip.jpg]`; a few official files lack
the gender or race field: their age still parses and they are kept. Files whose names do not
parse are skipped and counted in `info.source`; no parsable file at all is an error. UTKFace has
no official split: a stratified 80/20 train/test split with seed 0. Images: 224×224 (the 200×200
crops resized up); "flip" augmentation.
"""

import re
from pathlib import Path

from datamodules.datasets import DatasetInfo, DatasetSplits, register_dataset
from datamodules.datasets.folders import IMAGENET_MEAN, IMAGENET_STD, ImageFileDataset, find_dir, image_files, malformed, stratified_split

NAME = "utkface"
HOW_TO_GET = (
    "download UTKFace.tar.gz (aligned & cropped faces) from https://susanqq.github.io/UTKFace/ and extract it "
    "into --data.data_root (default $UNLEARNBENCH_HOME/data), giving UTKFace/<age>_<gender>_<race>_<datetime>.jpg.chip.jpg"
)
AGE_GROUPS = ((0, 19), (20, 40), (41, 116))
FILE_NAME = re.compile(r"(\d{1,3})_(?:\d_){0,2}\d+\.jpg(?:\.chip\.jpg)?")


def age_group(file_name: str) -> int | None:
    """The age group of a UTKFace file name, None when the name does not parse."""
    match = FILE_NAME.fullmatch(file_name)
    age = int(match.group(1)) if match else -1
    return next((group for group, (low, high) in enumerate(AGE_GROUPS) if low <= age <= high), None)


@register_dataset(NAME)
def utkface(root: Path | None = None) -> DatasetSplits:
    folder = find_dir(NAME, root, "UTKFace", HOW_TO_GET)
    files = image_files(folder)
    groups = [age_group(f.name) for f in files]
    kept = [i for i, g in enumerate(groups) if g is not None]
    skipped = [files[i].name for i, g in enumerate(groups) if g is None]
    if not kept:
        raise malformed(NAME, folder, f"no file name parses as <age>_<gender>_<race>_<datetime>.jpg among {len(files)} images", HOW_TO_GET)
    full = ImageFileDataset([files[i] for i in kept], [groups[i] for i in kept], image_size=224, name=NAME)
    train, test = stratified_split(full, test_fraction=0.2, seed=0)
    note = f"; {len(skipped)} malformed file name(s) skipped, e.g. {skipped[0]!r}" if skipped else ""
    info = DatasetInfo(
        name=NAME,
        num_classes=len(AGE_GROUPS),
        channels=3,
        image_size=224,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        class_names=tuple(f"{low}-{high}" for low, high in AGE_GROUPS),
        source=f"UTKFace at {folder} ({len(kept)} images, stratified 80/20 split, seed 0{note})",
        train_augment="flip",
    )
    return DatasetSplits(train, test, info)
