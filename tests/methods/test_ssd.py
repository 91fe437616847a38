"""SSD and LFSSD (Foster et al.'s Selective Synaptic Dampening and its label-free variant): the importances against a
direct mini-batch loop, the selection and the dampening factor entry by entry, LFSSD's blindness to labels, and the
declared access."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from benchmark.experiment.runner import run
from benchmark.metrics.evaluator import Evaluation
from benchmark.models.pretraining import Pretrained
from datamodules.access import FORGET_AND_RETAIN, DataView
from datamodules.datasets import ImageTensorDataset
from datamodules.scenarios import RandomInstances, WholeClasses
from methods.ssd import LFSSD, SSD, synaptic_importance
from tests.methods import fixtures

BATCH = 5
N_FORGET, N_RETAIN = 12, 28


def splits(labels: torch.Tensor | None = None) -> tuple[ImageTensorDataset, ImageTensorDataset]:
    """D_f (its images shifted, all of class 0) and D_r; `labels` replaces every label (forget rows first)."""
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(N_FORGET + N_RETAIN, 1, 2, 2, generator=generator)
    images[:N_FORGET] += 1.0
    targets = torch.cat([torch.zeros(N_FORGET, dtype=torch.long), torch.randint(0, 3, (N_RETAIN,), generator=generator)])
    targets = targets if labels is None else labels
    return ImageTensorDataset(images[:N_FORGET], targets[:N_FORGET]), ImageTensorDataset(images[N_FORGET:], targets[N_FORGET:])


def view(labels: torch.Tensor | None = None) -> DataView:
    forget, retain = splits(labels)
    return DataView("SSD", FORGET_AND_RETAIN, {"forget": forget, "retain": retain}, None, SimpleNamespace(num_classes=3), "0" * 64,
                    lambda dataset, batch_size, shuffle: DataLoader(dataset, batch_size, shuffle=shuffle))


def direct_importance(model: nn.Module, x: torch.Tensor, y: torch.Tensor, label_free: bool) -> dict[str, torch.Tensor]:
    """Mean over batches of BATCH rows, in order, of (∇ mean CE)² (SSD) or |∇ mean ‖f(x)‖²| (LFSSD), by `.backward()`."""
    model.eval()
    total = {name: torch.zeros_like(p) for name, p in model.named_parameters()}
    batches = list(zip(x.split(BATCH), y.split(BATCH)))
    for xb, yb in batches:
        model.zero_grad()
        out = model(xb)
        (torch.norm(out, p="fro", dim=1).pow(2).mean() if label_free else F.cross_entropy(out, yb)).backward()
        for name, p in model.named_parameters():
            total[name] += p.grad.abs() if label_free else p.grad.pow(2)
    model.zero_grad(set_to_none=True)
    return {name: t / len(batches) for name, t in total.items()}


def dampened(cls: type[SSD], data: DataView, **kwargs) -> SSD:
    method = cls(budget={"batch_size": BATCH}, **kwargs)
    method.model = fixtures.tiny()
    method.prepare(data)
    return method


@pytest.mark.parametrize("cls", [SSD, LFSSD])
@pytest.mark.parametrize(("alpha", "dampening"), [(1.0, 1.0), (0.5, 2.0)])
def test_only_entries_with_a_larger_forget_importance_are_dampened_each_by_its_factor(cls, alpha, dampening):
    """θ ← θ · min(1, λ I_D / I_f) where I_f > α I_D, I_f on D_f and I_D on D_r then D_f (one unshuffled loader); every
    other entry bit-identical. (0.5, 2.0): some chosen entries have λ I_D / I_f ≥ 1 and stay as they are."""
    forget, retain = splits()
    x, y = torch.cat([retain.images, forget.images]), torch.cat([retain.targets, forget.targets])
    label_free = cls is LFSSD
    before = fixtures.tiny()
    i_f = direct_importance(before, forget.images, forget.targets, label_free)
    i_d = direct_importance(before, x, y, label_free)
    method = dampened(cls, view(), alpha=alpha, dampening=dampening)
    chosen = {name: i_f[name] > alpha * i_d[name] for name in i_f}
    count = sum(int(c.sum()) for c in chosen.values())
    assert 0 < count < sum(p.numel() for p in before.parameters()) and method.cost["cost/dampened"] == count
    clamped = 0
    for (name, p0), p in zip(before.named_parameters(), method.model.parameters()):
        keep = ~chosen[name]
        assert torch.equal(p[keep], p0[keep]), name
        factor = (dampening * i_d[name] / i_f[name])[chosen[name]]
        torch.testing.assert_close(p[chosen[name]], p0[chosen[name]] * factor.clamp(max=1.0), rtol=1e-9, atol=0, msg=name)
        clamped += int((factor >= 1).sum())
    assert (clamped > 0) == (dampening > alpha)  # λ ≤ α: every chosen factor is < 1


def test_the_importance_leaves_the_model_as_it_was():
    model = fixtures.tiny().train()
    model[2].eval()
    state = {name: t.clone() for name, t in model.state_dict().items()}
    forget, _ = splits()
    synaptic_importance(model, DataLoader(forget, batch_size=BATCH, collate_fn=forget.collate_fn))
    assert model.training and not model[2].training and all(p.grad is None for p in model.parameters())
    assert all(torch.equal(state[name], t) for name, t in model.state_dict().items())


def test_lfssd_never_reads_the_labels():
    """Other labels, even labels no class has (cross-entropy would refuse them), give LFSSD the same weights bit for bit;
    SSD's change with them."""
    generator = torch.Generator().manual_seed(5)
    permuted = torch.randint(0, 3, (N_FORGET + N_RETAIN,), generator=generator)
    weights = lambda method: [p.detach().clone() for p in method.model.parameters()]  # noqa: E731
    method = dampened(LFSSD, view(), alpha=1.0)
    plain = weights(method)
    assert method.cost["cost/dampened"] > 0
    for labels in (permuted, torch.full((N_FORGET + N_RETAIN,), 99)):
        assert all(torch.equal(a, b) for a, b in zip(plain, weights(dampened(LFSSD, view(labels), alpha=1.0))))
    assert not all(torch.equal(a, b) for a, b in zip(weights(dampened(SSD, view(), alpha=1.0)), weights(dampened(SSD, view(permuted), alpha=1.0))))
    with pytest.raises(IndexError):
        dampened(SSD, view(torch.full((N_FORGET + N_RETAIN,), 99)))


@pytest.mark.parametrize("cls", [SSD, LFSSD])
def test_the_access_is_the_forget_set_and_the_full_retain_set(cls):
    method = fixtures.attached(cls(), WholeClasses(classes=[9]))
    assert method.data_access == FORGET_AND_RETAIN
    fixtures.assert_reads_only(method, ("forget", "retain"))


def test_one_shot_on_digits_dampens_and_test_reads_the_result(tmp_path):
    """20 random digits forgotten with the paper's α = 10, λ = 1: no epoch, weights dampened only (never grown)."""
    method = SSD()
    record = run(method, RandomInstances(k=20, seed=3), Pretrained(), results_dir=str(tmp_path), progress=False, evaluation=Evaluation(mia=False))
    assert record["timings"]["cost/epochs"] == 0 and record["timings"]["cost/dampened"] > 0
    changed = [(p != q) for p, q in zip(method.model.parameters(), method.original.parameters())]
    assert any(c.any() for c in changed)
    assert all(((p.abs() <= q.abs()) | ~c).all() for p, q, c in zip(method.model.parameters(), method.original.parameters(), changed))
    assert record["metrics"]["forget/acc"] < 1.0
