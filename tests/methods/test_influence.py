"""Influence (seed 003 Fig. 1's baseline): LiSSA's inverse-Hessian-vector product, and the Newton step on digits."""

import torch
import torch.nn.functional as F

from benchmark.experiment.runner import run
from benchmark.metrics.evaluator import Evaluation
from benchmark.models.pretraining import Pretrained
from datamodules.scenarios import RandomInstances
from methods.influence import Influence, lissa


def test_lissa_solves_a_symmetric_positive_definite_system():
    generator = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=generator))
    a = q @ torch.diag(torch.linspace(0.5, 8.0, 6)) @ q.T  # eigenvalues in (0, 2 · scale)
    v = [torch.randn(6, generator=generator)]
    for damping in (0.0, 0.01):
        (estimate,) = lissa(lambda h: [a @ h[0]], v, damping=damping, scale=10.0, depth=2000)
        exact = torch.linalg.solve(a + damping * 10.0 * torch.eye(6), v[0])
        assert torch.allclose(estimate, exact, atol=1e-4)


def test_the_newton_step_raises_the_forget_sets_loss_and_test_reads_the_step(tmp_path):
    scenario = RandomInstances(k=20, seed=3)
    evaluation = Evaluation(mia=False)
    method = Influence(depth=30)
    record = run(method, scenario, Pretrained(), results_dir=str(tmp_path), progress=False, evaluation=evaluation)
    x, y, *_ = next(iter(scenario.eval_loader("forget", shard=False)))
    loss = lambda model: F.cross_entropy(model.eval()(x), y).item()  # noqa: E731
    assert loss(method.model) > loss(method.original)
    assert record["timings"]["cost/epochs"] == 0 and any(not torch.equal(p, q) for p, q in zip(method.model.parameters(), method.original.parameters()))
