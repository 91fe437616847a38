"""Forget requests: which training samples to forget, as a JSON file carrying a content hash.

Every method in a comparison reads the same file, so they all get the identical request. A request
may also carry new labels for the forgotten samples (relabeling / correction) and a training-time
corruption: samples the original model was trained on with wrong labels (e.g. mislabeled data).
A request whose `scenario` has `k_cl` is a stream (continual unlearning, seed 000 Table 3): its forget
indices arrive in consecutive chunks of `k_cl`, one unlearning step each (`ForgetRequest.chunks`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmark.core.errors import UnlearnBenchError
from benchmark.core.paths import atomic_write_bytes

FORMAT_VERSION = 1


class RequestError(UnlearnBenchError):
    """A forget request that cannot be used as it is."""


@dataclass(frozen=True)
class TrainingCorruption:
    """Training samples whose labels were wrong when the original model was trained."""

    indices: tuple[int, ...] = ()
    labels: tuple[int, ...] = ()


@dataclass(frozen=True)
class ForgetRequest:
    """The training indices to forget, and what the request is about.

    `new_labels[i]` is the label `forget_indices[i]` should get (relabeling); `classes` names the
    forgotten classes of a class scenario; `retain_subset` names training indices of the retain set that
    methods with that access may train on (seed 002's D_r_sub: n seeded images per retain class, the same
    for every method reading the request); `scenario` records how the request was made.
    """

    dataset: str
    num_train: int
    forget_indices: tuple[int, ...]
    new_labels: tuple[int, ...] | None = None
    classes: tuple[int, ...] | None = None
    corruption: TrainingCorruption = field(default_factory=TrainingCorruption)
    scenario: dict = field(default_factory=dict)
    retain_subset: tuple[int, ...] | None = None

    def content(self) -> dict:
        data = asdict(self)
        if data["retain_subset"] is None:
            del data["retain_subset"]  # (requests without one keep the hash they had before the field existed)
        data["format_version"] = FORMAT_VERSION
        return data

    @property
    def hash(self) -> str:
        return content_hash(self.content())

    @property
    def corruption_hash(self) -> str:
        """Identifies the training set the original model saw (the part of the request it depends on)."""
        return content_hash({"dataset": self.dataset, "corruption": asdict(self.corruption)})

    @property
    def training_set_hash(self) -> str:
        """Identifies the retain set: what Retrain trains on (the original's: the empty request's). Requests that
        forget the same samples share it whatever they ask of them, e.g. a relabeling request and the plain one."""
        return content_hash({"dataset": self.dataset, "num_train": self.num_train, "forget_indices": sorted(self.forget_indices),
                             "corruption": asdict(self.corruption)})

    @property
    def original_training_set_hash(self) -> str:
        """The `training_set_hash` of the original model's training set: this request's data, corrupted as it says,
        with nothing forgotten (what `NothingForgotten` of the same dataset and corruption requests)."""
        return ForgetRequest(self.dataset, self.num_train, (), corruption=self.corruption).training_set_hash

    def chunks(self) -> list[tuple[int, ...]]:
        """The stream's requests in order of arrival: consecutive runs of `scenario["k_cl"]` forget indices
        (the whole request as one chunk when it is not a stream)."""
        k_cl = self.scenario.get("k_cl")
        if k_cl is None:
            return [self.forget_indices]
        return [self.forget_indices[start : start + k_cl] for start in range(0, len(self.forget_indices), k_cl)]

    def validate(self, num_classes: int, train_labels: Sequence[int] | None = None) -> ForgetRequest:
        """Raise `RequestError` naming the first problem; return self when the request is usable.

        `train_labels` (the dataset's training labels, before the request's corruption) enables the check
        that every new label differs from the label its sample was trained with: relabeling to the same
        label asks for nothing.
        """
        where = f"request for {self.dataset}"
        indices = self.forget_indices
        if not indices and not self.scenario.get("allow_empty"):
            raise RequestError(f"{where}: forget_indices is empty")
        bad = [i for i in indices if not 0 <= i < self.num_train]
        if bad:
            raise RequestError(f"{where}: forget index {bad[0]} is out of range [0, {self.num_train})")
        if "k_cl" in self.scenario:
            _check_stream(where, self)
        if len(set(indices)) != len(indices):
            dup = next(i for i in indices if indices.count(i) > 1)
            raise RequestError(f"{where}: forget index {dup} appears more than once")
        if self.new_labels is not None:
            if len(self.new_labels) != len(indices):
                raise RequestError(f"{where}: {len(self.new_labels)} new_labels for {len(indices)} forget_indices")
            _check_labels(where, "new_labels", self.new_labels, num_classes)
        c = self.corruption
        if len(c.indices) != len(c.labels):
            raise RequestError(f"{where}: corruption has {len(c.indices)} indices but {len(c.labels)} labels")
        if any(not 0 <= i < self.num_train for i in c.indices) or len(set(c.indices)) != len(c.indices):
            raise RequestError(f"{where}: corruption indices must be distinct and in [0, {self.num_train})")
        _check_labels(where, "corruption labels", c.labels, num_classes)
        if self.classes is not None:
            _check_labels(where, "classes", self.classes, num_classes)
        if self.retain_subset is not None:
            _check_retain_subset(where, self, train_labels)
        if self.new_labels is not None and train_labels is not None:
            trained = dict(zip(c.indices, c.labels))
            same = [(i, y) for i, y in zip(indices, self.new_labels) if y == trained.get(i, int(train_labels[i]))]
            if same:
                raise RequestError(f"{where}: new label {same[0][1]} of forget index {same[0][0]} is the label it was trained with; a relabel target must differ")
        return self

    def save(self, path: str | Path) -> Path:
        record = {**self.content(), "hash": self.hash}
        path = Path(path)
        atomic_write_bytes(path, json.dumps(record, indent=1).encode())
        return path

    @classmethod
    def load(cls, path: str | Path, check_hash: bool = True) -> ForgetRequest:
        """Read a request file; with `check_hash`, its stored hash must match its content."""
        path = Path(path)
        try:
            record = json.loads(path.read_text())
        except FileNotFoundError:
            raise RequestError(f"request file {path} does not exist") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise RequestError(f"request file {path} is not valid JSON ({error})") from None
        if not isinstance(record, dict):
            raise RequestError(f"request file {path} must hold a JSON object")
        claimed = record.pop("hash", None)
        if record.pop("format_version", FORMAT_VERSION) != FORMAT_VERSION:
            raise RequestError(f"request file {path}: format_version must be {FORMAT_VERSION}")
        try:
            record["corruption"] = TrainingCorruption(**{k: tuple(v) for k, v in record.get("corruption", {}).items()})
            for key in ("forget_indices", "new_labels", "classes", "retain_subset"):
                if record.get(key) is not None:
                    record[key] = tuple(record[key])
            request = cls(**record)
        except TypeError as error:
            raise RequestError(f"request file {path}: {error}") from None
        if check_hash and claimed is None:
            raise RequestError(f"request file {path} has no hash; run `python cli.py request {path}` to validate and stamp it")
        if check_hash and claimed != request.hash:
            raise RequestError(f"request file {path}: hash {claimed} does not match its content ({request.hash}); the file was edited or damaged")
        return request


def _check_labels(where: str, what: str, labels, num_classes: int) -> None:
    bad = [y for y in labels if not 0 <= y < num_classes]
    if bad:
        raise RequestError(f"{where}: {what} contains {bad[0]}, outside [0, {num_classes})")


def _check_retain_subset(where: str, request: ForgetRequest, train_labels: Sequence[int] | None) -> None:
    subset = request.retain_subset
    if not subset:
        raise RequestError(f"{where}: retain_subset is empty")
    if len(set(subset)) != len(subset) or any(not 0 <= i < request.num_train for i in subset):
        raise RequestError(f"{where}: retain_subset indices must be distinct and in [0, {request.num_train})")
    forgotten = set(subset) & set(request.forget_indices)
    if forgotten:
        raise RequestError(f"{where}: retain_subset holds forget index {min(forgotten)}; a retain subset holds retain samples only")
    if request.classes is not None and train_labels is not None:
        trained = dict(zip(request.corruption.indices, request.corruption.labels))
        inside = [i for i in subset if trained.get(i, int(train_labels[i])) in request.classes]
        if inside:
            raise RequestError(f"{where}: retain_subset holds index {inside[0]} of a forgotten class; a retain subset holds retain classes only")


def _check_stream(where: str, request: ForgetRequest) -> None:
    k_cl = request.scenario["k_cl"]
    if not isinstance(k_cl, int) or isinstance(k_cl, bool) or k_cl < 1:
        raise RequestError(f"{where}: k_cl (forget indices per continual chunk) must be a positive integer, got {k_cl!r}")
    if len(request.forget_indices) % k_cl:
        raise RequestError(f"{where}: {len(request.forget_indices)} forget indices are not a whole number of continual chunks of k_cl={k_cl}")
    first_chunk: dict[int, int] = {}
    for number, chunk in enumerate(request.chunks(), start=1):
        for i in chunk:
            if first_chunk.get(i, number) != number:
                raise RequestError(f"{where}: continual chunks {first_chunk[i]} and {number} overlap (forget index {i} is in both)")
            first_chunk[i] = number


def content_hash(content: dict) -> str:
    """SHA-256 of the canonical JSON of `content` (sorted keys, no spaces)."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
