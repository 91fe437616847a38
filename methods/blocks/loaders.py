"""Training iterables of the methods whose epoch is not the base's combined loader: full passes one after the other
(RL, SCRUB) and a retain pass with the forget batches cycled beside it (NegGrad+). Their batches are keyed by names
that are not the scenario's splits: a method lists those to augment in `augmented_keys`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

from torch.utils.data import DataLoader


DESCENT, ASCENT = "descent", "ascent"
"""`RetainCyclingForget`'s batch keys: the D_r batch (descended) and the D_f batch (ascended) of a step. Not scenario
split names: the scenario does not augment them."""


class Passes:
    """One training epoch as full passes over loaders, one after the other (Lightning's fit refuses a sequential
    `CombinedLoader`): `passes(epoch)` names the epoch's (key, loader) pairs and batches come as `{key: (x, y)}`, one
    optimizer step each. `length` is the batches in an epoch. A loader's `DistributedSampler` is given the epoch (what
    Lightning does for the loaders it sees), so under DDP every epoch is shuffled anew."""

    def __init__(self, passes: Callable[[int], Sequence[tuple[str, Iterable]]], length: int, epoch: Callable[[], int]) -> None:
        self.passes, self.length, self.epoch = passes, length, epoch

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[dict]:
        epoch = self.epoch()
        for key, loader in self.passes(epoch):
            sampler = getattr(loader, "sampler", None)
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)
            for batch in loader:
                yield {key: batch}


class RetainCyclingForget:
    """One epoch = one pass over the D_r loader, each batch paired with the next D_f batch, the D_f loader restarted
    when exhausted (the authors' `zip(retain_loader, cycle(forget_loader))`). Batches come as `{DESCENT: (x, y), ASCENT: (x, y)}`. A restart reshuffles D_f, where `itertools.cycle` replays the first pass's batches in their
    order. Under DDP both samplers are given the epoch (what Lightning does for the loaders it sees)."""

    def __init__(self, retain: DataLoader, forget: DataLoader, epoch: Callable[[], int]) -> None:
        self.retain, self.forget, self.epoch = retain, forget, epoch

    def __len__(self) -> int:
        return len(self.retain)

    def __iter__(self) -> Iterator[dict]:
        epoch = self.epoch()
        for loader in (self.retain, self.forget):
            if hasattr(loader.sampler, "set_epoch"):
                loader.sampler.set_epoch(epoch)
        forget = iter(self.forget)
        for retain_batch in self.retain:
            forget_batch = next(forget, None)
            if forget_batch is None:
                forget = iter(self.forget)
                forget_batch = next(forget)
            yield {DESCENT: retain_batch, ASCENT: forget_batch}
