"""Dataset registry: `name → (train, test, info)`; each dataset is one small file in this package."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from benchmark.core.errors import UnlearnBenchError
from benchmark.core.paths import home
from benchmark.core.registry import Registry


def default_root() -> Path:
    """Where datasets are looked for when no root is given: `$UNLEARNBENCH_HOME/data` (torchvision's root layout)."""
    return home() / "data"


class DatasetNotFoundError(UnlearnBenchError):
    """The files of a dataset are missing or malformed; the message says how to obtain them."""


@dataclass(frozen=True)
class DatasetInfo:
    """Facts a model and a report need about a dataset."""

    name: str
    num_classes: int
    channels: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...]
    source: str
    train_augment: str | None = None
    """Name of a batch augmentation in `datamodules.datasets.augment` applied to training batches."""


class ImageTensorDataset(Dataset):
    """Images held in memory as one tensor (uint8 → /255, float as given), labels as a long tensor.

    `__getitems__` returns a whole batch at once, so a DataLoader with `collate_fn=collate_batch`
    does one indexing operation per batch instead of one decode per sample.
    """

    in_memory = True

    def __init__(self, images: torch.Tensor, targets: torch.Tensor) -> None:
        if images.ndim != 4 or len(images) != len(targets):
            raise ValueError(f"expected images [N, C, H, W] and N targets, got {tuple(images.shape)} and {len(targets)}")
        self.images = images
        self.targets = targets.long()

    def __len__(self) -> int:
        return len(self.targets)

    def _pixels(self, images: torch.Tensor) -> torch.Tensor:
        return images.float().div_(255) if images.dtype == torch.uint8 else images.float()

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self._pixels(self.images[index]), self.targets[index]

    def __getitems__(self, indices: Sequence[int]) -> list[torch.Tensor]:
        index = torch.as_tensor(indices, dtype=torch.long)  # on the host: the sampler's indices, checked without a device sync
        if len(index) and int(index[-1]) - int(index[0]) == len(index) - 1 and bool((index.diff() == 1).all()):
            index = slice(int(index[0]), int(index[-1]) + 1)  # a contiguous run (evaluation): a view, no copy
        return [self._pixels(self.images[index]), self.targets[index]]

    def subset(self, indices: Sequence[int] | torch.Tensor, targets: torch.Tensor | None = None) -> ImageTensorDataset:
        """The samples at `indices`, optionally with other labels (relabeling, training-time corruption)."""
        index = torch.as_tensor(indices, dtype=torch.long, device=self.images.device)
        labels = self.targets[index] if targets is None else torch.as_tensor(targets, device=self.images.device)
        return ImageTensorDataset(self.images[index], labels)

    def to(self, device: torch.device | str) -> ImageTensorDataset:
        """This dataset with its images (in their stored dtype: uint8 stays uint8) and labels on `device`, so that a
        loader's batches are indexed there, with no host copy per batch (issue 21); itself when they are there already."""
        device = torch.device(device)
        if self.images.device == device and self.targets.device == device:
            return self
        return ImageTensorDataset(self.images.to(device), self.targets.to(device))


def collate_batch(batch: list[torch.Tensor]) -> list[torch.Tensor]:
    """The batch is already stacked by `__getitems__`."""
    return batch


ImageTensorDataset.collate_fn = staticmethod(collate_batch)


@dataclass(frozen=True)
class DatasetSplits:
    """A dataset's train and test splits (in memory, or streamed from disk) and its facts.

    A split has `targets` (long tensor), `__len__`, `__getitem__ → (x, y)` and `subset(indices, targets=None)`.
    """

    train: Dataset
    test: Dataset
    info: DatasetInfo


DATASETS: Registry[Callable[[Path | None], DatasetSplits]] = Registry("dataset")
register_dataset = DATASETS.register


def load_dataset(name: str, root: str | Path | None = None) -> DatasetSplits:
    """Load a registered dataset; `root` overrides where its files are looked for."""
    return DATASETS.get(name)(Path(root) if root is not None else None)


def list_datasets(pattern: str = "*") -> list[str]:
    return DATASETS.names(pattern)


from datamodules.datasets import cifar, digits, fashion_mnist, fashion_sub, imagenet, mnist, svhn, tiny_imagenet, utkface, vggface2  # noqa: E402,F401  (registration)
