"""Every shipped config parses and validates; the papers' CIFAR pipeline runs end to end on a fixture."""

import re
from pathlib import Path

import pytest

from benchmark.metrics.mia import MIA_METRICS
from cli import cli_main
from methods import METHODS, Retrain
from tests.conftest import QUIET, ROOT, records_in
from tests.datamodules.test_torchvision_datasets import cifar10_root  # noqa: F401 (fixture)

CONFIGS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "configs").rglob("*.yaml") if not {"methods", "sweeps"} & set(p.parts))
METHOD_DEFAULTS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "configs" / "methods").rglob("*.yaml"))


@pytest.mark.parametrize("config", CONFIGS)
def test_config_validates(config, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["fit", "--config", config, "--print_config"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "class_path: methods." in out and "class_path: datamodules.scenarios." in out


@pytest.mark.parametrize("defaults", METHOD_DEFAULTS)
def test_a_methods_paper_defaults_are_a_model_config_and_its_signature(defaults, capsys, monkeypatch):
    """`--model configs/methods/M/paper.yaml` and `--model M` resolve to the same configuration when the file is M's
    `defaults`; another paper's defaults for M (NegGrad's seed002.yaml) is a model config of M that differs from it."""
    monkeypatch.chdir(ROOT)
    printed = []
    for model in (defaults, Path(defaults).parent.name):
        with pytest.raises(SystemExit):
            cli_main(["fit", "--model", model, "--data", "RandomInstances", "--data.k", "8", "--print_config"])
        printed.append(re.sub(r"class_path: methods\.(\w+\.)?", "class_path: methods.", capsys.readouterr().out))
    by_recipe = issubclass(METHODS.get(Path(defaults).parent.name), Retrain)  # (its optimizer and epochs are the recipe's: no budget)
    assert ("budget:" in printed[0]) != by_recipe and f"class_path: methods.{Path(defaults).parent.name}" in printed[0]
    assert (printed[0] == printed[1]) == (METHODS.get(Path(defaults).parent.name).defaults == defaults)


def test_fit_and_test_cifar_resnet18_on_a_cifar10_fixture(cifar10_root, tmp_path):  # noqa: F811
    """The CIFAR-10 / ResNet-18 setting of seed 000, on 10 pickled images, with the one-epoch `smoke` recipe."""
    svm_attacks = [name for name in MIA_METRICS if name not in ("mia/scrub_loss", "mia/simple")]  # these need 6 forget images
    common = ["--data", "RandomInstances", "--data.dataset", "cifar10", "--data.data_root", str(cifar10_root), "--data.k", "2",
              "--pretrained.arch", "cifar_resnet18", "--pretrained.recipe", "smoke", "--results_dir", str(tmp_path / "results"),
              "--evaluation.mia_attacks", f"[{', '.join(svm_attacks)}]", *QUIET]
    cli_main(["fit", "--model", "NegGrad", "--model.budget.max_epochs", "2", "--model.budget.stop", "none", *common])
    cli_main(["test", "--model", "Original", *common])
    records = {r["method"]: r for r in records_in(tmp_path / "results")}
    assert set(records) == {"NegGrad", "Original"}
    for record in records.values():
        assert record["pretrained"]["arch"] == "cifar_resnet18" and record["dataset"] == "cifar10"
        assert set(record["metrics"]) == {"forget/acc", "retain/acc", "test/acc", *svm_attacks}
    assert Path(records["NegGrad"]["weights"]).exists()
