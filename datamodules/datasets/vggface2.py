"""VGGFace2 (Cao et al. 2018) identity subsets: seed 002's (Tarun et al., UNSIR) "VGGFace-100".

Seed 002 uses "100 face IDs collected from the VGGFaces2" without saying which. Ours: shuffle the
identity folders of `vggface2/train/` with seed 0 and keep the first N that have at least
`min_images` (100) images, so every identity has ≥ 80 training and ≥ 20 test images (VGGFace2 has
≈362 images per identity on average, so nearly all qualify). The choice depends only on the set of
identity folders present. Labels follow the sorted chosen identities; a per-identity seeded 80/20
train/test split (the identities of VGGFace2's own test set are disjoint from its train set, so it
cannot serve). Images: shorter side resized to 224, center crop 224; "flip" augmentation.
`register_dataset("vggface2_10")(vggface2_identities(10))` registers another subset.
"""

from collections.abc import Callable
from pathlib import Path

import torch

from datamodules.datasets import DatasetInfo, DatasetSplits, register_dataset
from datamodules.datasets.folders import IMAGENET_MEAN, IMAGENET_STD, ImageFileDataset, find_dir, image_files, malformed, not_found, stratified_split, subfolders

HOW_TO_GET = (
    "VGGFace2 is no longer served by its authors: extract a copy's training set into --data.data_root "
    "(default $UNLEARNBENCH_HOME/data) so that vggface2/train/<identity, e.g. n000002>/*.jpg exist"
)


def vggface2_identities(num_identities: int, seed: int = 0, min_images: int = 100, name: str | None = None) -> Callable[[Path | None], DatasetSplits]:
    """A dataset loader for `num_identities` identities drawn with `seed` among those with ≥ `min_images` images."""
    name = name or f"vggface2_{num_identities}"

    def load(root: Path | None = None) -> DatasetSplits:
        train_dir = find_dir(name, root, "vggface2", HOW_TO_GET) / "train"
        if not train_dir.is_dir():
            raise not_found(name, train_dir, HOW_TO_GET)
        identities = subfolders(train_dir)
        chosen: dict[str, list[Path]] = {}
        for i in torch.randperm(len(identities), generator=torch.Generator().manual_seed(seed)).tolist():
            if len(chosen) == num_identities:
                break
            files = image_files(train_dir / identities[i])
            if len(files) >= min_images:
                chosen[identities[i]] = files
        if len(chosen) < num_identities:
            raise malformed(name, train_dir, f"{len(chosen)} of {len(identities)} identity folders have ≥ {min_images} images, {num_identities} needed", HOW_TO_GET)
        ids = sorted(chosen)
        files = [f for identity in ids for f in chosen[identity]]
        targets = [label for label, identity in enumerate(ids) for _ in chosen[identity]]
        train, test = stratified_split(ImageFileDataset(files, targets, image_size=224, name=name), test_fraction=0.2, seed=seed)
        info = DatasetInfo(
            name=name,
            num_classes=num_identities,
            channels=3,
            image_size=224,
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            class_names=tuple(ids),
            source=f"VGGFace2 train at {train_dir}: {num_identities} identities (seed {seed}, ≥ {min_images} images each), per-identity 80/20 split",
            train_augment="flip",
        )
        return DatasetSplits(train, test, info)

    return load


vggface2_100 = register_dataset("vggface2_100")(vggface2_identities(100))
