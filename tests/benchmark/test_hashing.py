"""Content hashes: an original model's identity (tracks) and the key of cached adversarial sets."""

import torch

from benchmark.core.hashing import state_dict_sha256, tensors_sha256


def test_the_models_hash_covers_batchnorm_counters_and_changes_with_them():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    before = state_dict_sha256(model)
    model[1].num_batches_tracked += 1  # a 0-d tensor
    assert state_dict_sha256(model) != before


def test_the_hash_ignores_layout_but_not_values_names_or_the_extra_text():
    x = torch.arange(12.0).reshape(3, 4)
    reference = tensors_sha256({"x": x})
    assert tensors_sha256({"x": x.t().contiguous().t()}) == reference  # same values, another memory layout
    assert tensors_sha256({"x": x + 1}) != reference
    assert tensors_sha256({"y": x}) != reference
    assert tensors_sha256({"x": x}, extra="eps=4.0") != reference
