import json

import pytest

from datamodules.requests import ForgetRequest, RequestError, TrainingCorruption


def make_request(**overrides) -> ForgetRequest:
    fields = dict(dataset="digits", num_train=100, forget_indices=(3, 7, 42), new_labels=(1, 2, 3),
                  corruption=TrainingCorruption((5,), (9,)), scenario={"kind": "test"})
    return ForgetRequest(**{**fields, **overrides})


def test_round_trip_keeps_content_and_hash(tmp_path):
    request = make_request()
    loaded = ForgetRequest.load(request.save(tmp_path / "r.json"))
    assert loaded == request
    assert loaded.hash == request.hash
    assert json.loads((tmp_path / "r.json").read_text())["hash"] == request.hash


def test_hash_depends_on_content():
    assert make_request().hash != make_request(forget_indices=(3, 7, 43)).hash
    assert make_request().corruption_hash == make_request(forget_indices=(1,), new_labels=None).corruption_hash


def test_a_retain_subset_round_trips_and_requests_without_one_keep_their_hash(tmp_path):
    """Committed leaderboard entries name requests by hash: the field added for seed 002's D_r_sub leaves them as they were."""
    plain = make_request()
    assert "retain_subset" not in plain.content()
    with_subset = make_request(retain_subset=(1, 2, 10))
    assert with_subset.hash != plain.hash and ForgetRequest.load(with_subset.save(tmp_path / "r.json")) == with_subset


def test_edited_file_is_rejected(tmp_path):
    path = make_request().save(tmp_path / "r.json")
    record = json.loads(path.read_text())
    record["forget_indices"][0] = 4
    path.write_text(json.dumps(record))
    with pytest.raises(RequestError, match="does not match its content"):
        ForgetRequest.load(path)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"forget_indices": (3, 100, 1), "new_labels": None}, "out of range"),
        ({"forget_indices": (3, 3, 1), "new_labels": None}, "more than once"),
        ({"new_labels": (1, 2)}, "new_labels for 3"),
        ({"new_labels": (1, 2, 10)}, "outside"),
        ({"forget_indices": (), "new_labels": None}, "empty"),
        ({"retain_subset": (1, 2, 2)}, "retain_subset indices must be distinct"),
        ({"retain_subset": (1, 7)}, "retain_subset holds forget index 7"),
    ],
)
def test_invalid_requests_name_the_problem(overrides, message):
    with pytest.raises(RequestError, match=message):
        make_request(**overrides).validate(num_classes=10)
