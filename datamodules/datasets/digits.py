"""scikit-learn's `digits` (8×8 grey images, 10 classes), embedded in the wheel: the default dataset.

It has no official split: a stratified 80/20 train/test split with seed 0 (1437 / 360 images).
"""

from pathlib import Path

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from datamodules.datasets import DatasetInfo, DatasetSplits, ImageTensorDataset, register_dataset


@register_dataset("digits")
def digits(root: Path | None = None) -> DatasetSplits:
    return _digits("digits", 8)


@register_dataset("digits28")
def digits28(root: Path | None = None) -> DatasetSplits:
    """The same images and split, resized (bilinear) to 28 × 28: a source to pretrain on for 28 × 28 datasets
    (`fashion_mnist_finetune`)."""
    return _digits("digits28", 28)


def _digits(name: str, size: int) -> DatasetSplits:
    bunch = load_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32).div_(16.0).unsqueeze(1)
    if size != images.shape[-1]:
        images = torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear", align_corners=False).clamp_(0.0, 1.0)
    targets = torch.tensor(bunch.target, dtype=torch.long)
    train_idx, test_idx = train_test_split(range(len(targets)), test_size=0.2, random_state=0, stratify=bunch.target)
    train = ImageTensorDataset(images[train_idx], targets[train_idx])
    mean, std = train.images.mean().item(), train.images.std().item()
    info = DatasetInfo(
        name=name,
        num_classes=10,
        channels=1,
        image_size=size,
        mean=(mean,),
        std=(std,),
        class_names=tuple(str(d) for d in range(10)),
        source="scikit-learn's embedded copy (sklearn.datasets.load_digits); nothing to download",
    )
    return DatasetSplits(train, ImageTensorDataset(images[test_idx], targets[test_idx]), info)
