"""Fashion-MNIST with a subclass, the CPU analogue of seed 004's 7̄-MNIST (§5: the crossed sevens 7̄ inside class 7).

Sandal is removed from both splits except a fixed seeded selection of 800 training and 137 test sandals, which join
Sneaker as one class, Footwear: the sandals are the subclass. The 9 classes (fashion_sub id ← fashion_mnist id):

    0 T-shirt/top ← 0, 1 Trouser ← 1, 2 Pullover ← 2, 3 Dress ← 3, 4 Coat ← 4, 5 Shirt ← 6,
    6 Footwear ← 7 Sneaker + the selected 5 Sandal, 7 Bag ← 8, 8 Ankle boot ← 9.

The selection is the index file `indices/fashion_sub_sandals.json` (indices into the original Fashion-MNIST splits,
written once by `write_subclass_index` and committed); every load checks its sha256 and that it fits the data.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch
from torchvision.datasets import FashionMNIST

from benchmark.core.paths import atomic_write_bytes
from datamodules.datasets import DatasetInfo, DatasetNotFoundError, DatasetSplits, ImageTensorDataset, load_dataset, register_dataset

SANDAL, SNEAKER = 5, 7
"""The subclass and the class it joins, as fashion_mnist ids."""
FOOTWEAR, ANKLE_BOOT = 6, 8
"""fashion_sub ids: the class holding the subclass, and the label the mislabelled twin trains the subclass with."""
NEW_ID = torch.tensor([0, 1, 2, 3, 4, FOOTWEAR, 5, FOOTWEAR, 7, ANKLE_BOOT])
"""fashion_mnist id → fashion_sub id."""
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Shirt", "Footwear", "Bag", "Ankle boot")
INDEX_FILE = Path(__file__).parent / "indices" / "fashion_sub_sandals.json"
SUBCLASS_DATASETS = ("fashion_sub",)
"""The registered datasets with a subclass index (what `Subclass` scenarios run on)."""


class SubclassSplit(ImageTensorDataset):
    """A split whose `subclass` (positions in this split) are the subclass members; `index_sha256` names their index file."""

    def __init__(self, images: torch.Tensor, targets: torch.Tensor, subclass: torch.Tensor, index_sha256: str) -> None:
        super().__init__(images, targets)
        self.subclass, self.index_sha256 = subclass, index_sha256


def index_sha256(train: Sequence[int], test: Sequence[int]) -> str:
    """SHA-256 of the canonical JSON (sorted keys, no spaces) of `{"train": [...], "test": [...]}`."""
    canonical = json.dumps({"test": list(test), "train": list(train)}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def select_sandals(train_targets: torch.Tensor, test_targets: torch.Tensor, train: int = 800, test: int = 137,
                   seed: int = 0) -> tuple[list[int], list[int]]:
    """`train` / `test` sandals drawn with one `torch.randperm` generator seeded `seed` (train first), as sorted indices."""
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for targets, count in ((train_targets, train), (test_targets, test)):
        sandals = (targets == SANDAL).nonzero().flatten()
        if count > len(sandals):
            raise ValueError(f"asked for {count} sandals of the {len(sandals)} in a split")
        chosen.append(sandals[torch.randperm(len(sandals), generator=generator)[:count]].sort().values.tolist())
    return chosen[0], chosen[1]


def write_subclass_index(path: str | Path = INDEX_FILE, root: str | Path | None = None, train: int = 800, test: int = 137,
                         seed: int = 0) -> Path:
    """Select the subclass from Fashion-MNIST (at `root`, or fashion_mnist's usual places) and write its index file."""
    original = load_dataset("fashion_mnist", root)
    train_indices, test_indices = select_sandals(original.train.targets, original.test.targets, train, test, seed)
    record = {"dataset": "fashion_mnist", "subclass": "Sandal", "label": SANDAL, "joins": "Sneaker", "seed": seed,
              "selection": "torch.randperm over each split's sandals, one generator, train then test; sorted",
              "num_train": len(original.train), "num_test": len(original.test),
              "sha256": index_sha256(train_indices, test_indices), "train": train_indices, "test": test_indices}
    text = "{\n" + ",\n".join(f" {json.dumps(key)}: {json.dumps(value)}" for key, value in record.items()) + "\n}\n"
    path = Path(path)
    atomic_write_bytes(path, text.encode())
    return path


def read_subclass_index(path: str | Path = INDEX_FILE) -> dict:
    """The index file's content, after checking its sha256 against its index lists."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
        train, test, claimed = record["train"], record["test"], record["sha256"]
    except FileNotFoundError:
        raise DatasetNotFoundError(f"fashion_sub: subclass index {path} is missing; it is committed with the repository "
                                   "(git checkout it) or is written by fashion_sub.write_subclass_index()") from None
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise DatasetNotFoundError(f"fashion_sub: subclass index {path} is not an index file ({type(error).__name__}: {error})") from None
    actual = index_sha256(train, test)
    if claimed != actual:
        raise DatasetNotFoundError(f"fashion_sub: subclass index {path}: sha256 {claimed} does not match its index lists ({actual}); "
                                   "the file was edited or damaged")
    return record


def _with_subclass(split: ImageTensorDataset, members: list[int], sha256: str, name: str, path: Path) -> SubclassSplit:
    index = torch.tensor(members, dtype=torch.long)
    outside = index[(index < 0) | (index >= len(split))]
    if len(outside):
        raise DatasetNotFoundError(f"fashion_sub: subclass index {path} names {name} image {int(outside[0])}, outside the {len(split)} there")
    if (index.diff() <= 0).any():
        raise DatasetNotFoundError(f"fashion_sub: subclass index {path}: its {name} indices must be sorted and distinct")
    labels = split.targets[index]
    if (labels != SANDAL).any():
        wrong = int(index[labels != SANDAL][0])
        raise DatasetNotFoundError(f"fashion_sub: subclass index {path} names {name} image {wrong}, "
                                   f"a {FashionMNIST.classes[split.targets[wrong]]}, not a Sandal")
    keep = split.targets != SANDAL
    keep[index] = True
    kept = keep.nonzero().flatten()
    return SubclassSplit(split.images[kept], NEW_ID[split.targets[kept]], torch.searchsorted(kept, index), sha256)


@register_dataset("fashion_sub")
def fashion_sub(root: Path | None = None) -> DatasetSplits:
    original = load_dataset("fashion_mnist", root)
    path = INDEX_FILE
    index = read_subclass_index(path)
    sizes = (len(original.train), len(original.test))
    if sizes != (index["num_train"], index["num_test"]):
        raise DatasetNotFoundError(f"fashion_sub: subclass index {path} is for Fashion-MNIST splits of {index['num_train']} / {index['num_test']} "
                                   f"images, the data found has {sizes[0]} / {sizes[1]} ({original.info.source})")
    train = _with_subclass(original.train, index["train"], index["sha256"], "train", path)
    test = _with_subclass(original.test, index["test"], index["sha256"], "test", path)
    info = DatasetInfo(
        name="fashion_sub",
        num_classes=len(CLASS_NAMES),
        channels=1,
        image_size=28,
        mean=(0.3002,),  # (of fashion_sub's own training split, as fashion_mnist's are of its)
        std=(0.3572,),
        class_names=CLASS_NAMES,
        source=f"{original.info.source}; {len(index['train'])} / {len(index['test'])} sandals of subclass index {path.name} "
               f"(sha256 {index['sha256'][:12]})",
    )
    return DatasetSplits(train, test, info)


def subclass_indices(data: DatasetSplits, split: Literal["train", "test"]) -> torch.Tensor:
    """Positions of the subclass members in `data`'s own `split` (sorted)."""
    part = data.train if split == "train" else data.test
    if not isinstance(part, SubclassSplit):
        raise DatasetNotFoundError(f"{data.info.name} has no subclass index; datasets with one: {', '.join(SUBCLASS_DATASETS)}")
    return part.subclass.clone()
