"""`cli.py suite`: a paper table over k × seeds × rows, in the paper's layout, resumable."""

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from benchmark.core.errors import UnlearnBenchError
from benchmark.experiment import runner
from benchmark.metrics.evaluator import Evaluation
from benchmark.suites import (
    ANALYSIS_METRICS,
    SUITES,
    Row,
    Suite,
    analyze_suite,
    run_suite,
)
from benchmark.suites.base import Request, column_label, columns, records_variant, write_entries
from methods import METHODS
from datamodules.scenarios import WholeClasses
from tests.benchmark.leaderboard.conftest import track_data

TINY = Suite(
    title="tiny", dataset="digits", ks=(8, 12), seeds=(0, 1), arch="small_cnn", evaluation=Evaluation(mia=False),
    rows=(Row("BEFORE", "Original"), Row("FINETUNE", "FineTune", {"budget": {"max_epochs": 1}})),
    companion_metrics=("cost/seconds",),
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    SUITES.register("tiny_test_suite")(TINY)
    folder = tmp_path_factory.mktemp("suite")
    return folder, run_suite("tiny_test_suite", results_dir=str(folder / "runs"), out=str(folder / "tiny.md"), progress=False)


def test_paper_layout_with_mean_and_std_over_seeds(tiny):
    folder, result = tiny
    text = (folder / "tiny.md").read_text()
    columns = next(line for line in text.splitlines() if "k = 8" in line and "|" in line)
    assert [cell.strip() for cell in columns.split("|")[2:]] == ["k = 8", "k = 12"]
    lines = text.split("```")[1].strip().splitlines()[2:]
    assert [line.split("|")[0].strip() for line in lines] == ["D_f (↓)", "", "D_r (↑)", "", "D_test (↑)", ""]
    assert [line.split("|")[1].strip() for line in lines] == ["BEFORE", "FINETUNE"] * 3
    records = [r for r in result["records"] if r["method"] == "FineTune" and r["scenario"]["k"] == 8]
    values = [100 * r["metrics"]["retain/acc"] for r in records]
    mean, std = (sum(values) / 2, abs(values[0] - values[1]) / 2 ** 0.5)
    assert f"{mean:.2f} ± {std:.2f}" in lines[3]
    assert "python cli.py suite" in text
    header = next(line for line in text.splitlines() if line.startswith("The original before unlearning"))
    before_test = next(r for r in result["records"] if r["method"] == "Original")["metrics"]["test/acc"]
    assert f"test {100 * before_test:.2f} %" in header and "k = 8: mean CE" in header and "k = 12: mean CE" in header


def test_an_interrupted_suite_resumes_without_rerunning(tiny):
    folder, result = tiny
    before = {r["path"]: r["created"] for r in result["records"]}
    again = run_suite("tiny_test_suite", results_dir=str(folder / "runs"), out=str(folder / "tiny2.md"), progress=False)
    assert {r["path"]: r["created"] for r in again["records"]} == before
    assert len(before) == 2 * 2 * 2 and all(json.loads(open(p).read())["config"]["suite"] == "tiny_test_suite" for p in before)


def test_a_record_from_before_an_evaluation_field_existed_is_reused_and_one_of_another_evaluation_is_not(tiny, tmp_path):
    folder, result = tiny
    record = result["records"][0]
    data = json.loads(Path(record["path"]).read_text())
    del data["evaluation"]["mia_attacks"]  # as written before the field existed
    older = tmp_path / Path(record["path"]).name
    older.write_text(json.dumps(data))
    assert runner.reusable_record(older, TINY.evaluation)["created"] == record["created"]
    assert runner.reusable_record(older, Evaluation(mia=False, relearn=True)) is None


def test_bad_grid_is_one_line():
    with pytest.raises(UnlearnBenchError, match="ks must be positive"):
        run_suite("instancewise_table1", ks=[0])
    with pytest.raises(UnlearnBenchError, match="multiple of k_cl"):
        run_suite("instancewise_continual", dataset="digits", ks=[12], seeds=[0])


def test_the_runs_of_each_k_become_the_entries_of_its_track(tiny, tmp_path):
    from dataclasses import replace

    import yaml

    from benchmark.leaderboard.entries import load_entries
    from benchmark.leaderboard.tracks import load_track
    from benchmark.suites import write_entries
    from datamodules.scenarios import RandomInstances
    from tests.benchmark.leaderboard.conftest import track_data

    _, result = tiny
    (tmp_path / "tracks").mkdir()
    for k in TINY.ks:
        runs = []
        for seed in TINY.seeds:
            scenario = RandomInstances(k=k, seed=seed)
            scenario.setup()
            runs.append({"seed": seed, "request": scenario.request.hash})
        data = track_data(f"tiny-k{k}", runs)
        data["scenario"]["init_args"] = {"dataset": "digits", "k": k, "relabel": False}
        (tmp_path / "tracks" / f"tiny-k{k}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    written = write_entries(replace(TINY, track="tiny-k{k}", ks=(4, *TINY.ks)), result["records"], leaderboard=tmp_path)
    assert len(written) == len(TINY.ks) * len(TINY.rows)  # k = 4 has no track: its runs stay in the tables only
    entries = load_entries(load_track("tiny-k8", tmp_path), tmp_path)
    assert sorted(e["method"] for e in entries) == ["FineTune", "Original"], [e["method"] for e in entries]
    finetune = next(e for e in entries if e["method"] == "FineTune")
    assert finetune["config"]["init_args"] == {"budget": {"max_epochs": 1}}
    assert [run["seed"] for run in finetune["runs"]] == [0, 1]


def test_a_continual_suite_runs_its_tracks_stream_for_every_seed_and_enters_the_tracks_step(tmp_path):
    from benchmark.leaderboard.entries import load_entries
    from benchmark.leaderboard.tracks import load_track
    from benchmark.suites import run_continual, write_entries
    from tests.benchmark.leaderboard.conftest import continual_track_data, write_track

    data = continual_track_data("tiny-continual", tmp_path)
    (tmp_path / "tracks").mkdir()
    write_track(tmp_path, data)
    suite = Suite(title="tiny continual", dataset="digits", ks=(6, 12), k_cl=6, seeds=(0, 1), arch=data["pretrained"]["arch"],
                  evaluation=Evaluation(mia=False), track="tiny-continual",
                  rows=(Row("BEFORE", "Original"), Row("FINETUNE", "FineTune", {"budget": {"max_epochs": 1}})))
    records, _ = run_continual(suite, "tiny_continual", tmp_path / "runs", progress=False, leaderboard=tmp_path)
    assert {r["request"]["hash"] for r in records if r["scenario"]["k"] == 12} == {data["runs"][0]["request"]}  # the same stream for both seeds
    written = write_entries(suite, records, leaderboard=tmp_path)
    assert len(written) == len(suite.rows)
    entries = load_entries(load_track("tiny-continual", tmp_path), tmp_path)
    assert sorted(e["method"] for e in entries) == ["FineTune", "Original"]
    assert all(run["scenario"]["step"] == 2 for e in entries for run in e["runs"])


def test_the_suites_time_counts_work_shared_through_a_cache_once():
    from benchmark.suites import run_seconds

    made = {"timings": {"cost/seconds": 10.0, "cost/reused_seconds": 0.0, "eval/seconds": 2.0}}
    read = {"timings": {"cost/seconds": 9.0, "cost/reused_seconds": 6.0, "eval/seconds": 2.0}}  # 6 s of it made by the run above
    assert run_seconds([made, read]) == 12.0 + 5.0


def test_the_analyses_of_a_finished_suite(tiny):
    """BEFORE compares the original with itself: CKA 1 and pattern 1; every row and k gets every number, and the
    first k and seed get the figures."""
    folder, _ = tiny
    path = analyze_suite("tiny_test_suite", results_dir=str(folder / "runs"), out=str(folder / "tiny-analyses.md"))
    lines = Path(path).read_text().split("```")[1].strip().splitlines()[2:]
    assert [line.split("|")[0].strip() for line in lines if line.split("|")[0].strip()] == list(ANALYSIS_METRICS)
    cells = {(metric, label): line.split("|")[2:] for metric, line in zip([m for m in ANALYSIS_METRICS for _ in range(2)], lines)
             for label in [line.split("|")[1].strip()]}
    for metric in ("forget/pattern", "cka/forget_early", "cka/forget_last", "cka/retain_early", "cka/retain_last"):
        assert [c.strip() for c in cells[(metric, "BEFORE")]] == ["1.00 ± 0.00"] * 2
    assert all("±" in c for row in cells.values() for c in row)
    assert (folder / "tiny-analyses-figures" / "k8-seed0" / "FINETUNE" / "cka_retain.png").exists()
    assert [p.name for p in (folder / "tiny-analyses-figures" / "k8-seed0" / "BEFORE").iterdir()] == ["tsne_before.png"]


def test_analyses_need_the_suites_runs(tiny, tmp_path):
    with pytest.raises(UnlearnBenchError, match="run `python cli.py suite tiny_test_suite` with the same grid first"):
        analyze_suite("tiny_test_suite", results_dir=str(tmp_path), out=str(tmp_path / "x.md"))


def test_a_suite_sharing_anothers_records_reruns_only_its_new_rows_and_keeps_rows_of_one_method_apart(tiny):
    """A BatchNorm-mode table beside Table 1: the train-mode row is read back, the frozen row runs, each gets its cells."""
    folder, result = tiny
    frozen = Row("FINETUNE (BN frozen)", "FineTune", {"budget": {"max_epochs": 1}, "batchnorm": "frozen"})
    SUITES.register("tiny_bn_test_suite")(replace(TINY, records="tiny_test_suite", ks=(8,), rows=(TINY.rows[1], frozen)))
    assert records_variant(SUITES.get("tiny_bn_test_suite"), "tiny_bn_test_suite", "tiny_bn_test_suite-digits") == "tiny_test_suite-digits"
    shared = run_suite("tiny_bn_test_suite", results_dir=str(folder / "runs"), out=str(folder / "bn.md"), progress=False)
    before = {r["path"]: r["created"] for r in result["records"]}
    read_back = [r for r in shared["records"] if r["row"] == "FINETUNE"]
    assert len(read_back) == 2 and all(before[r["path"]] == r["created"] for r in read_back)
    assert [r["hparams"]["batchnorm"] for r in shared["records"] if r["row"] == frozen.label] == ["frozen", "frozen"]
    lines = (folder / "bn.md").read_text().split("```")[1].strip().splitlines()[2:]
    assert [line.split("|")[1].strip() for line in lines] == ["FINETUNE", frozen.label] * 3


def test_a_recipe_variant_names_its_tables_and_uses_the_committed_original_when_there_is_one(tmp_path):
    from benchmark.suites.base import original, suite_variant

    suite, variant = suite_variant("instancewise_table1", arch="narrow_resnet18", recipe="fashion_mnist_sgd")
    assert variant == "instancewise_table1-narrow_resnet18-fashion_mnist_sgd"
    (tmp_path / "tracks" / "checkpoints").mkdir(parents=True)
    assert original(suite, tmp_path).checkpoint is None and original(suite, tmp_path).recipe == "fashion_mnist_sgd"
    committed = tmp_path / "tracks" / "checkpoints" / "fashion_mnist-narrow_resnet18-fashion_mnist_sgd-seed0.pt"
    committed.write_bytes(b"")
    assert original(suite, tmp_path).checkpoint == str(committed)
    assert original(replace(suite, recipe="cifar"), tmp_path).checkpoint is None  # another recipe is another original


def test_a_k_too_small_for_an_attack_runs_the_other_attacks_and_the_table_says_which():
    """Seed 001's k = 4 has too few forget images for the cross-validated attacks; the suite's runs at that k leave
    them out (rather than failing after the original is loaded) and the table's header names them."""
    from benchmark.metrics.mia import MIA_METRICS, attack_classes, check_split_sizes
    from benchmark.suites.base import attacks_left_out, evaluation_at

    suite = replace(TINY, ks=(4, 16), evaluation=Evaluation(mia=True, mia_samples=5000))
    small = evaluation_at(suite, {"forget": 4, "retain": 59996, "test": 10000})
    assert set(MIA_METRICS) - set(small.mia_attacks) == {"mia/scrub_loss", "mia/simple"} and small.mia_samples == 5000
    check_split_sizes(attack_classes(small.mia_attacks), {"forget": 4, "retain": 59996, "test": 10000})
    assert evaluation_at(suite, {"forget": 16, "retain": 59984, "test": 10000}) is suite.evaluation
    records = [{"scenario": {"k": 4}, "evaluation": {"mia_attacks": small.mia_attacks}}, {"scenario": {"k": 16}, "evaluation": {"mia_attacks": None}}]
    assert attacks_left_out(suite, records) == "Membership attacks not computed, D_f being too small for them: k = 4: `mia/scrub_loss`, `mia/simple`.\n\n"
    assert attacks_left_out(suite, records[1:]) == ""


TINY_CLASSES = Suite(
    title="tiny classes", dataset="digits", ks=(), classes=((0,), (1, 2)), retain_per_class=20, seeds=(0,), arch="small_cnn",
    evaluation=Evaluation(mia=False), rows=(Row("Original", "Original"), Row("UNSIR", "UNSIR", {"noise_batch": 16, "noise_copies": 2})),
    main_metrics=("test_forget/acc", "test_retain/acc"), companion_metrics=("cost/seconds",),
)


def test_a_class_suite_has_a_column_per_forgotten_class_set_and_refuses_ks(tmp_path):
    """Seed 002's tables: columns are class sets, every request names D_r_sub (UNSIR's), rows read A_Df / A_Dr."""
    SUITES.register("tiny_class_suite")(TINY_CLASSES)
    result = run_suite("tiny_class_suite", results_dir=str(tmp_path / "runs"), out=str(tmp_path / "t.md"), progress=False)
    text = (tmp_path / "t.md").read_text()
    header = next(line for line in text.splitlines() if "classes 0" in line and "|" in line)
    assert [cell.strip() for cell in header.split("|")[2:]] == ["classes 0", "classes 1/2"]
    assert [line.split("|")[0].strip() for line in text.split("```")[1].strip().splitlines()[2:]] == ["A_Df, test (↓)", "", "A_Dr, test (↑)", ""]
    unsir = [r for r in result["records"] if r["method"] == "UNSIR"]
    assert sorted(tuple(r["scenario"]["classes"]) for r in unsir) == [(0,), (1, 2)]
    assert all(r["scenario"]["retain_per_class"] == 20 for r in unsir)
    (tmp_path / "tracks").mkdir()
    for classes in TINY_CLASSES.classes:
        scenario = WholeClasses(classes=list(classes), retain_per_class=20, seed=0)
        scenario.setup()
        name = f"tiny-classes-{'-'.join(map(str, classes))}"
        data = track_data(name, [{"seed": 0, "request": scenario.request.hash}])
        data["scenario"] = {"class": "WholeClasses", "init_args": {"dataset": "digits", "classes": list(classes), "retain_per_class": 20}, "seed_arg": "seed"}
        (tmp_path / "tracks" / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    written = write_entries(replace(TINY_CLASSES, track="tiny-classes-{classes}"), result["records"], leaderboard=tmp_path)
    assert sorted(Path(p).parent.name + "/" + Path(p).stem for p in written) == [
        "tiny-classes-0/Original", "tiny-classes-0/UNSIR", "tiny-classes-1-2/Original", "tiny-classes-1-2/UNSIR"]
    with pytest.raises(UnlearnBenchError, match="is a class suite: its columns are forgotten class sets"):
        run_suite("tiny_class_suite", ks=[4], results_dir=str(tmp_path / "runs"), progress=False)
    with pytest.raises(UnlearnBenchError, match="is an instance suite"):
        run_suite("instancewise_table1", classes=[[0]], results_dir=str(tmp_path / "runs"), progress=False)


def test_a_suite_with_curves_draws_them_beside_its_tables(tmp_path):
    """Seed 003's figures are per-epoch curves: a panel per column and main metric, a line per row with curves."""
    SUITES.register("tiny_curves_suite")(replace(TINY_CLASSES, classes=((0,),), evaluation=Evaluation(mia=False, curves=True)))
    run_suite("tiny_curves_suite", results_dir=str(tmp_path / "runs"), out=str(tmp_path / "t.md"), progress=False)
    figure = tmp_path / "t-curves.png"
    assert "![curves](t-curves.png)" in (tmp_path / "t.md").read_text()
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and b"curves: tiny classes" in figure.read_bytes()


def test_an_outlier_suite_has_a_column_per_rho_each_seed_with_its_own_original(tmp_path):
    """Seed 003 Table 2: columns are ρ, each (ρ, seed) trains on its own mislabelled training set, so its own original."""
    tiny = Suite(title="tiny outliers", dataset="digits", ks=(), rhos=(0.1, 0.2), seeds=(0,), arch="small_cnn", recipe="smoke",
                 evaluation=Evaluation(mia=False, curves=True), rows=(Row("Original", "Original"), Row("FT", "FineTune", {"budget": {"max_epochs": 1}})),
                 main_metrics=("test/best_acc", "noise/best_acc"), companion_metrics=("cost/seconds",))
    SUITES.register("tiny_outlier_suite")(tiny)
    result = run_suite("tiny_outlier_suite", results_dir=str(tmp_path / "runs"), out=str(tmp_path / "t.md"), progress=False)
    text = (tmp_path / "t.md").read_text()
    assert "ρ = 0.1: mean CE" in text and "ρ = 0.2: mean CE" in text and "its originals' test accuracy" in text
    header = next(line for line in text.splitlines() if "ρ = 0.1" in line and "|" in line)
    assert [cell.strip() for cell in header.split("|")[2:]] == ["ρ = 0.1", "ρ = 0.2"]
    best = next(line for line in text.splitlines() if line.startswith("D_test, best epoch"))
    assert float(best.split("|")[2].split("±")[0]) > 1  # in percent, as every accuracy
    originals = {r["scenario"]["rho"]: r["metrics"]["forget/acc"] for r in result["records"] if r["method"] == "Original"}
    assert sorted(originals) == [0.1, 0.2] and originals[0.1] != originals[0.2]  # (each trained on its own labels)
    finetuned = [r for r in result["records"] if r["method"] == "FineTune"]
    assert all(r["metrics"]["noise/best_acc"] == max(r["curves"]["noise/acc"]) for r in finetuned)
    with pytest.raises(UnlearnBenchError, match="is an outlier suite: its columns are the fractions ρ"):
        run_suite("tiny_outlier_suite", ks=[4], results_dir=str(tmp_path / "runs"), progress=False)


def test_a_suite_of_named_scenarios_changes_them_per_row_and_leaves_cells_a_row_does_not_run_in_empty(tmp_path):
    """Seed 004's tables: a column per scenario (each with the original its training set asks for), "(3%)" rows that
    change the column's scenario, rows run in some columns only (the paper's "–") or with some seeds only (its Oracles)."""
    c3, noisy = Request("class 3", "WholeClasses", {"classes": [3]}), Request("noisy 10 %", "Outliers", {"rho": 0.1})
    finetune = {"budget": {"max_epochs": 1}}
    tiny = Suite(title="tiny requests", dataset="digits", ks=(), requests=(c3, noisy), seeds=(0, 1), arch="small_cnn", recipe="smoke",
                 evaluation=Evaluation(mia=False), rows=(Row("Original", "Original"), Row("FT", "FineTune", finetune),
                                                         Row("FT (30%)", "FineTune", finetune, {"fraction": 0.3}, columns=("class 3",), seeds=(1,))),
                 main_metrics=("forget/acc", "test/acc"), companion_metrics=("cost/seconds",), metric_labels={"forget/acc": "D_e given"})
    SUITES.register("tiny_request_suite")(tiny)
    result = run_suite("tiny_request_suite", results_dir=str(tmp_path / "runs"), out=str(tmp_path / "t.md"), progress=False)
    assert len(result["records"]) == 9 and [r["seed"] for r in result["records"] if r["row"] == "FT (30%)"] == [1]
    text = (tmp_path / "t.md").read_text()
    header = next(line for line in text.splitlines() if "class 3" in line and "|" in line)
    assert [cell.strip() for cell in header.split("|")[2:]] == ["class 3", "noisy 10 %"]
    few = next(line for line in text.splitlines() if "FT (30%)" in line)
    assert any(line.startswith("D_e given") for line in text.splitlines())
    assert few.split("|")[-1].strip() == "–" and few.split("|")[2].strip() != "–"
    runs = {(r["row"], r["column"].label): r for r in result["records"] if r["seed"] == 1}
    whole, part = (runs[row, "class 3"]["scenario"] for row in ("FT", "FT (30%)"))
    assert "fraction" not in whole and part["fraction"] == 0.3
    assert runs["Original", "class 3"]["metrics"]["test/acc"] != runs["Original", "noisy 10 %"]["metrics"]["test/acc"]  # (two originals)


@pytest.mark.parametrize("name", SUITES.names())
def test_every_registered_suites_rows_name_registered_methods_with_valid_settings(name):
    """A typo in a paper table's row (method, hyperparameter, scenario change, column) fails here, not an hour into a run."""
    suite = SUITES.get(name)
    labels = {column_label(k) for k in columns(suite)}
    for row in suite.rows:
        METHODS.get(row.method)(**row.init)
        assert row.columns is None or set(row.columns) <= labels, (row.label, row.columns)
        assert any(row.runs_in(k) for k in columns(suite)), row.label


def test_a_suites_runs_are_a_sweep_a_run_recorded_before_is_left_out_and_the_tables_read_the_records(tmp_path, capsys):
    """`cli.py suite NAME` runs its runs as a sweep (`--executor ray` puts the same runs on Ray; the executors are tested
    in test_sweep.py); a run recorded before is left out; the tables come from the records; a rerun runs nothing."""
    SUITES.register("tiny_sweep_suite")(replace(TINY, ks=(8,)))
    runs = str(tmp_path / "runs")
    first = run_suite("tiny_sweep_suite", seeds=[0], results_dir=runs, out=str(tmp_path / "first.md"), progress=False)
    planned = run_suite("tiny_sweep_suite", seeds=[0, 1], results_dir=runs, progress=False, plan=True)["plan"]
    assert planned["runs"] == 2 and planned["ran"] == 0 and "2 more recorded before" in capsys.readouterr().err
    both = run_suite("tiny_sweep_suite", seeds=[0, 1], results_dir=runs, out=str(tmp_path / "both.md"), progress=False)
    assert len(both["records"]) == 4 and {r["config"]["suite"] for r in both["records"]} == {"tiny_sweep_suite"}
    assert all(r["config"]["sweep"]["key"] for r in both["records"]) and {r["path"] for r in first["records"]} < {r["path"] for r in both["records"]}
    states = [json.loads(p.read_text()) for p in (tmp_path / "runs" / "sweep" / "results").glob("*.json")]
    assert len(states) == 4 and all(s["status"] == "done" for s in states)
    again = run_suite("tiny_sweep_suite", seeds=[0, 1], results_dir=runs, out=str(tmp_path / "again.md"), progress=False)
    assert {r["path"]: r["created"] for r in again["records"]} == {r["path"]: r["created"] for r in both["records"]}
    assert (tmp_path / "again.md").read_text().split("```")[1] == (tmp_path / "both.md").read_text().split("```")[1]
