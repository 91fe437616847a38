"""The shared gradient pass: the sum over batches, and the model left exactly as it was."""

import copy

import torch
import torch.nn.functional as F
from torch import nn

from methods.blocks.gradients import accumulated_gradients


def test_a_training_mode_pass_sums_the_gradients_and_leaves_the_model_as_it_was():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)).eval()
    model[2].weight.requires_grad_(False)
    batches = [(torch.randn(5, 3), torch.randint(2, (5,))) for _ in range(3)]
    before = {name: b.clone() for name, b in model.state_dict().items()}
    names = ["0.weight", "2.weight"]
    total, count = accumulated_gradients(model, batches, F.cross_entropy, names, transform=torch.square, train=True)
    expected = {name: torch.zeros_like(p) for name, p in model.named_parameters() if name in names}
    for x, y in batches:
        probe = copy.deepcopy(model).train()
        params = [dict(probe.named_parameters())[n].requires_grad_(True) for n in names]
        for name, g in zip(names, torch.autograd.grad(F.cross_entropy(probe(x), y), params)):
            expected[name] += g.square()
    assert count == 3 and all(torch.allclose(total[n], expected[n]) for n in names)
    assert not model.training and not model[2].weight.requires_grad and model[0].weight.grad is None
    assert all(torch.equal(value, before[name]) for name, value in model.state_dict().items())  # running statistics too
