"""Datasets read from image folders, on tiny fixtures in each dataset's native layout."""

import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

import datamodules.datasets.imagenet  # noqa: F401  (registration)
import datamodules.datasets.tiny_imagenet  # noqa: F401
import datamodules.datasets.utkface  # noqa: F401
from datamodules.datasets import DatasetNotFoundError, ImageTensorDataset, load_dataset
from datamodules.datasets.folders import ImageFileDataset, stratified_split
from datamodules.datasets.utkface import age_group
from datamodules.datasets.vggface2 import vggface2_identities

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]


def write_jpeg(path, colour, size=(8, 8)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, quality=95)


def colour_of(x: torch.Tensor) -> tuple[float, ...]:
    return tuple(x.mean((-2, -1)).tolist())


def assert_colour(x: torch.Tensor, label: int) -> None:
    assert colour_of(x) == pytest.approx([c / 255 for c in COLOURS[label % len(COLOURS)]], abs=0.03)


def assert_loads_in_workers(dataset, size: int) -> None:
    """As the scenario loads it: two workers, the dataset's own collate function (default when it has none)."""
    loader = DataLoader(dataset, batch_size=2, num_workers=2, collate_fn=getattr(dataset, "collate_fn", None))
    batches = list(loader)
    x, y = batches[0]
    assert x.shape == (min(2, len(dataset)), 3, size, size) and x.dtype == torch.float32 and y.dtype == torch.long
    assert all(0.0 <= b[0].min() and b[0].max() <= 1.0 for b in batches)
    assert torch.equal(torch.cat([b[1] for b in batches]), dataset.targets)


# ---- ImageFileDataset and helpers ----
def test_image_file_dataset_center_crops_and_subsets(tmp_path):
    image = Image.new("RGB", (16, 8), COLOURS[1])
    image.paste(COLOURS[0], (4, 0, 12, 8))
    image.save(tmp_path / "wide.png")
    write_jpeg(tmp_path / "small.jpg", COLOURS[2], (4, 4))
    dataset = ImageFileDataset([tmp_path / "wide.png", tmp_path / "small.jpg"], [0, 2], image_size=8)
    x, y = dataset[0]
    assert x.shape == (3, 8, 8) and y.item() == 0 and colour_of(x) == pytest.approx((1.0, 0.0, 0.0))
    assert dataset[1][0].shape == (3, 8, 8)
    relabeled = dataset.subset([1], torch.tensor([3]))
    assert relabeled.path(0) == tmp_path / "small.jpg" and relabeled.targets.tolist() == [3] and not relabeled.in_memory
    assert len(dataset.subset([])) == 0
    memory = dataset.to_memory(num_workers=2)
    assert isinstance(memory, ImageTensorDataset) and torch.equal(memory[0][0], x) and memory.targets.tolist() == [0, 2]


