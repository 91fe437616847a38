"""The result record: real records round-trip byte for byte, follow the schema, and a bad file is a one-line error."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import fields, replace

import pytest

import datamodules
import methods
from benchmark.core.errors import UnlearnBenchError
from benchmark.core.record import OPTIONAL, RECORD_SCHEMA, ResultRecord, dump_record, load_record, read_records, run_identity, schema_error
from benchmark.experiment import runner
from benchmark.metrics.evaluator import Evaluation
from benchmark.models.pretraining import Pretrained


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> list[dict]:
    """Records as `runner.run` writes them: the original model; then NegGrad with curves, figures and its speed-up over a
    Retrain record (the original's, renamed: retraining takes minutes on a CPU)."""
    results = str(tmp_path_factory.mktemp("results"))
    original = runner.run(methods.Original(), datamodules.scenarios.RandomInstances(k=16), Pretrained(), results_dir=results, progress=False)
    retrain = replace(load_record(original["path"]), method="Retrain", timings={"cost/seconds": 100.0})
    dump_record(retrain, runner.record_path(retrain.to_dict(), results))
    neggrad = runner.run(methods.NegGrad(budget={"max_epochs": 2, "stop": "none"}), datamodules.scenarios.RandomInstances(k=16), Pretrained(), results_dir=results,
                         progress=False, evaluation=Evaluation(mia=False, curves=True, figures=True))
    bf16 = runner.run(methods.NegGrad(budget={"max_epochs": 2, "stop": "none"}), datamodules.scenarios.RandomInstances(k=16), Pretrained(), results_dir=results,
                      progress=False, evaluation=Evaluation(mia=False), trainer_kwargs={"precision": "bf16-mixed"})
    return [original, neggrad, bf16]


def test_the_records_cover_the_optional_fields(written):
    assert "cost/speedup_vs_retrain" in written[1]["timings"] and written[1]["figures"] and written[1]["curves"]
    assert all(record["weights"] and record["path"] for record in written)


def test_a_fit_in_other_numerics_is_another_record_and_one_in_lightnings_defaults_keeps_its_file_name(written):
    """fp32 and bf16 fits of one configuration never overwrite each other; records of default numerics keep the
    file names they had before numerics joined the run's identity."""
    fp32, bf16 = written[1], written[2]
    assert bf16["numerics"] == {"precision": "bf16-mixed"} and "numerics" not in fp32
    assert bf16["path"] != fp32["path"] and load_record(fp32["path"]).method == "NegGrad"
    assert fp32["path"].endswith(f"NegGrad-{run_identity('NegGrad', fp32['hparams'], fp32['pretrained'])}-seed0.json")


def test_a_real_record_round_trips_byte_for_byte(written, tmp_path):
    for returned in written:
        text = open(returned["path"]).read()
        record = load_record(returned["path"])
        assert isinstance(record, ResultRecord) and record.method == returned["method"] and record.request.hash == returned["request"]["hash"]
        assert json.dumps(record.to_dict()) == json.dumps(returned) == json.dumps(json.loads(text))  # as text: curves may hold NaN
        assert list(record.to_dict()) == list(json.loads(text))  # key order
        assert ResultRecord.from_dict(record.to_dict()) == record
        dump_record(record, tmp_path / "copy.json")
        assert (tmp_path / "copy.json").read_text() == text


def test_every_written_record_follows_the_schema(written):
    folder = written[0]["path"].rsplit("/", 3)[0]
    on_disk = read_records(folder)
    assert len(on_disk) == len(written) + 1  # and the Retrain record
    for record in on_disk:
        assert schema_error(json.loads(open(record.path).read()), RECORD_SCHEMA) is None


def test_the_schema_and_the_dataclass_have_the_same_fields():
    names = [f.name for f in fields(ResultRecord)]
    assert list(RECORD_SCHEMA["properties"]) == names
    assert RECORD_SCHEMA["required"] == [name for name in names if name not in OPTIONAL]
    assert RECORD_SCHEMA["additionalProperties"] is False


@pytest.mark.parametrize("change, problem", [
    (lambda r: r.pop("seed"), "seed: missing"),
    (lambda r: r["request"].pop("hash"), "request.hash: missing"),
    (lambda r: r.update(seed=True), "seed: expected integer, got bool"),
    (lambda r: r.update(seed="0"), "seed: expected integer, got str"),
    (lambda r: r["metrics"].update({"forget/acc": "0.5"}), "metrics.forget/acc: expected number or null, got str"),
    (lambda r: r.update(diverged={"epoch": 0}), "diverged.step: missing"),
    (lambda r: r["curves"].update({"forget/acc": [0.5, None]}), "curves.forget/acc[1]: expected number, got null"),
    (lambda r: r.update(extra=1), "extra: not a field of a result record"),
    (lambda r: r["hardware"].update(devices=1.0), "hardware.devices: expected integer, got float"),
])
def test_the_schema_names_the_first_problem(written, change, problem):
    data = copy.deepcopy(written[1])
    change(data)
    assert schema_error(data, RECORD_SCHEMA) == problem
    with pytest.raises(UnlearnBenchError, match=f"^my.json is not a valid result record: {re.escape(problem)}$"):
        ResultRecord.from_dict(data, "my.json")


@pytest.mark.parametrize("content, message", [
    (None, "result record {path} does not exist"),
    ('{"method": "NegGrad", "metrics": {', "result record {path} is not readable as JSON (Expecting "),
    ("[1, 2]", "{path} is not a valid result record: expected a JSON object"),
    ('{"dataset": "digits", "forget_indices": [1, 2]}', "{path} is not a valid result record: method: missing"),
])
def test_a_missing_corrupt_or_other_file_is_a_one_line_error(tmp_path, content, message):
    path = tmp_path / "NegGrad-seed0.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UnlearnBenchError) as error:
        load_record(path)
    assert str(error.value).startswith(message.format(path=path)) and "\n" not in str(error.value)
