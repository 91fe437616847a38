"""The scenario base class: a LightningDataModule built from one dataset and one forget request."""

from __future__ import annotations

import weakref
from abc import abstractmethod
from pathlib import Path

import lightning.pytorch as pl
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from benchmark.core.errors import DataAccessError, UnlearnBenchError
from benchmark.core.paths import home
from datamodules.access import DataAccess, DataView, seeded_subset
from datamodules.datasets import DatasetInfo, DatasetSplits, load_dataset
from datamodules.datasets.augment import AUGMENTATIONS
from datamodules.requests import ForgetRequest, RequestError


class ShardSampler(Sampler[int]):
    """Every index exactly once over all processes (rank r takes r, r + W, …): no padding duplicates."""

    def __init__(self, length: int, num_replicas: int, rank: int) -> None:
        self.indices = list(range(rank, length, num_replicas))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class WithIndices(Dataset):
    """Adds each sample's index to it, so per-sample results gathered from processes can be put in order."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.in_memory = getattr(dataset, "in_memory", False)
        self.collate_fn = getattr(dataset, "collate_fn", None)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        return (*self.dataset[index], index)

    def __getitems__(self, indices):
        if hasattr(self.dataset, "__getitems__"):
            x, *rest = self.dataset.__getitems__(indices)
            return [x, *rest, torch.as_tensor(indices, dtype=torch.long, device=x.device)]
        return [self[i] for i in indices]


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


class UnlearningScenario(pl.LightningDataModule):
    """A dataset, a forget request, and the named splits derived from them.

    Splits: `forget`, `retain`, `test`; `relabel` when the request has new labels; `test_forget` /
    `test_retain` (test samples of the forgotten / other classes) for class scenarios. Training
    labels are those the original model was trained on (the request's corruption applied); the test
    set is never corrupted. A method only receives the splits its declared `DataAccess` allows.
    The request is written to `request_dir` (default `$UNLEARNBENCH_HOME/requests/<dataset>`), named by its hash.
    """

    def __init__(
        self,
        dataset: str = "digits",
        data_root: str | None = None,
        eval_batch_size: int = 512,
        num_workers: int = 4,
        request_dir: str | None = None,
        resident: bool = True,
    ) -> None:
        """
        Args:
            dataset: registered dataset name (`python cli.py datasets` lists them).
            data_root: where the dataset's files are; default: the dataset's usual places.
            eval_batch_size: batch size for evaluation.
            num_workers: loader worker processes for datasets streamed from disk (in-memory ones use none).
            request_dir: where the forget request file is written.
            resident: keep in-memory datasets on the trainer's device (moved once when a fit or test starts), so
                batches are indexed there instead of copied from the host one by one (issue 21); on the CPU it
                changes nothing. False for datasets larger than the device's memory.
        """
        super().__init__()
        self.dataset_name, self.data_root = dataset, data_root
        self.eval_batch_size, self.num_workers = eval_batch_size, num_workers
        self.request_dir, self.resident = request_dir, resident
        self.device = torch.device("cpu")
        self._on_device: weakref.WeakKeyDictionary[Dataset, Dataset] = weakref.WeakKeyDictionary()
        self.data: DatasetSplits | None = None
        self.request: ForgetRequest | None = None
        self.request_path: Path | None = None
        self.splits: dict[str, Dataset] = {}
        self.train_set: Dataset | None = None

    def loading(self) -> dict:
        """How this scenario loads and places its data (not what it forgets): the arguments another scenario built from
        it takes over, e.g. the original's pretraining on the whole training set."""
        return {"eval_batch_size": self.eval_batch_size, "num_workers": self.num_workers, "request_dir": self.request_dir,
                "resident": self.resident}

    @abstractmethod
    def make_request(self, data: DatasetSplits) -> ForgetRequest:
        """The forget request of this scenario on `data` (deterministic given the scenario's arguments)."""

    def setup(self, stage: str | None = None) -> None:
        if stage is not None and self.trainer is not None and self.resident:
            self.device = self.trainer.strategy.root_device
        if self.request is not None:
            return
        if self.data is None:
            self.data = load_dataset(self.dataset_name, self.data_root)
        request = self.make_request(self.data).validate(self.info.num_classes, self.data.train.targets)
        if request.dataset != self.dataset_name or request.num_train != len(self.data.train):
            raise RequestError(
                f"the request is for {request.dataset} with {request.num_train} training samples, "
                f"but the scenario's dataset {self.dataset_name} has {len(self.data.train)}"
            )
        self.request = request
        self.train_set = self._as_trained(self.data.train, request)
        folder = Path(self.request_dir) if self.request_dir else home() / "requests" / self.dataset_name
        self.request_path = request.save(folder / f"{request.hash[:16]}.json")
        self.splits = self._make_splits(request)

    @property
    def info(self) -> DatasetInfo:
        if self.data is None:
            self.setup()
        return self.data.info

    @staticmethod
    def _as_trained(train: Dataset, request: ForgetRequest) -> Dataset:
        targets = train.targets.clone()
        if request.corruption.indices:
            targets[list(request.corruption.indices)] = torch.tensor(request.corruption.labels)
        return train.subset(torch.arange(len(train)), targets)

    def _make_splits(self, request: ForgetRequest) -> dict[str, Dataset]:
        train, test = self.train_set, self.data.test
        forget = torch.tensor(request.forget_indices, dtype=torch.long)
        keep = torch.ones(len(train), dtype=torch.bool)
        keep[forget] = False
        splits: dict[str, Dataset] = {
            "forget": train.subset(forget),
            "retain": train.subset(keep.nonzero().flatten()),
            "test": test,
        }
        if request.new_labels is not None:
            splits["relabel"] = train.subset(forget, torch.tensor(request.new_labels))
        if request.classes is not None:
            in_classes = torch.isin(test.targets, torch.tensor(request.classes))
            splits["test_forget"] = test.subset(in_classes.nonzero().flatten())
            splits["test_retain"] = test.subset((~in_classes).nonzero().flatten())
        return splits

    def retain_indices(self) -> torch.Tensor:
        """Training indices of the retain set, in the order of the `retain` split."""
        keep = torch.ones(len(self.train_set), dtype=torch.bool)
        keep[list(self.request.forget_indices)] = False
        return keep.nonzero().flatten()

    # ---- what a method sees ----
    def view(self, owner: str, access: DataAccess, retain_subset_size: int | None = None) -> DataView:
        """The splits `access` allows; `retain` is a seeded random subset when the access says so."""
        self.setup()
        allowed = {name: self.splits[name] for name in access.splits("relabel" in self.splits)}
        if access.retain == "request":
            if self.request.retain_subset is None:
                raise DataAccessError(f"{owner} trains on the retain subset the request names (seed 002's D_r_sub) and request "
                                      f"{self.request.hash[:16]} names none: "
                                      + ("give the scenario one (WholeClasses retain_per_class=N)" if self.request.classes is not None
                                         else "only class scenarios name one (WholeClasses retain_per_class=N)"))
            allowed["retain"] = self.train_set.subset(torch.tensor(self.request.retain_subset))
        if access.retain == "subset":
            retain = self.splits["retain"]
            allowed["retain"] = seeded_subset(retain, retain_subset_size or len(retain), self.request.hash)
        return DataView(owner, access, allowed, self.request.classes, self.info, self.request.hash, self.make_train_loader,
                        self.request.training_set_hash)

    def make_train_loader(self, dataset: Dataset, batch_size: int, shuffle: bool = True) -> DataLoader:
        """A training loader over `dataset`; `batch_size` is the global batch: each of the world's processes takes its
        share of every batch (DDP averages their gradients), so a config means the same on any number of processes."""
        world_size, rank = _world()
        if batch_size % world_size:
            raise UnlearnBenchError(f"batch size {batch_size} is the batch of all {world_size} processes together: give a multiple of {world_size}")
        sampler = DistributedSampler(dataset, world_size, rank, shuffle=shuffle) if world_size > 1 else None
        dataset = self.resident_copy(dataset)
        return DataLoader(dataset, batch_size=batch_size // world_size, shuffle=shuffle and sampler is None, sampler=sampler, **self._loader_options(dataset))

    def eval_loader(self, name: str, shard: bool = True) -> DataLoader:
        """All samples of split `name` as `(x, y, index in split)`, each exactly once over all processes
        (`shard=False`: every process gets the whole split, for measures computed by each process alone)."""
        dataset = WithIndices(self.resident_copy(self.splits[name]))
        world_size, rank = _world() if shard else (1, 0)
        return DataLoader(dataset, batch_size=self.eval_batch_size, sampler=ShardSampler(len(dataset), world_size, rank), **self._loader_options(dataset))

    def resident_copy(self, dataset: Dataset) -> Dataset:
        """`dataset` on the scenario's device (the trainer's, once a fit or test set it up) when it is held in memory,
        moved once and kept; itself otherwise (streamed from disk, on the CPU, or `resident=False`)."""
        if not getattr(dataset, "in_memory", False) or not hasattr(dataset, "to") or self.device.type == "cpu":
            return dataset
        moved = self._on_device.get(dataset)
        if moved is None or moved.images.device != self.device:
            moved = self._on_device[dataset] = dataset.to(self.device)
        return moved

    def _loader_options(self, dataset: Dataset) -> dict:
        in_memory = getattr(dataset, "in_memory", False)
        workers = 0 if in_memory else self.num_workers
        return {"collate_fn": getattr(dataset, "collate_fn", None), "num_workers": workers, "persistent_workers": workers > 0}

    @property
    def eval_split_names(self) -> list[str]:
        self.setup()
        return [name for name, split in self.splits.items() if len(split) > 0]

    # ---- Lightning hooks ----
    def train_dataloader(self):
        """What the module trains on is its own (`LightningModule.train_dataloader`: a method's loader over the data
        view the pipeline gave it); the scenario supplies the evaluation loaders and the training augmentation."""
        return self.trainer.lightning_module.train_dataloader()

    def test_dataloader(self) -> list[DataLoader]:
        return [self.eval_loader(name) for name in self.eval_split_names]

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """Apply the dataset's training augmentation (or the training module's own `train_augment`, e.g. a
        pretraining recipe's), on the device, to training batches keyed by the scenario's splits or by a key the module
        lists in `augmented_keys` (its own iterable of the splits' images); never to data a method generated itself,
        such as adversarial examples."""
        module = self.trainer.lightning_module if self.trainer is not None else None
        name = getattr(module, "train_augment", None) or self.info.train_augment
        if name is None or self.trainer is None or not self.trainer.training:
            return batch
        augment, keys = AUGMENTATIONS.get(name), {*self.splits, *getattr(module, "augmented_keys", ())}
        return {key: [augment(x), *rest] if key in keys else [x, *rest] for key, (x, *rest) in batch.items()}
