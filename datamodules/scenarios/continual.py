"""Continual unlearning (seed 000 §Continual unlearning, Table 3; seed 001 Table 5): forget requests arrive as a
stream of chunks of k_CL training images, and each step unlearns one chunk from the previous step's model."""

from __future__ import annotations

import torch

from datamodules.datasets import DatasetSplits
from datamodules.requests import ForgetRequest, RequestError
from datamodules.scenarios.base import UnlearningScenario


def draw_stream(data: DatasetSplits, k_cl: int = 8, steps: int = 16, seed: int = 0, relabel: bool = False) -> ForgetRequest:
    """A stream of `steps` chunks of `k_cl` distinct training images drawn uniformly at random with `seed`
    (mixed labels, in order of arrival); with `relabel`, new labels drawn among the other classes.

    The paper's stream: k_CL = 8, 16 steps reach its largest cumulative k = 128.
    """
    n, k = len(data.train), k_cl * steps
    if k_cl < 1 or steps < 1 or k >= n:
        raise RequestError(f"a continual stream of {steps} chunks of k_cl={k_cl} needs 1 ≤ k_cl · steps < {n}, the training samples of {data.info.name}")
    generator = torch.Generator().manual_seed(seed)
    forget = torch.randperm(n, generator=generator)[:k]
    new_labels = None
    if relabel:
        shift = torch.randint(1, data.info.num_classes, (k,), generator=generator)
        new_labels = tuple(((data.train.targets[forget] + shift) % data.info.num_classes).tolist())
    scenario = {"kind": "continual_stream", "k_cl": k_cl, "steps": steps, "seed": seed, "relabel": relabel}
    return ForgetRequest(data.info.name, n, tuple(forget.tolist()), new_labels=new_labels, scenario=scenario)


class ContinualStep(UnlearningScenario):
    """Step `step` (1-based) of the stream in the request file `stream`: the model has unlearned chunks 1 … t − 1
    and now unlearns chunk t.

    What D_f is at step t, our reading of the papers:

    - unlearned: the newest chunk. The paper repeats "the procedure of unlearning D_f in small fragments of size
      k_CL"; that procedure (seed 001 Algorithm 3) trains on its D_f, stops when its D_f accuracy is 0 % and makes
      the adversarial examples and weight importances from it, with the model the step starts from. Split
      `forget` (and `relabel`) is that chunk, so every method, its stop criterion and `forget/acc` see it.
    - reported: every chunk so far. Table 3 reports D_f at the cumulative k ∈ {8, 16, 64, 128}, and seed 001
      Table 5's values fit accuracies over all k images (1.04 % at k = 64 and 0.52 % at k = 128 are 2 of 192 and
      2 of 384 images over three runs; over the 8 newest images they would need 24 runs). Split `forgotten`
      (`forgotten/acc`) is that set.
    - D_r is the training set without any chunk so far. The step's request is the stream's first t chunks, so
      its hash, `retain`, Retrain's cache and the record's `num_forget` (the cumulative k) follow everything
      forgotten up to step t; its scenario says `step` and `k`.

    The dataset is the one the stream names (the `dataset` argument is ignored).
    """

    def __init__(self, stream: str, step: int = 1, **kwargs) -> None:
        """
        Args:
            stream: a stream request file (a request whose scenario has `k_cl`; `python cli.py continual` writes one).
            step: which chunk this step unlearns, 1 … number of chunks.
        """
        super().__init__(**kwargs)
        self.stream, self.step = stream, step
        self.stream_request: ForgetRequest | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.stream_request is None:
            self.stream_request = ForgetRequest.load(self.stream)
            self.dataset_name = self.stream_request.dataset
        super().setup(stage)

    def make_request(self, data: DatasetSplits) -> ForgetRequest:
        stream = self.stream_request
        if "k_cl" not in stream.scenario:
            raise RequestError(f"ContinualStep: {self.stream} is not a stream (its scenario has no k_cl, the forget indices per step)")
        chunks = stream.validate(data.info.num_classes, data.train.targets).chunks()
        if not 1 <= self.step <= len(chunks):
            raise RequestError(f"ContinualStep: step {self.step} is outside the stream's steps 1 … {len(chunks)}")
        k_cl = stream.scenario["k_cl"]
        k = self.step * k_cl
        scenario = {"kind": "continual", "k_cl": k_cl, "step": self.step, "steps": len(chunks), "k": k, "stream": stream.hash}
        new_labels = stream.new_labels[:k] if stream.new_labels is not None else None
        return ForgetRequest(stream.dataset, stream.num_train, stream.forget_indices[:k], new_labels=new_labels, corruption=stream.corruption, scenario=scenario)

    def _make_splits(self, request: ForgetRequest) -> dict:
        splits = super()._make_splits(request)
        newest = request.chunks()[-1]
        start = len(request.forget_indices) - len(newest)
        splits["forgotten"] = splits["forget"]
        splits["forget"] = self.train_set.subset(torch.tensor(newest))
        if request.new_labels is not None:
            splits["relabel"] = self.train_set.subset(torch.tensor(newest), torch.tensor(request.new_labels[start:]))
        return splits
