"""IU (influence unlearning with a WoodFisher inverse, Unlearn-Sparse's Wfisher.py): per-sample gradients, the inverse-
Fisher-vector product against a direct solve and the Sherman-Morrison recursion, the authors' recursion as written,
the whole step against a direct computation, the declared access, and a run on digits."""

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
from datamodules.scenarios import RandomInstances
from methods.iu import IU, authors_ihvp, per_sample_gradients, woodfisher_ihvp
from tests.methods import fixtures

N_FORGET, N_RETAIN = 7, 20


def splits() -> tuple[ImageTensorDataset, ImageTensorDataset]:
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(N_FORGET + N_RETAIN, 1, 2, 2, generator=generator) * 4 - 2
    targets = torch.randint(0, 3, (N_FORGET + N_RETAIN,), generator=generator)
    return ImageTensorDataset(images[:N_FORGET], targets[:N_FORGET]), ImageTensorDataset(images[N_FORGET:], targets[N_FORGET:])


def view() -> DataView:
    forget, retain = splits()
    return DataView("IU", FORGET_AND_RETAIN, {"forget": forget, "retain": retain}, None, SimpleNamespace(num_classes=3), "ab" * 32,
                    lambda dataset, batch_size, shuffle: DataLoader(dataset, batch_size, shuffle=shuffle))


def loop_gradients(model: nn.Module, dataset: ImageTensorDataset) -> torch.Tensor:
    """[n, P]: ∇_θ CE of each sample alone (batch size 1, as Wfisher.py), flattened in `parameters()` order."""
    model.eval()
    rows = []
    for x, y in zip(dataset.images, dataset.targets):
        grads = torch.autograd.grad(F.cross_entropy(model(x[None]), y[None]), list(model.parameters()))
        rows.append(torch.cat([g.flatten() for g in grads]))
    return torch.stack(rows)


def damped_fisher(gradients: torch.Tensor, fisher_n: float, damping: float) -> torch.Tensor:
    return damping * torch.eye(gradients.shape[1], dtype=gradients.dtype) + gradients.T @ gradients / fisher_n


def test_per_sample_gradients_are_batch_size_one_gradients():
    model, (_, retain) = fixtures.tiny().eval(), splits()
    params = {name: p.detach() for name, p in model.named_parameters()}
    chunks = list(per_sample_gradients(model, params, retain))
    torch.testing.assert_close(torch.cat(chunks), loop_gradients(model, retain), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("fisher_n", "damping"), [(1000.0, 1.0), (5.0, 0.1), (20.0, 1e-3)])
def test_the_inverse_fisher_vector_product_is_a_direct_solve_and_the_sherman_morrison_recursion(fisher_n, damping):
    """F̂⁻¹v for F̂ = λI + (1/N) Σ g gᵀ of 20 per-sample gradients of a 51-parameter MLP: Woodbury's closed form against
    torch.linalg.solve of the formed matrix, and against the recursion F̂_k⁻¹ = F̂_{k−1}⁻¹ − F̂_{k−1}⁻¹ g gᵀ F̂_{k−1}⁻¹ /
    (N + gᵀ F̂_{k−1}⁻¹ g) from F̂_0⁻¹ = I/λ, matrices formed."""
    gradients = loop_gradients(fixtures.tiny(), splits()[1])
    assert gradients.shape == (N_RETAIN, 51)
    v = torch.randn(51, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    exact = torch.linalg.solve(damped_fisher(gradients, fisher_n, damping), v)
    inverse = torch.eye(51, dtype=torch.float64) / damping
    for g in gradients:
        u = inverse @ g
        inverse = inverse - torch.outer(u, u) / (fisher_n + g @ u)
    got = woodfisher_ihvp(gradients, v, fisher_n=fisher_n, damping=damping)
    assert (got - exact).norm() / exact.norm() < 1e-5 and (inverse @ v - exact).norm() / exact.norm() < 1e-5
    if damping < 1:
        assert (v / damping - exact).norm() / exact.norm() > 0.1  # the Fisher part matters here


def test_the_authors_recursion_moves_v_only_along_the_first_gradient():
    """Wfisher.py's `woodfisher` as written: one sample returns v; more return v + c · g_1, unlike F̂⁻¹v."""
    gradients = loop_gradients(fixtures.tiny(), splits()[1])
    v = torch.randn(51, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    assert torch.equal(authors_ihvp([gradients[:1]], v, fisher_n=5.0), v)
    got = authors_ihvp([gradients[:8], gradients[8:]], v, fisher_n=5.0)
    delta, g1 = got - v, gradients[0]
    assert delta.norm() > 1e-3 * v.norm()
    torch.testing.assert_close(delta, (delta @ g1) / (g1 @ g1) * g1, rtol=1e-9, atol=1e-12)
    exact = torch.linalg.solve(damped_fisher(gradients, 5.0, 1.0), v)
    assert (got - exact).norm() > 0.1 * (exact - v).norm()


@pytest.mark.parametrize("inverse", ["woodfisher", "authors"])
def test_the_step_is_alpha_times_the_inverse_fisher_of_the_forget_minus_retain_gradients(inverse):
    """θ + α F̂⁻¹v, v = Σ_f g/(n_f + n_r) − Σ_r g · n_f/((n_f + n_r) n_r) from batch-size-1 gradients, F̂ from the view's seeded
    `hessian_samples` retain rows."""
    alpha, samples, fisher_n, damping = 3.0, 8, 5.0, 0.5
    data = view()
    forget, retain = splits()
    before = fixtures.tiny()
    n = N_FORGET + N_RETAIN
    v = loop_gradients(before, forget).sum(0) / n - loop_gradients(before, retain).sum(0) * N_FORGET / (n * N_RETAIN)
    hessian = loop_gradients(before, data.retain_subset(samples))
    if inverse == "woodfisher":
        expected = torch.linalg.solve(damped_fisher(hessian, fisher_n, damping), v)
    else:
        expected = authors_ihvp([hessian], v, fisher_n=fisher_n, damping=damping)
    method = IU(alpha=alpha, hessian_samples=samples, fisher_n=fisher_n, damping=damping, inverse=inverse, budget={"batch_size": 6})
    method.model = fixtures.tiny()
    method.prepare(data)
    moved = torch.cat([(p - p0).flatten() for p, p0 in zip(method.model.parameters(), before.parameters())])
    torch.testing.assert_close(moved, alpha * expected, rtol=1e-9, atol=1e-12)
    assert method.cost["cost/hessian_samples"] == samples and method.model.training


def test_the_access_is_the_forget_set_and_the_full_retain_set():
    method = fixtures.attached(IU(), RandomInstances(k=20, seed=3))
    assert method.data_access == FORGET_AND_RETAIN
    fixtures.assert_reads_only(method, ("forget", "retain"))


def test_one_shot_on_digits_raises_the_forget_loss(tmp_path):
    scenario = RandomInstances(k=20, seed=3)
    method = IU(hessian_samples=60)
    record = run(method, scenario, Pretrained(), results_dir=str(tmp_path), progress=False, evaluation=Evaluation(mia=False))
    x, y, *_ = next(iter(scenario.eval_loader("forget", shard=False)))
    loss = lambda model: F.cross_entropy(model.eval()(x), y).item()  # noqa: E731
    assert loss(method.model) > loss(method.original)
    assert record["timings"]["cost/epochs"] == 0 and record["timings"]["cost/hessian_samples"] == 60
