from pathlib import Path

import torch
from torch import nn

from benchmark.audits.attack_budget import attack_budget, main
from methods.blocks.adversarial import PGD

CHECKPOINTS = Path(__file__).parents[2] / "leaderboard" / "tracks" / "checkpoints"


def test_a_larger_budget_moves_the_examples_further_into_their_targets_and_never_beyond_the_budget():
    """What the suites README reads off ADV's budget: examples stay within ε, and a larger ε reaches more targets with
    a lower cross-entropy to them (the loss L_UL trains on)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    x, y = torch.rand(6, 1, 4, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    attack = PGD(n_adv=4, steps=60, step_size=0.1)
    small, large = (attack_budget(model, x, y, 3, eps, attack) for eps in (0.05, 3.0))
    assert small["distance"] <= 0.05 + 1e-5 and large["distance"] <= 3.0 + 1e-5
    assert large["reached"] > small["reached"] and large["target_ce"] < small["target_ce"]


def test_the_command_prints_a_row_per_seed_and_budget_for_a_committed_original(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNBENCH_HOME", str(tmp_path))
    rows = main(arch="small_cnn", recipe="digits", checkpoint=str(CHECKPOINTS / "digits-small_cnn-digits-seed0.pt"),
                dataset="digits", k=2, seeds=[0], eps=[0.2, 2.0])
    assert [r[:2] for r in rows] == [["0", "0.2"], ["0", "2"]]
    assert float(rows[1][2]) >= float(rows[0][2]) and "mean CE to target" in capsys.readouterr().out
