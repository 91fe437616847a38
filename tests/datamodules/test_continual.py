"""The continual scenario: chunks of one stream file, disjoint; each step's request cumulative; bad streams refused."""

import dataclasses

import pytest
import torch

from datamodules.datasets import load_dataset
from datamodules.requests import RequestError
from datamodules.scenarios import ContinualStep
from datamodules.scenarios.continual import draw_stream


@pytest.fixture
def stream(tmp_path):
    request = draw_stream(load_dataset("digits"), k_cl=4, steps=3, seed=5, relabel=True)
    return request, str(request.save(tmp_path / "stream.json"))


def test_steps_unlearn_disjoint_chunks_and_forget_cumulatively(stream):
    request, path = stream
    chunks = request.chunks()
    assert len(chunks) == 3 and all(len(c) == 4 for c in chunks)
    assert len(set().union(*map(set, chunks))) == 12  # disjoint
    assert len(set(load_dataset("digits").train.targets[list(request.forget_indices)].tolist())) > 1  # mixed labels
    for t in (1, 2, 3):
        step = ContinualStep(stream=path, step=t)
        step.setup()
        train = step.train_set
        so_far = [i for chunk in chunks[:t] for i in chunk]
        assert list(step.request.forget_indices) == so_far
        assert (step.request.scenario["step"], step.request.scenario["k"]) == (t, 4 * t)
        assert torch.equal(step.splits["forget"].images, train.images[list(chunks[t - 1])])
        assert torch.equal(step.splits["forgotten"].images, train.images[so_far])
        assert torch.equal(step.splits["relabel"].targets, torch.tensor(request.new_labels[4 * (t - 1) : 4 * t]))
        assert (step.splits["relabel"].targets != step.splits["forget"].targets).all()
        retain = set(step.retain_indices().tolist())
        assert len(retain) == len(train) - 4 * t and retain.isdisjoint(so_far)
        assert "forgotten" in step.eval_split_names


def test_steps_of_one_stream_have_distinct_requests(stream):
    _, path = stream
    hashes = set()
    for t in (1, 2, 3):
        step = ContinualStep(stream=path, step=t)
        step.setup()
        hashes.add(step.request.hash)
    assert len(hashes) == 3


@pytest.mark.parametrize(("edit", "message"), [
    (lambda r: dataclasses.replace(r, forget_indices=(*r.forget_indices[:5], r.forget_indices[1], *r.forget_indices[6:])),
     r"continual chunks 1 and 2 overlap \(forget index \d+ is in both\)"),
    (lambda r: dataclasses.replace(r, forget_indices=r.forget_indices[:10], new_labels=r.new_labels[:10]), "10 forget indices are not a whole number of continual chunks of k_cl=4"),
    (lambda r: dataclasses.replace(r, scenario={**r.scenario, "k_cl": 0}), "k_cl .* must be a positive integer, got 0"),
    (lambda r: dataclasses.replace(r, scenario={"kind": "random_instances"}), "is not a stream"),
])
def test_bad_streams_are_refused(stream, tmp_path, edit, message):
    request, _ = stream
    path = edit(request).save(tmp_path / "bad.json")
    with pytest.raises(RequestError, match=message):
        ContinualStep(stream=str(path), step=1).setup()


def test_a_relabel_target_equal_to_the_trained_label_is_refused(stream, tmp_path):
    request, _ = stream
    labels = list(request.new_labels)
    labels[6] = int(load_dataset("digits").train.targets[request.forget_indices[6]])
    path = dataclasses.replace(request, new_labels=tuple(labels)).save(tmp_path / "same.json")
    with pytest.raises(RequestError, match=f"new label {labels[6]} of forget index {request.forget_indices[6]} is the label it was trained with"):
        ContinualStep(stream=str(path), step=1).setup()  # the whole stream is checked, not only the step's chunks


def test_step_outside_the_stream_is_refused(stream):
    with pytest.raises(RequestError, match="step 4 is outside the stream's steps 1 … 3"):
        ContinualStep(stream=stream[1], step=4).setup()
