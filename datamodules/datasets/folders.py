"""Image datasets read from files on disk, and the helpers their dataset files share.

`ImageFileDataset` decodes one file per sample with a fixed evaluation-style transform (resize the
shorter side, center crop, [0, 1] floats; models normalise inside). Random training augmentation is
not done here: the scenario applies the batch augmentation named by `DatasetInfo.train_augment`
(e.g. "flip") on the device, to training batches only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import functional as TF

from datamodules.datasets import DatasetNotFoundError, ImageTensorDataset, default_root

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageFileDataset(Dataset):
    """Image files and their labels; `x` is RGB float [3, image_size, image_size] in [0, 1].

    Each image is resized so its shorter side is `resize` (default `image_size`), then center
    cropped to `image_size`: deterministic, the same for training and evaluation. The paths are
    kept in one numpy bytes array, so forked loader workers do not copy them object by object.
    """

    in_memory = False

    def __init__(self, files: Sequence[str | Path] | np.ndarray, targets: torch.Tensor | Sequence[int], image_size: int, resize: int | None = None, name: str = "images") -> None:
        self.files = np.asarray([os.fsencode(f) for f in files] if not isinstance(files, np.ndarray) else files, dtype=np.bytes_)
        self.targets = torch.as_tensor(targets, dtype=torch.long)
        if self.files.ndim != 1 or len(self.files) != len(self.targets):
            raise ValueError(f"expected as many files as targets, got {len(self.files)} and {len(self.targets)}")
        self.image_size, self.resize, self.name = image_size, resize or image_size, name

    def __len__(self) -> int:
        return len(self.targets)

    def path(self, index: int) -> Path:
        return Path(os.fsdecode(self.files[index]))

    def read(self, index: int) -> torch.Tensor:
        """The transformed image `index` as uint8 [3, image_size, image_size]."""
        path = self.path(index)
        try:
            with Image.open(path) as file:
                image = file.convert("RGB")
        except (OSError, ValueError) as error:
            raise DatasetNotFoundError(f"{self.name}: cannot read image {path} ({type(error).__name__}: {error})") from None
        if min(image.size) != self.resize:
            image = TF.resize(image, self.resize)
        if image.size != (self.image_size, self.image_size):
            image = TF.center_crop(image, self.image_size)
        return TF.pil_to_tensor(image)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.read(index).float().div_(255), self.targets[index]

    def subset(self, indices: Sequence[int] | torch.Tensor, targets: torch.Tensor | None = None) -> ImageFileDataset:
        """The samples at `indices`, optionally with other labels (the contract of `ImageTensorDataset.subset`)."""
        index = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        return ImageFileDataset(self.files[index.numpy()], self.targets[index] if targets is None else targets, self.image_size, self.resize, self.name)

    def to_memory(self, num_workers: int | None = None) -> ImageTensorDataset:
        """Decode every image once into a uint8 `ImageTensorDataset` (in parallel loader workers)."""
        if num_workers is None:
            num_workers = min(8, len(os.sched_getaffinity(0))) if len(self) > 4096 else 0
        images = torch.empty(len(self), 3, self.image_size, self.image_size, dtype=torch.uint8)
        start = 0
        try:
            for batch in DataLoader(_Uint8(self), batch_size=512, num_workers=num_workers):
                images[start : start + len(batch)] = batch
                start += len(batch)
        except DatasetNotFoundError as error:  # a worker's error arrives with its traceback: keep its last line
            raise DatasetNotFoundError(str(error).strip().splitlines()[-1].removeprefix(f"{DatasetNotFoundError.__module__}.DatasetNotFoundError: ")) from None
        return ImageTensorDataset(images, self.targets)


D = TypeVar("D", ImageFileDataset, ImageTensorDataset)


class _Uint8(Dataset):
    def __init__(self, dataset: ImageFileDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.dataset.read(index)


def not_found(name: str, path: Path, how: str) -> DatasetNotFoundError:
    return DatasetNotFoundError(f"{name}: nothing found at {path}; {how}")


def malformed(name: str, path: Path, problem: str, how: str) -> DatasetNotFoundError:
    return DatasetNotFoundError(f"{name}: unexpected layout at {path} ({problem}); {how}")


def find_dir(name: str, root: Path | None, folder: str, how: str) -> Path:
    """`<root>/<folder>`, or `root` itself when it is that folder."""
    base = Path(root) if root is not None else default_root()
    for candidate in (base / folder, base):
        if candidate.name == folder and candidate.is_dir():
            return candidate
    raise not_found(name, base / folder, how)


def image_files(folder: Path) -> list[Path]:
    """The image files directly in `folder`, sorted by name (hidden files skipped)."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file())


def subfolders(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def folder_per_class(name: str, folder: Path, classes: Mapping[str, int], how: str, inner: str = "") -> tuple[list[Path], torch.Tensor]:
    """Files `<folder>/<class>/<inner>/*` labeled `classes[<class>]`; a folder that is not a class is an error.

    Classes without a folder are allowed (a partial copy keeps the full label space).
    """
    if not folder.is_dir():
        raise not_found(name, folder, how)
    present = subfolders(folder)
    unknown = [c for c in present if c not in classes]
    if unknown:
        raise malformed(name, folder, f"{len(unknown)} folder(s) are not known classes, e.g. {unknown[0]!r}", how)
    files, targets = [], []
    for c in present:
        found = image_files(folder / c / inner) if (folder / c / inner).is_dir() else []
        files += found
        targets += [classes[c]] * len(found)
    if not files:
        raise malformed(name, folder, "no image files in the class folders", how)
    return files, torch.tensor(targets, dtype=torch.long)


def stratified_split(dataset: D, test_fraction: float = 0.2, seed: int = 0) -> tuple[D, D]:
    """A seeded train/test split keeping round(n·test_fraction) samples of each class for testing."""
    generator = torch.Generator().manual_seed(seed)
    test = []
    for c in dataset.targets.unique().tolist():
        members = (dataset.targets == c).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        test.append(members[: int(len(members) * test_fraction + 0.5)])
    is_test = torch.zeros(len(dataset), dtype=torch.bool)
    for members in test:
        is_test[members] = True
    return dataset.subset(is_test.logical_not().nonzero().flatten()), dataset.subset(is_test.nonzero().flatten())
