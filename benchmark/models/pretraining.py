"""Training from scratch with a documented recipe, cached: the original model and Retrain.

The original model is trained on the full training set as the request's training-time corruption
says; Retrain is the same recipe on the retain set. Both are cached under a key made of (dataset,
architecture, recipe, seed, training set): the original's training set is the empty request's retain set,
which carries only the corruption, so the two share one code path and one cache.
"""

from __future__ import annotations

import io
import json
import math
import pickle
import re
import typing
import zipfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

import torch

from benchmark.core.errors import UnlearnBenchError
from benchmark.core.paths import atomic_write_bytes, home
from benchmark.core.registry import Registry
from benchmark.models import Classifier, create_model
from datamodules.datasets import DatasetInfo, load_dataset
from datamodules.requests import ForgetRequest, content_hash


ADDED_FIELDS = {"precision": None, "channels_last": False, "compile": False}
"""`Recipe` fields added after caches were first keyed, with their defaults (`Recipe.key_fields`)."""

Precision = Literal["32-true", "bf16-mixed", "16-mixed", "bf16-true", "64-true"]
PRECISIONS = typing.get_args(Precision)
"""Lightning's precision names a recipe may give (`Recipe.precision`)."""

MILESTONES = (0.5, 0.75)
"""Where a `multistep` schedule decays, as fractions of the training."""


@dataclass(frozen=True)
class Recipe:
    """How a model is trained: optimizer, learning rate, schedule, epochs, batch size, the batch augmentation
    (`augment`, a name of `datamodules.datasets.augment`; None: the dataset's `train_augment`), gradient clipping by
    value (`clip_value`; None: none) and the initialisation (`init`; None: from scratch; (dataset, recipe): the body of
    the same architecture and seed trained on `dataset` by `recipe`, a fresh head — fine-tuning a pretrained model, as
    seed 002's Tables III / IV do from ImageNet).

    How the arithmetic runs (issue 21), each off by default: `precision`, Lightning's (`bf16-mixed`: autocast to
    bfloat16; None: its default, `32-true`); `channels_last`, the model's weights in NHWC memory format (the layout
    of cuDNN's tensor-core kernels and oneDNN's fastest); `compile`, `torch.compile` of the model. Each changes the
    floating-point results, so a recipe that sets one is another cached original."""

    epochs: int
    batch_size: int
    optimizer: Literal["sgd", "adam"]
    lr: float
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: Literal["constant", "cosine", "multistep"] = "cosine"
    augment: str | None = None
    clip_value: float | None = None
    init: tuple[str, str] | None = None
    precision: Precision | None = None
    channels_last: bool = False
    compile: bool = False

    def __post_init__(self) -> None:
        if self.precision is not None and self.precision not in PRECISIONS:
            raise UnlearnBenchError(f"Recipe.precision {self.precision!r} is not one of Lightning's {', '.join(PRECISIONS)} (or None: its default)")

    @property
    def trainer_precision(self) -> str:
        """The Lightning precision the recipe trains in (its default, `32-true`, when it names none)."""
        return self.precision or "32-true"

    def key_fields(self, left_out_at_default: dict | None = None) -> dict:
        """The fields a cache of what this recipe trains is keyed by: the fields of `ADDED_FIELDS` (and of
        `left_out_at_default`) only where they differ from their default, so caches keyed before they existed keep
        their keys."""
        defaults = {**ADDED_FIELDS, **(left_out_at_default or {})}
        return {k: v for k, v in asdict(self).items() if k not in defaults or v != defaults[k]}

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        """`model` (in place) in the recipe's memory format, compiled if it says so."""
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        if self.compile:
            model.compile()
        return model

    def make_optimizer(self, params) -> torch.optim.Optimizer:
        if self.optimizer == "adam":
            return torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)

    def make_scheduler(self, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler | None:
        """The per-epoch schedule: none (`constant`), cosine to 0 over the epochs, or `multistep` (×0.1 at 1/2 and 3/4 of
        the epochs: seed 003's 80 and 120 of 160)."""
        if self.schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.epochs)
        if self.schedule == "multistep":
            return torch.optim.lr_scheduler.MultiStepLR(optimizer, [int(m * self.epochs) for m in MILESTONES], gamma=0.1)
        return None

    def lr_factor(self, step: int, steps: int) -> float:
        """The schedule's learning rate over the initial one at `step` of `steps` (epochs, or the iterations of a
        compressed replay): `multistep` decays at step int(m · steps) for each milestone m, as `make_scheduler` does."""
        if self.schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * step / steps))
        if self.schedule == "multistep":
            return 0.1 ** sum(step >= int(m * steps) for m in MILESTONES)
        return 1.0


