"""The command line as users run it: fit/test end to end, configs, help, bad input, DDP, Ctrl-C."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from benchmark.commands.tools import compare
from benchmark.metrics.mia import MIA_METRICS
from benchmark.models import create_model
from cli import cli_main
from datamodules.scenarios import RandomInstances
from tests.conftest import QUIET, ROOT, records_in, run_cli, run_here

FIT_DIGITS = ["--model", "NegGrad", "--data", "RandomInstances", "--data.k", "15", *QUIET]


def test_fit_then_test_writes_one_complete_record(tmp_path, capsys):
    result = run_here(capsys, "fit", *FIT_DIGITS, "--model.budget.stop_check", "step", "--results_dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    (record,) = records_in(tmp_path)
    assert record["method"] == "NegGrad" and record["seed"] == 0
    assert set(record["metrics"]) == {"forget/acc", "retain/acc", "test/acc", *MIA_METRICS}
    assert record["metrics"]["forget/acc"] == 0.0  # stop=misclassify reached
    assert record["config"]["model"]["init_args"]["optimizer"]["init_args"]["lr"] == 0.001 and record["config"]["data"]["init_args"]["k"] == 15
    assert len(record["request"]["hash"]) == 64 and record["versions"]["torch"] and record["git_commit"]
    assert record["timings"]["cost/seconds"] > 0 and "eval/seconds" in record["timings"]
    assert 0 <= record["timings"]["cost/peak_memory_mb"] < 300  # what the unlearning adds (0 when it reuses freed memory), not the process's ~900 MB
    assert record["hardware"]["cpu_count"] == os.cpu_count() and record["hardware"]["threads"] == torch.get_num_threads()
    assert record["hardware"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert "forget/acc" in result.stdout and "NegGrad" in result.stdout

    unlearned = record["weights"]
    tested = run_here(capsys, "test", "--model", "Original", "--data", "RandomInstances", "--data.k", "15", "--pretrained.checkpoint", unlearned, "--results_dir", str(tmp_path / "t"), *QUIET)
    assert tested.returncode == 0, tested.stderr
    (evaluated,) = records_in(tmp_path / "t")
    assert evaluated["metrics"] == record["metrics"]


def test_config_file_and_print_config(capsys):
    result = run_here(capsys, "fit", "--config", str(ROOT / "configs" / "digits_neggrad.yaml"), "--print_config")
    assert result.returncode == 0, result.stderr
    assert "class_path: methods.NegGrad" in result.stdout and "fraction: 0.1" in result.stdout and "stop_check: step" in result.stdout


def test_help_shows_method_hyperparameters(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["fit", "--model.help", "NegGrad"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--model.budget.stop_check {epoch,step}" in out and "--model.goal {misclassify,relabel}" in out and "default: 100)" in out


def bad_input_cases(tmp_path) -> dict[str, tuple[list[str], str]]:
    """Each case: CLI arguments and the phrase its one-line error must contain."""
    good = RandomInstances(k=5)
    good.setup()
    for name, indices in {"out_of_range": (1, 99999), "duplicated": (1, 1)}.items():
        dataclasses.replace(good.request, forget_indices=indices).save(tmp_path / f"{name}.json")  # a correct hash of a bad request
    wrong_hash = json.loads(good.request_path.read_text())
    wrong_hash["forget_indices"] = [2, 3, 4, 5, 6]
    (tmp_path / "wrong_hash.json").write_text(json.dumps(wrong_hash))
    cases = {}
    other_arch = tmp_path / "resnet.pt"
    torch.save({"state_dict": create_model("cifar_resnet18", num_classes=10, in_chans=1, image_size=8).state_dict()}, other_arch)
    other_classes = tmp_path / "three_classes.pt"
    torch.save({"state_dict": create_model("small_cnn", num_classes=3, in_chans=1, image_size=8).state_dict()}, other_classes)
    base = ["--data", "RandomInstances", "--data.k", "8", *QUIET]
    file_scenario = ["--model", "Original", "--data", "RequestFile", *QUIET, "--data.path"]
    cases["unknown_method"] = (["--model", "Forgetful", *base], "unknown method 'Forgetful'; known: ActivationMask, Adv, AdvImp, ")
    from datamodules.datasets import list_datasets

    cases["unknown_dataset"] = (["--model", "Original", *base, "--data.dataset", "imagenet9"], "unknown dataset 'imagenet9'; known: " + ", ".join(list_datasets()))
    cases["unknown_model"] = (["--model", "Original", *base, "--pretrained.arch", "resnet9000"], "unknown model 'resnet9000'; known: allcnn, cifar_resnet18")
    cases["k_and_fraction"] = (["--model", "Original", *base, "--data.fraction", "0.1"], "RandomInstances: give exactly one of k and fraction")
    cases["k_too_large"] = (["--model", "Original", "--data", "RandomInstances", "--data.k", "100000", *QUIET], "k=100000 must be at least 1 and smaller than the 1437")
    cases["index_out_of_range"] = ([*file_scenario, str(tmp_path / "out_of_range.json")], "forget index 99999 is out of range [0, 1437)")
    cases["duplicated_index"] = ([*file_scenario, str(tmp_path / "duplicated.json")], "forget index 1 appears more than once")
    cases["wrong_hash"] = ([*file_scenario, str(tmp_path / "wrong_hash.json")], "does not match its content")
    cases["other_architecture"] = (["--model", "Original", *base, "--pretrained.checkpoint", str(other_arch)], "does not fit small_cnn with 10 classes")
    cases["other_num_classes"] = (["--model", "Original", *base, "--pretrained.checkpoint", str(other_classes)], "shape of head.weight is (3, 256), expected (10, 256)")
    cases["missing_dataset"] = (["--model", "Original", *base, "--data.dataset", "fashion_mnist", "--data.data_root", str(tmp_path / "none")], "apt-get install -y dataset-fashion-mnist")
    trained_labels = tuple(good.splits["forget"].targets.tolist())
    dataclasses.replace(good.request, new_labels=trained_labels).save(tmp_path / "same_label.json")
    cases["relabel_to_trained_label"] = ([*file_scenario, str(tmp_path / "same_label.json")], f"new label {trained_labels[0]} of forget index {good.request.forget_indices[0]} is the label it was trained with")
    from datamodules.scenarios.continual import draw_stream

    stream = draw_stream(good.data, k_cl=2, steps=3)
    dataclasses.replace(stream, forget_indices=(*stream.forget_indices[:3], stream.forget_indices[0], *stream.forget_indices[4:])).save(tmp_path / "overlap.json")
    cases["overlapping_chunks"] = (["--model", "Original", "--data", "ContinualStep", "--data.stream", str(tmp_path / "overlap.json"), *QUIET],
                                   f"continual chunks 1 and 2 overlap (forget index {stream.forget_indices[0]} is in both)")
    cases["adv_eps_zero"] = (["--model", "Adv", "--model.attack.eps", "0", *base], "invalid value for --model.attack.eps: 0 is not allowed; a number > 0")
    cases["advimp_eps_negative"] = (["--model", "AdvImp", "--model.attack.eps", "-0.4", *base], "invalid value for --model.attack.eps: -0.4 is not allowed; a number > 0")
    cases["adv_no_adversarial_examples"] = (["--model", "Adv", "--model.attack.n_adv", "0", *base], "invalid value for --model.attack.n_adv: 0 is not allowed; an integer > 0")
    cases["advimp_no_adversarial_examples"] = (["--model", "AdvImp", "--model.attack.n_adv", "-1", *base], "invalid value for --model.attack.n_adv: -1 is not allowed; an integer > 0")
    neggrad = ["--model", "NegGrad", *base]
    cases["max_epochs_negative"] = ([*neggrad, "--model.budget.max_epochs", "-1"], "invalid value for --model.budget.max_epochs: -1 is not allowed; an integer > 0")
    cases["max_epochs_zero"] = ([*neggrad, "--model.budget.max_epochs", "0"], "invalid value for --model.budget.max_epochs: 0 is not allowed; an integer > 0")
    cases["lr_negative"] = ([*neggrad, "--model.optimizer.lr", "-0.1"], "optimizer torch.optim.sgd.SGD refuses")
    cases["unknown_setting"] = ([*neggrad, "--model.learning_rate", "0.1"],
                                "--model.learning_rate is not a setting of NegGrad; its settings: goal, optimizer, budget.max_epochs, budget.batch_size")
    cases["unknown_optimizer_setting"] = ([*neggrad, "--model.optimizer.lrate", "0.1"], "--model.optimizer.lrate is not a setting of SGD; its settings: lr, momentum")
    cases["missing_config"] = (["--config", str(tmp_path / "none.yaml"), *base], f"invalid value for --config: File does not exist: '{tmp_path / 'none.yaml'}'")
    (tmp_path / "broken.yaml").write_text("model:\n  class_path: NegGrad\n  init_args: {budget: {max_epochs: 3}\n")
    cases["malformed_config"] = (["--config", str(tmp_path / "broken.yaml"), *base], f"config {tmp_path / 'broken.yaml'} is not valid YAML: line 4, column 1:")
    cases["forget_too_small_for_an_attack"] = (["--model", "Original", "--data", "RandomInstances", "--data.k", "5", *QUIET],
                                               "mia/scrub_loss needs at least 6 rows of forget, the scenario has 5")
    cases["unknown_attack"] = (["--model", "Original", *base, "--evaluation.mia_attacks", "[mia/svm_asr, mia/nope]"],
                               "unknown membership-inference attack(s) mia/nope; known: mia/svm_asr")
    cases["import_error"] = (["--model", "no_such_module.MyMethod", *base], "--model no_such_module.MyMethod: No module named 'no_such_module'")
    (tmp_path / "garbage.pt").write_text("not a checkpoint")
    cases["garbage_checkpoint"] = (["--model", "Original", *base, "--pretrained.checkpoint", str(tmp_path / "garbage.pt")], "is not a file written by torch.save")
    torch.save(torch.nn.Linear(2, 2), tmp_path / "pickled.pt")
    cases["pickled_checkpoint"] = (["--model", "Original", *base, "--pretrained.checkpoint", str(tmp_path / "pickled.pt")],
                                   "holds pickled Python objects, not only tensors, and loading those can run code, which UnlearnBench never does")
    return cases


CASES = ["unknown_method", "unknown_dataset", "unknown_model", "k_and_fraction", "k_too_large", "index_out_of_range", "duplicated_index", "wrong_hash", "other_architecture", "other_num_classes", "missing_dataset",
         "relabel_to_trained_label", "overlapping_chunks", "adv_eps_zero", "advimp_eps_negative", "adv_no_adversarial_examples", "advimp_no_adversarial_examples",
         "max_epochs_negative", "max_epochs_zero", "lr_negative", "unknown_setting", "unknown_optimizer_setting", "missing_config", "malformed_config",
         "import_error", "garbage_checkpoint", "pickled_checkpoint", "forget_too_small_for_an_attack", "unknown_attack"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_and_writes_no_record(case, tmp_path, capsys):
    args, expected = bad_input_cases(tmp_path)[case]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["test", *args, "--results_dir", str(tmp_path / "results")])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code != 0
    assert err[-1].startswith("error: ") and expected in err[-1], err
    assert not any("Traceback" in line for line in err)
    assert not (tmp_path / "results").exists()


def test_only_fit_and_test_are_lightning_subcommands_and_a_method_file_is_a_model(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["validate", "--model", "Original"])
    assert exit_info.value.code == 2 and "invalid choice: 'validate' (choose from 'fit', 'test')" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["fit", "--model", "leaderboard/example_method.py:GentleAscent", "--data", "RandomInstances", "--data.k", "5", "--print_config"])
    assert exit_info.value.code == 0 and ".GentleAscent" in capsys.readouterr().out  # as `submit --method` takes it


def test_the_first_example_forgets_a_class_and_keeps_the_rest(tmp_path, capsys):
    result = run_here(capsys, "fit", "--model", "RAWP", "--data", "WholeClasses", "--data.classes", "[0]", "--evaluation.mia", "false", "--results_dir", str(tmp_path), *QUIET)
    assert result.returncode == 0, result.stderr
    (record,) = records_in(tmp_path)
    assert record["metrics"]["forget/acc"] == 0.0 and record["metrics"]["retain/acc"] > 0.9 and record["diverged"] is None


def test_request_command_stamps_a_hand_written_file(tmp_path, capsys):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"dataset": "digits", "num_train": 1437, "forget_indices": [4, 8, 15, 16, 23, 42]}))
    result = run_here(capsys, "request", str(path))
    assert result.returncode == 0, result.stderr
    assert json.loads(path.read_text())["hash"] == result.stdout.strip()
    path.write_text(json.dumps({"dataset": "digits", "num_train": 1437, "forget_indices": [4, 4]}))
    refused = run_here(capsys, "request", str(path))
    assert refused.returncode == 2 and refused.stderr.strip().splitlines()[-1] == "error: request for digits: forget index 4 appears more than once"


def test_ddp_gives_the_same_metrics_as_one_process(tmp_path):
    """Two CPU processes (gloo) on splits of odd size (k=7 forget, 1430 retain, 360 test)."""
    args = ["test", "--model", "Original", "--data", "RandomInstances", "--data.k", "7", "--trainer.accelerator", "cpu", *QUIET]
    single = run_cli(*args, "--trainer.devices", "1", "--results_dir", str(tmp_path / "one"))
    assert single.returncode == 0, single.stderr
    ddp = run_cli(*args, "--trainer.devices", "2", "--trainer.strategy", "ddp", "--results_dir", str(tmp_path / "two"), timeout=300)
    assert ddp.returncode == 0, ddp.stderr
    (one,), (two,) = records_in(tmp_path / "one"), records_in(tmp_path / "two")
    assert two["hardware"]["world_size"] == 2 and two["hardware"]["cpu_count"] == one["hardware"]["cpu_count"] == os.cpu_count()
    assert one["metrics"] == two["metrics"]


def test_ctrl_c_leaves_no_record_and_a_rerun_is_clean(tmp_path):
    requests = tmp_path / "requests"
    args = ["fit", "--model", "FineTune", "--model.budget.max_epochs", "500", "--data", "RandomInstances", "--data.k", "9",
            "--data.request_dir", str(requests), "--results_dir", str(tmp_path / "results"), *QUIET]
    assert run_cli("test", "--model", "Original", "--data", "RandomInstances", "--data.k", "9", *QUIET).returncode == 0  # cache the original
    process = subprocess.Popen([sys.executable, "cli.py", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # CI may start us with SIGINT ignored
    deadline = time.time() + 120
    while not requests.exists() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(3)  # well into the 500 epochs
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130 and err.strip().splitlines()[-1] == "error: interrupted; no result record was written", err
    assert not (tmp_path / "results").exists() or not list((tmp_path / "results").rglob("*"))
    rerun = run_cli(*[a if a != "500" else "1" for a in args])
    assert rerun.returncode == 0, rerun.stderr
    assert len(records_in(tmp_path / "results")) == 1


def test_compare_prints_the_four_methods_and_repeats_exactly(capsys, tmp_path):
    first = compare(results_dir=str(tmp_path))
    table = capsys.readouterr().out
    second = compare(results_dir=str(tmp_path))
    assert [r["method"] for r in first] == ["Original", "Retrain", "FineTune", "NegGrad"]
    for row in ("Original", "Retrain", "FineTune", "NegGrad"):
        assert any(line.startswith(row) for line in table.splitlines())
    assert "| forget/acc | retain/acc | test/acc |" in table
    assert [r["metrics"] for r in first] == [r["metrics"] for r in second]
    assert first[2]["config"]["model"]["init_args"] == first[2]["hparams"] and first[2]["config"]["data"]["init_args"]["fraction"] == 0.1
    assert first[0]["metrics"]["forget/acc"] >= 0.99
    finetune = first[2]["timings"]  # Retrain ran before it on the same request: Retrain's cost over FineTune's
    assert finetune["cost/speedup_vs_retrain"] == first[1]["timings"]["cost/seconds"] / finetune["cost/seconds"]
    assert "cost/speedup_vs_retrain" not in second[0]["timings"]  # Original unlearns nothing: no speed-up to report


def test_test_needs_a_fitted_method_and_then_reproduces_its_numbers(tmp_path, capsys):
    args = ["--model", "FineTune", "--model.budget.max_epochs", "1", "--data", "RandomInstances", "--data.k", "12", "--results_dir", str(tmp_path), *QUIET]
    missing = run_here(capsys, "test", *args)
    assert missing.returncode == 2 and "no unlearned FineTune model" in missing.stderr.strip().splitlines()[-1]
    assert run_here(capsys, "fit", *args).returncode == 0
    (fitted,) = records_in(tmp_path)
    assert run_here(capsys, "test", *args).returncode == 0
    (tested,) = records_in(tmp_path)
    assert tested["metrics"] == fitted["metrics"]
    assert tested["timings"]["cost/seconds"] == fitted["timings"]["cost/seconds"]  # the cost of making the tested model

    other = run_here(capsys, "test", *[a if a != "1" else "2" for a in args])  # not the fit's configuration: refused, nothing written
    assert other.returncode == 2 and "made with another configuration (hparams.budget.max_epochs: 1 there, 2 here)" in other.stderr.strip().splitlines()[-1]
    evaluated = run_here(capsys, "test", "--model", "Original", "--data", "RandomInstances", "--data.k", "12", "--pretrained.checkpoint", fitted["weights"],
                        "--results_dir", str(tmp_path), *QUIET)  # the README's "evaluate an unlearned model", into the same folder
    assert evaluated.returncode == 0, evaluated.stderr
    finetune, original = sorted(records_in(tmp_path), key=lambda r: r["method"])
    assert finetune == tested and original["pretrained"]["checkpoint"] == fitted["weights"] and original["metrics"] == fitted["metrics"]


def test_datasets_command_lists_every_dataset_and_where_it_is_expected(capsys):
    cli_main(["datasets"])
    lines = capsys.readouterr().out.splitlines()
    from datamodules.datasets import list_datasets

    assert [line.split()[0] for line in lines] == list_datasets()
    digits = next(line for line in lines if line.startswith("digits"))
    assert " found " in digits
    assert all(" found " in line or ("missing" in line and "data" in line) for line in lines)


def test_test_of_a_one_shot_method_evaluates_what_its_fit_made(tmp_path, capsys):
    """Fisher trains no epoch (its noise is drawn in `prepare`): `test` must still load the fitted model, not the original."""
    args = ["--model", "Fisher", "--model.retain_samples", "100", "--data", "WholeClasses", "--data.classes", "[0]", "--results_dir", str(tmp_path), *QUIET]
    assert run_here(capsys, "fit", *args).returncode == 0
    (fitted,) = records_in(tmp_path)
    assert run_here(capsys, "test", *args).returncode == 0
    (tested,) = records_in(tmp_path)
    assert tested["metrics"] == fitted["metrics"] and fitted["metrics"]["test_forget/acc"] < 0.5
