"""ImageNet-1K (Russakovsky et al. 2015) and ImageNet-A (Hendrycks et al. 2021), streamed from disk.

Seed 000 (Cha et al., Table 4) corrects an ImageNet-1K ResNet-50 on k ImageNet-A images. Labels are
indices in the standard ImageNet-1K order (timm's `ImageNetInfo`, sorted wnids), found from the
folder names, so a partial copy and ImageNet-A's 200 classes keep the indices of a 1000-way model.
Images: shorter side resized to 256, center crop 224; training augmentation is the batch-level "flip".
"""

from functools import cache
from pathlib import Path

from datamodules.datasets import DatasetInfo, DatasetSplits, register_dataset
from datamodules.datasets.folders import IMAGENET_MEAN, IMAGENET_STD, ImageFileDataset, find_dir, folder_per_class

HOW_TO_GET_IMAGENET = (
    "download ILSVRC2012 from https://image-net.org (registration) and extract it into "
    "--data.data_root (default $UNLEARNBENCH_HOME/data) as imagenet/{train,val}/<wnid>/*.JPEG "
    "(val sorted into class folders, e.g. with valprep.sh of PyTorch's ImageNet example)"
)
HOW_TO_GET_IMAGENET_A = (
    "download https://people.eecs.berkeley.edu/~hendrycks/imagenet-a.tar and extract it into "
    "--data.data_root (default $UNLEARNBENCH_HOME/data), giving imagenet-a/<wnid>/*.jpg"
)


@cache
def imagenet_classes() -> tuple[dict[str, int], tuple[str, ...]]:
    """wnid → ImageNet-1K index, and the 1000 class descriptions in index order."""
    from timm.data import ImageNetInfo  # timm is slow to import; only needed when a dataset loads

    info = ImageNetInfo()
    return {wnid: i for i, wnid in enumerate(info.label_names())}, tuple(info.label_descriptions())


def _files(name: str, folder: Path, how: str) -> ImageFileDataset:
    files, targets = folder_per_class(name, folder, imagenet_classes()[0], how)
    return ImageFileDataset(files, targets, image_size=224, resize=256, name=name)


def _info(name: str, source: str) -> DatasetInfo:
    return DatasetInfo(name, 1000, 3, 224, IMAGENET_MEAN, IMAGENET_STD, imagenet_classes()[1], source, train_augment="flip")


@register_dataset("imagenet")
def imagenet(root: Path | None = None) -> DatasetSplits:
    """ILSVRC2012 train (1.28M images) / val (50k) in ImageFolder layout."""
    folder = find_dir("imagenet", root, "imagenet", HOW_TO_GET_IMAGENET)
    train, test = (_files("imagenet", folder / split, HOW_TO_GET_IMAGENET) for split in ("train", "val"))
    return DatasetSplits(train, test, _info("imagenet", f"ImageNet-1K at {folder} ({len(train)} train, {len(test)} val images)"))


@register_dataset("imagenet_a")
def imagenet_a(root: Path | None = None) -> DatasetSplits:
    """ImageNet-A's 7.5k images of 200 classes, labeled in the 1000-way ImageNet-1K space.

    "train" is every ImageNet-A image: the pool D_f is drawn from. "test" is empty: ImageNet-A has no
    held-out split, and seed 000's D_test is the ImageNet-1K val set (the `imagenet` dataset).
    """
    folder = find_dir("imagenet_a", root, "imagenet-a", HOW_TO_GET_IMAGENET_A)
    train = _files("imagenet_a", folder, HOW_TO_GET_IMAGENET_A)
    return DatasetSplits(train, train.subset([]), _info("imagenet_a", f"ImageNet-A at {folder} ({len(train)} images, no test split)"))