RECIPES: Registry[Recipe] = Registry("recipe")
RECIPES.register("digits")(Recipe(epochs=30, batch_size=32, optimizer="adam", lr=1e-3))
RECIPES.register("fashion_mnist")(Recipe(epochs=20, batch_size=128, optimizer="adam", lr=1e-3))
RECIPES.register("fashion_mnist_sgd")(Recipe(epochs=30, batch_size=128, optimizer="sgd", lr=0.1, weight_decay=5e-4, augment="crop_flip"))
"""`fashion_mnist_sgd`: seed 000's CIFAR recipe (SGD, momentum 0.9, weight decay 5e-4, crop + flip, a decaying schedule) in
30 epochs, for the paper-like original `narrow_resnet18`: an original that is not saturated on its training images."""
RECIPES.register("fashion_mnist_sgd_long")(Recipe(epochs=100, batch_size=128, optimizer="sgd", lr=0.1, weight_decay=5e-4, augment="crop_flip"))
"""`fashion_mnist_sgd_long`: `fashion_mnist_sgd` in 100 epochs instead of 30, toward the paper's fit (99.6 % train on
CIFAR-10, from a 200-epoch schedule). Measured with `narrow_resnet18` (2026-12-04): 96.20 % train, 94.14 % test, against
94.49 / 92.77 % in 30 epochs."""
RECIPES.register("fashion_mnist_sgd_bf16")(replace(RECIPES.get("fashion_mnist_sgd"), precision="bf16-mixed", channels_last=True))
"""`fashion_mnist_sgd_bf16`: `fashion_mnist_sgd` in bf16 autocast with channels_last weights, for a GPU (issue 21's fast
settings): the paper's-recipe original of a wide model (`cifar_resnet18`, the paper's ResNet-18) in minutes on one GPU
(`scripts/gpu_check.sh`). Another original than `fashion_mnist_sgd`'s (its own cache key)."""
RECIPES.register("fashion_mnist_unsir")(Recipe(epochs=40, batch_size=256, optimizer="adam", lr=0.01, weight_decay=1e-4, clip_value=0.1))
"""`fashion_mnist_unsir`: seed 002's original, from scratch to convergence as the authors' notebook trains it (40 epochs,
Adam lr 0.01, weight decay 1e-4, gradients clipped by value at 0.1, batch 256, no augmentation), except for the
schedule: cosine instead of its ReduceLROnPlateau(0.5, 3) on the test split."""
RECIPES.register("fashion_mnist_multistep")(Recipe(epochs=30, batch_size=128, optimizer="sgd", lr=0.1, weight_decay=5e-4, schedule="multistep"))
"""`fashion_mnist_multistep`: seed 003's CIFAR schedule (lr 0.1, ×0.1 at 1/2 and 3/4 of the epochs; its 160 epochs cut to
30), SGD with momentum 0.9 and weight decay 5e-4, no augmentation: the original its masking methods replay."""
RECIPES.register("fashion_mnist_finetune")(Recipe(epochs=5, batch_size=256, optimizer="adam", lr=0.01, weight_decay=1e-4, clip_value=0.1,
                                                  init=("digits28", "digits")))
