import torch

from datamodules.datasets.augment import AUGMENTATIONS, crop_flip


def test_crop_flip_is_a_shifted_window_of_the_padded_image_or_its_mirror():
    torch.manual_seed(0)
    x = torch.rand(64, 3, 8, 8)
    out = crop_flip(x, padding=2)
    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x, (2,) * 4)
    for i in range(len(x)):
        windows = [padded[i, :, dy:dy + 8, dx:dx + 8] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(out[i], w) or torch.equal(out[i], w.flip(-1)) for w in windows)
    assert not torch.equal(out, x)


def test_without_padding_crop_flip_only_flips():
    x = torch.rand(32, 1, 5, 5)
    out = crop_flip(x, padding=0)
    flipped = [torch.equal(o, i.flip(-1)) for o, i in zip(out, x)]
    assert all(torch.equal(o, i) or f for o, i, f in zip(out, x, flipped)) and 0 < sum(flipped) < len(x)


def test_every_augmentation_keeps_shape():
    x = torch.rand(4, 3, 32, 32)
    for name in AUGMENTATIONS.names():
        assert AUGMENTATIONS.get(name)(x).shape == x.shape


def test_a_training_module_may_bring_its_own_augmentation():
    """A pretraining recipe's `augment` (Retrain's `train_augment`) replaces the dataset's; evaluation is never augmented."""
    from types import SimpleNamespace

    from datamodules.scenarios import RandomInstances

    scenario = RandomInstances(k=8)
    scenario.setup()
    assert scenario.info.train_augment is None
    x = torch.rand(64, 1, 8, 8)
    for module, training, changed in ((SimpleNamespace(), True, False), (SimpleNamespace(train_augment="flip"), True, True),
                                      (SimpleNamespace(train_augment="flip"), False, False)):
        scenario.trainer = SimpleNamespace(lightning_module=module, training=training)
        out = scenario.on_after_batch_transfer({"retain": [x, torch.zeros(64)]}, 0)["retain"][0]
        assert (not torch.equal(out, x)) == changed


def test_a_method_may_have_its_own_batch_keys_augmented():
    """Batches keyed by a split or by one of the module's `augmented_keys` are augmented; other keys (data a method made
    itself, or batches its authors never augmented) are not."""
    from types import SimpleNamespace

    from datamodules.scenarios import RandomInstances

    scenario = RandomInstances(k=8)
    scenario.setup()
    x = torch.rand(64, 1, 8, 8)
    module = SimpleNamespace(train_augment="flip", augmented_keys=("unlearn",))
    scenario.trainer = SimpleNamespace(lightning_module=module, training=True)
    out = scenario.on_after_batch_transfer({"retain": [x, 0], "unlearn": [x, 0, 1], "adversarial": [x, 0]}, 0)
    assert not torch.equal(out["retain"][0], x) and not torch.equal(out["unlearn"][0], x) and out["unlearn"][1:] == [0, 1]
    assert torch.equal(out["adversarial"][0], x)