def test_unreadable_image_is_a_one_line_error(tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    dataset = ImageFileDataset([tmp_path / "broken.jpg"], [0], image_size=8, name="demo")
    with pytest.raises(DatasetNotFoundError, match=r"^demo: cannot read image .*broken.jpg"):
        dataset[0]
    with pytest.raises(DatasetNotFoundError, match=r"^demo: cannot read image .*broken.jpg \(UnidentifiedImageError: [^\n]*$"):
        dataset.to_memory(num_workers=2)


def test_stratified_split_is_seeded_and_per_class():
    dataset = ImageTensorDataset(torch.zeros(30, 1, 2, 2), torch.arange(30) % 3)
    train, test = stratified_split(dataset, 0.2, seed=0)
    again = stratified_split(dataset, 0.2, seed=0)[1]
    assert (len(train), len(test)) == (24, 6) and torch.bincount(test.targets).tolist() == [2, 2, 2]
    assert torch.equal(test.targets, again.targets)


# ---- Tiny-ImageNet ----
TINY_WNIDS = ["n02085620", "n01443537", "n01629819"]  # sorted: n01443537 → 0, n01629819 → 1, n02085620 → 2


@pytest.fixture
def tiny_root(tmp_path):
    folder = tmp_path / "tiny-imagenet-200"
    folder.mkdir()
    (folder / "wnids.txt").write_text("\n".join(TINY_WNIDS) + "\n")
    (folder / "words.txt").write_text("n00001740\tentity\nn01443537\tgoldfish, Carassius auratus\nn01629819\tEuropean fire salamander\nn02085620\tChihuahua\n")
    for label, wnid in enumerate(sorted(TINY_WNIDS)):
        (folder / "train" / wnid).mkdir(parents=True)
        (folder / "train" / wnid / f"{wnid}_boxes.txt").write_text(f"{wnid}_0.JPEG\t0\t0\t63\t63\n")
        for i in range(2):
            write_jpeg(folder / "train" / wnid / "images" / f"{wnid}_{i}.JPEG", COLOURS[label], (64, 64))
        write_jpeg(folder / "val" / "images" / f"val_{label}.JPEG", COLOURS[label], (64, 64))
    (folder / "val" / "val_annotations.txt").write_text("".join(f"val_{i}.JPEG\t{w}\t0\t0\t63\t63\n" for i, w in enumerate(sorted(TINY_WNIDS))))
    return tmp_path


def test_tiny_imagenet_reads_official_layout(tiny_root):
    data = load_dataset("tiny_imagenet", tiny_root)
    assert isinstance(data.train, ImageTensorDataset) and (len(data.train), len(data.test)) == (6, 3)
    assert data.train.targets.tolist() == [0, 0, 1, 1, 2, 2] and data.test.targets.tolist() == [0, 1, 2]
    x, y = data.train.__getitems__([0, 2, 4])
    assert x.shape == (3, 3, 64, 64) and y.tolist() == [0, 1, 2]
    for image, label in zip(x, y.tolist()):
        assert_colour(image, label)
    assert_colour(data.test[2][0], 2)
    info = data.info
    assert (info.num_classes, info.image_size, info.train_augment) == (3, 64, "crop_flip")
    assert info.class_names == ("goldfish, Carassius auratus", "European fire salamander", "Chihuahua")
    assert data.train.subset([5, 1]).targets.tolist() == [2, 0]
    assert_loads_in_workers(data.train, 64)


def test_tiny_imagenet_default_root_is_home_data(tiny_root, tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tiny_root / "tiny-imagenet-200").rename(tmp_path / "data" / "tiny-imagenet-200")
    monkeypatch.setenv("UNLEARNBENCH_HOME", str(tmp_path))
    assert len(load_dataset("tiny_imagenet").train) == 6


def test_tiny_imagenet_missing(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"^tiny_imagenet: nothing found at .*nowhere/tiny-imagenet-200; download http://cs231n.stanford.edu/tiny-imagenet-200.zip"):
        load_dataset("tiny_imagenet", tmp_path / "nowhere")


def test_tiny_imagenet_malformed(tiny_root):
    annotations = tiny_root / "tiny-imagenet-200" / "val" / "val_annotations.txt"
    annotations.write_text(annotations.read_text() + "val_9.JPEG\tn99999999\t0\t0\t1\t1\n")
    with pytest.raises(DatasetNotFoundError, match=r"^tiny_imagenet: unexpected layout at .*val_annotations.txt \(line 4 is not"):
        load_dataset("tiny_imagenet", tiny_root)
    annotations.write_text(annotations.read_text().replace("val_9.JPEG\tn99999999", "val_9.JPEG\tn01443537"))
    with pytest.raises(DatasetNotFoundError, match=r"^tiny_imagenet: cannot read image .*val_9.JPEG"):
        load_dataset("tiny_imagenet", tiny_root)


# ---- ImageNet-1K and ImageNet-A ----
IMAGENET_INDEX = {"n01440764": 0, "n01498041": 6, "n01531178": 11, "n01534433": 13}  # tench, stingray, goldfinch, junco


def test_wnid_indices_match_timm():
    from timm.data import ImageNetInfo

    names = ImageNetInfo().label_names()
    assert {wnid: names.index(wnid) for wnid in IMAGENET_INDEX} == IMAGENET_INDEX


@pytest.fixture
def imagenet_root(tmp_path):
    for split, count in (("train", 2), ("val", 1)):
        for wnid in ("n01531178", "n01440764", "n01498041"):
            for i in range(count):
                write_jpeg(tmp_path / "imagenet" / split / wnid / f"{wnid}_{i}.JPEG", COLOURS[IMAGENET_INDEX[wnid] % 4], (70, 90))
    return tmp_path


def test_imagenet_reads_image_folders_with_standard_indices(imagenet_root):
    data = load_dataset("imagenet", imagenet_root)
    assert data.train.targets.tolist() == [0, 0, 6, 6, 11, 11] and data.test.targets.tolist() == [0, 6, 11]
    x, y = data.train[2]
    assert x.shape == (3, 224, 224) and y.item() == 6
    assert_colour(x, 6)
    info = data.info
    assert (info.num_classes, len(info.class_names), info.image_size, info.train_augment) == (1000, 1000, 224, "flip")
    assert info.class_names[6] == "stingray" and info.mean == (0.485, 0.456, 0.406)
    part = data.train.subset([4, 1])
    assert [part.path(i).name for i in range(2)] == ["n01531178_0.JPEG", "n01440764_1.JPEG"] and part.targets.tolist() == [11, 0]
    assert_loads_in_workers(data.test, 224)


def test_imagenet_missing(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"^imagenet: nothing found at .*/imagenet; download ILSVRC2012 from https://image-net.org"):
        load_dataset("imagenet", tmp_path)


def test_imagenet_malformed(imagenet_root):
    (imagenet_root / "imagenet" / "val" / "cats").mkdir()
    with pytest.raises(DatasetNotFoundError, match=r"^imagenet: unexpected layout at .*val \(1 folder\(s\) are not known classes, e.g. 'cats'\)"):
        load_dataset("imagenet", imagenet_root)


@pytest.fixture
def imagenet_a_root(tmp_path):
    folder = tmp_path / "imagenet-a"
    for wnid, count in (("n01534433", 1), ("n01498041", 2), ("n01531178", 1)):
        for i in range(count):
            write_jpeg(folder / wnid / f"0.{wnid}_{i}.jpg", COLOURS[IMAGENET_INDEX[wnid] % 4], (80, 60))
    (folder / "README.txt").write_text("ImageNet-A: natural adversarial examples\n")
    return tmp_path


def test_imagenet_a_maps_to_imagenet_indices(imagenet_a_root):
    data = load_dataset("imagenet_a", imagenet_a_root)
    assert data.train.targets.tolist() == [6, 6, 11, 13] and len(data.test) == 0
    assert data.info.num_classes == 1000 and data.info.class_names[13] == "junco, snowbird"
    x, y = data.train[3]
    assert x.shape == (3, 224, 224) and y.item() == 13
    assert_colour(x, 13)
    assert load_dataset("imagenet_a", imagenet_a_root / "imagenet-a").train.targets.tolist() == [6, 6, 11, 13]
    assert_loads_in_workers(data.train, 224)


def test_imagenet_a_missing(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"^imagenet_a: nothing found at .*imagenet-a; download https://people.eecs.berkeley.edu/~hendrycks/imagenet-a.tar"):
        load_dataset("imagenet_a", tmp_path)


def test_imagenet_a_malformed(imagenet_a_root):
    for f in (imagenet_a_root / "imagenet-a").rglob("*.jpg"):
        f.unlink()
    with pytest.raises(DatasetNotFoundError, match=r"^imagenet_a: unexpected layout at .*imagenet-a \(no image files in the class folders\)"):
        load_dataset("imagenet_a", imagenet_a_root)


# ---- UTKFace ----
UTK_AGES = [0, 5, 10, 15, 19, 20, 25, 30, 35, 40, 41, 50, 60, 90, 116]


@pytest.fixture
def utk_root(tmp_path):
    folder = tmp_path / "UTKFace"
    for i, age in enumerate(UTK_AGES):
        write_jpeg(folder / f"{age}_{i % 2}_{i % 5}_2017011617452{i:04d}.jpg.chip.jpg", COLOURS[age_group(f"{age}_0_0_1.jpg")], (20, 20))
    write_jpeg(folder / "39_1_20170116174525125.jpg.chip.jpg", COLOURS[1], (20, 20))  # an official name without race
    write_jpeg(folder / "portrait.jpg", COLOURS[3])
    return tmp_path


def test_utkface_age_groups():
    assert [age_group(f"{age}_0_1_20170109150557335.jpg.chip.jpg") for age in (5, 19, 20, 40, 41, 90)] == [0, 0, 1, 1, 2, 2]
    assert age_group("25_1_2_20170116174525125.jpg") == 1
    assert [age_group(name) for name in ("portrait.jpg", "117_0_0_2017.jpg", "x5_0_0_2017.jpg.chip.jpg", "5_0_0_2017.png")] == [None] * 4


def test_utkface_reads_file_names_and_splits(utk_root):
    data = load_dataset("utkface", utk_root)
    assert (len(data.train), len(data.test)) == (13, 3)
    assert torch.bincount(data.test.targets).tolist() == [1, 1, 1]  # round(0.2 · 5) = round(0.2 · 6) = 1 per group
    names = {data.train.path(i).name for i in range(len(data.train))} | {data.test.path(i).name for i in range(len(data.test))}
    assert len(names) == 16 and "portrait.jpg" not in names
    for dataset in (data.train, data.test):
        for i in range(len(dataset)):
            assert age_group(dataset.path(i).name) == dataset.targets[i].item()
    x, y = data.test[0]
    assert x.shape == (3, 224, 224)
    assert_colour(x, y.item())
    assert "1 malformed file name(s) skipped, e.g. 'portrait.jpg'" in data.info.source
    assert data.info.class_names == ("0-19", "20-40", "41-116") and data.info.train_augment == "flip"
    again = load_dataset("utkface", utk_root)
    assert [again.test.path(i) for i in range(3)] == [data.test.path(i) for i in range(3)]
    assert_loads_in_workers(data.test, 224)


def test_utkface_missing(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"^utkface: nothing found at .*/UTKFace; download UTKFace.tar.gz"):
        load_dataset("utkface", tmp_path)


def test_utkface_without_parsable_names(tmp_path):
    write_jpeg(tmp_path / "UTKFace" / "portrait.jpg", COLOURS[0])
    with pytest.raises(DatasetNotFoundError, match=r"^utkface: unexpected layout at .*UTKFace \(no file name parses"):
        load_dataset("utkface", tmp_path)


# ---- VGGFace2 ----
@pytest.fixture
def vggface_root(tmp_path):
    for k, count in enumerate((5, 5, 2, 5, 5)):
        for i in range(count):
            write_jpeg(tmp_path / "vggface2" / "train" / f"n00000{k + 1}" / f"{i:04d}_01.jpg", COLOURS[k % 4], (12, 16))
    return tmp_path


def test_vggface2_chooses_identities_with_enough_images(vggface_root):
    load = vggface2_identities(3, seed=0, min_images=5)
    data = load(vggface_root)
    ids = data.info.class_names
    assert data.info.name == "vggface2_3" and len(ids) == 3 and list(ids) == sorted(ids) and "n000003" not in ids
    assert (len(data.train), len(data.test)) == (12, 3)
    assert torch.bincount(data.train.targets).tolist() == [4, 4, 4] and data.test.targets.tolist() == [0, 1, 2]
    for i in range(len(data.test)):
        assert data.test.path(i).parent.name == ids[data.test.targets[i]]
    x, y = data.test[1]
    assert x.shape == (3, 224, 224)
    assert_colour(x, int(ids[1][-1]) - 1)
    assert load(vggface_root).info.class_names == ids
    assert_loads_in_workers(data.train, 224)


def test_vggface2_missing(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"^vggface2_100: nothing found at .*/vggface2; VGGFace2 is no longer served"):
        load_dataset("vggface2_100", tmp_path)


def test_vggface2_too_few_identities(vggface_root):
    with pytest.raises(DatasetNotFoundError, match=r"^vggface2_100: unexpected layout at .*train \(0 of 5 identity folders have ≥ 100 images, 100 needed\)"):
        load_dataset("vggface2_100", vggface_root)