"""`fashion_mnist_finetune`: seed 002's Tables III / IV fine-tune an ImageNet-pretrained model for 5 epochs; here the body
of the same model trained on `digits28` (scikit-learn's digits at 28 × 28: the other data this machine has) by the
`digits` recipe, fine-tuned 5 epochs on Fashion-MNIST with `fashion_mnist_unsir`'s optimizer."""
RECIPES.register("fashion_sub")(Recipe(epochs=15, batch_size=128, optimizer="sgd", lr=0.05, weight_decay=5e-4, augment="crop"))
"""`fashion_sub`: seed 004's CPU original (the paper gives only its architecture, trained under Φ): SGD with momentum 0.9,
weight decay 5e-4, Φ's random shift as the training augmentation, cosine over 15 epochs — unsaturated, unlike Adam
without weight decay (seed 000's lesson)."""
RECIPES.register("digits_fewshot")(Recipe(epochs=40, batch_size=32, optimizer="sgd", lr=0.05, weight_decay=5e-4, augment="crop"))
"""`digits_fewshot`: `fashion_sub`'s recipe on scikit-learn's digits (seed 004's class tables, 9 / 8 / 7 of MNIST): Φ's
shift of one pixel at 8 × 8, 40 epochs of 45 batches."""
RECIPES.register("cifar")(Recipe(epochs=200, batch_size=128, optimizer="sgd", lr=0.1, weight_decay=5e-4))
RECIPES.register("cifar10_optml")(Recipe(epochs=182, batch_size=256, optimizer="sgd", lr=0.1, weight_decay=5e-4, schedule="multistep"))
"""`cifar10_optml`: the OPTML family's CIFAR-10 original (Unlearn-Saliency @ Classification/arg_parser.py defaults, run by
main_train.py): SGD lr 0.1, momentum 0.9, weight decay 5e-4, batch 256, 182 epochs, ×0.1 at epochs 91 and 136 (`multistep`:
int(½·182), int(¾·182)), random crop (padding 4) + horizontal flip (the dataset's augmentation), no warm-up."""
RECIPES.register("imagenet")(Recipe(epochs=90, batch_size=256, optimizer="sgd", lr=0.1, weight_decay=1e-4))
RECIPES.register("smoke")(Recipe(epochs=1, batch_size=64, optimizer="adam", lr=1e-3, schedule="constant"))
"""`smoke`: one epoch, to check a pipeline end to end on a new dataset or model, not to get a usable model."""


@dataclass
class Pretrained:
    """The original model every method starts from.

    Args:
        arch: registered model name (`python cli.py models`), or any timm model name.
        recipe: pretraining recipe name; default: the recipe named like the dataset, else `cifar`.
        seed: seed of the pretraining (initialisation and data order).
        checkpoint: a state-dict file to use instead of the cache (e.g. an unlearned model to test).
    """

    arch: str = "small_cnn"
    recipe: str | None = None
    seed: int = 0
    checkpoint: str | None = None

    def recipe_name(self, dataset: str) -> str:
        return self.recipe or (dataset if dataset in RECIPES else "cifar")


