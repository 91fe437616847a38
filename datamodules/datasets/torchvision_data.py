"""What the loaders of torchvision's on-disk layouts share: where to look, one-line errors, tensors.

The program never downloads: a missing or unreadable file is a `DatasetNotFoundError` whose one line
names the dataset, the path tried and how to obtain the files.
"""

from __future__ import annotations

import pickle
import struct
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from scipy.io.matlab import MatReadError

from datamodules.datasets import DatasetNotFoundError, ImageTensorDataset, default_root

READ_ERRORS = (
    OSError, EOFError, ValueError, KeyError, IndexError, TypeError, AssertionError, RuntimeError,
    NotImplementedError, pickle.UnpicklingError, struct.error, zlib.error, MatReadError,
)
"""What torchvision's readers (pickle, scipy.io.loadmat, the IDX parser) raise on a truncated or foreign file."""


def find_files(name: str, root: Path | None, files: Sequence[str], how_to_get: str) -> Path:
    """The root holding all `files` (paths relative to it): `root`, or `default_root()` when None.

    `how_to_get` may contain `{root}`, replaced by the directory tried.
    """
    found = default_root() if root is None else Path(root)
    for file in files:
        if not (found / file).is_file():
            where = found.absolute()
            raise DatasetNotFoundError(f"{name}: {where / file} not found; {how_to_get.format(root=where)}")
    return found


@contextmanager
def reading(name: str, root: Path, how_to_get: str, where: Path | None = None) -> Iterator[None]:
    """Turn any error of reading the files under `where` (default: `root`) into a one-line `DatasetNotFoundError`."""
    try:
        yield
    except READ_ERRORS as error:
        detail = " ".join(f"{type(error).__name__}: {error}".split()).rstrip(":")
        root = Path(root).absolute()
        raise DatasetNotFoundError(f"{name}: cannot read {where or root} ({detail}); {how_to_get.format(root=root)}") from None


def image_split(images: np.ndarray | torch.Tensor, targets: Sequence[int] | np.ndarray | torch.Tensor, num_classes: int, channels_last: bool = False) -> ImageTensorDataset:
    """uint8 images ([N, C, H, W], or [N, H, W, C] when `channels_last`) and labels in [0, num_classes) as an in-memory split.

    A wrong dtype, a count mismatch or a label out of range raises ValueError (inside `reading`: "cannot read").
    """
    images = torch.as_tensor(images)
    if channels_last:
        images = images.permute(0, 3, 1, 2)
    targets = torch.as_tensor(np.asarray(targets, dtype=np.int64)).reshape(-1)
    if images.dtype != torch.uint8:
        raise ValueError(f"images are {images.dtype}, expected uint8")
    if len(targets) and not (0 <= int(targets.min()) and int(targets.max()) < num_classes):
        raise ValueError(f"labels outside [0, {num_classes}): min {int(targets.min())}, max {int(targets.max())}")
    return ImageTensorDataset(images.contiguous(), targets)