def build_model(arch: str, info: DatasetInfo, seed: int) -> Classifier:
    """A freshly initialised `arch` for `info`'s images and classes, initialised with `seed`."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return create_model(arch, num_classes=info.num_classes, in_chans=info.channels, image_size=info.image_size, mean=info.mean, std=info.std)


def init_source(pretrained: Pretrained, recipe: Recipe) -> tuple[str, Pretrained]:
    """The dataset and the original whose body `recipe` starts from (its `init`): same architecture and seed."""
    dataset, source_recipe = recipe.init
    return dataset, Pretrained(arch=pretrained.arch, recipe=source_recipe, seed=pretrained.seed)


def initial_model(pretrained: Pretrained, info: DatasetInfo) -> Classifier:
    """What the recipe of `pretrained` trains from: a fresh `build_model`, whose backbone is, when the recipe has an
    `init`, the cached source original's (`init_source`; the head stays fresh, the normalisation is `info`'s)."""
    model = build_model(pretrained.arch, info, pretrained.seed)
    recipe_name = pretrained.recipe_name(info.name)
    recipe = RECIPES.get(recipe_name)
    if recipe.init is None:
        return model
    dataset, source = init_source(pretrained, recipe)
    splits = load_dataset(dataset)
    path = cache_path(source, dataset, ForgetRequest(dataset, len(splits.train), ()).training_set_hash)
    if not path.exists():
        raise UnlearnBenchError(f"recipe {recipe_name} starts from {source.arch} trained on {dataset} by recipe {source.recipe}, which is not "
                                f"trained yet: python cli.py pretrain --dataset {dataset} --arch {source.arch} --recipe {source.recipe} --seed {source.seed}")
    trained = build_model(source.arch, splits.info, source.seed)
    load_checkpoint(path, trained)
    try:
        model.backbone.load_state_dict(trained.backbone.state_dict())
    except RuntimeError as error:
        raise UnlearnBenchError(f"recipe {recipe_name}: {source.arch} trained on {dataset} ({splits.info.channels} × {splits.info.image_size}²) does not "
                                f"fit {info.name}'s images ({info.channels} × {info.image_size}²): {str(error).splitlines()[-1].strip()}") from None
    return model


def cache_path(pretrained: Pretrained, dataset: str, training_set_hash: str) -> Path:
    """`$UNLEARNBENCH_HOME/checkpoints/...`, keyed by what the weights depend on: dataset, model, recipe, seed and the
    training set (`ForgetRequest.training_set_hash`)."""
    recipe_name = pretrained.recipe_name(dataset)
    fields = RECIPES.get(recipe_name).key_fields({"augment": None, "clip_value": None, "init": None})
    key = {"dataset": dataset, "arch": pretrained.arch, "recipe": recipe_name, "recipe_fields": fields, "seed": pretrained.seed, "training_set": training_set_hash}
    return home() / "checkpoints" / dataset / pretrained.arch / f"{recipe_name}-seed{pretrained.seed}-{content_hash(key)[:16]}.pt"


def save_checkpoint(path: Path, model: Classifier, meta: dict) -> None:
    buffer = io.BytesIO()
    torch.save({"state_dict": model.state_dict(), "meta_json": json.dumps(meta)}, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | Path, model: Classifier) -> dict:
    """Load weights into `model` (safely: `weights_only=True`); return the stored metadata."""
    path = Path(path)
    if not path.exists():
        raise UnlearnBenchError(f"checkpoint {path} does not exist")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        if zipfile.is_zipfile(path):
            raise UnlearnBenchError(f"checkpoint {path} holds pickled Python objects, not only tensors, and loading those can run code, "
                                    "which UnlearnBench never does; save the weights instead: torch.save({'state_dict': model.state_dict()}, path)") from None
        raise UnlearnBenchError(f"checkpoint {path} is not a file written by torch.save") from None
    except Exception as error:  # noqa: BLE001 (any other unreadable file gets one line)
        first = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip().splitlines()
        raise UnlearnBenchError(f"checkpoint {path} cannot be read ({type(error).__name__}{': ' + first[0] if first else ''})") from None
    state = blob.get("state_dict", blob) if isinstance(blob, dict) else None
    if not isinstance(state, dict):
        raise UnlearnBenchError(f"checkpoint {path} holds no state dict")
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    mismatched = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or mismatched:
        detail = (f"shape of {mismatched[0]} is {tuple(state[mismatched[0]].shape)}, expected {tuple(expected[mismatched[0]].shape)}" if mismatched
                  else f"missing {missing[:2]}" if missing else f"unexpected {unexpected[:2]}")
        raise UnlearnBenchError(f"checkpoint {path} does not fit {getattr(model, 'arch', type(model).__name__)} with {model.num_classes} classes: {detail}")
    model.load_state_dict(state)
    return json.loads(blob.get("meta_json", "{}")) if "meta_json" in blob else {}
