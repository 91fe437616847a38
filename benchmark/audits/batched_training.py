"""Training many small models from scratch at once, for attacks that need shadow models (U-LiRA).

`train_models(..., batched=True)` stacks the models' parameters along a leading model axis
(`torch.func.stack_module_state`) and takes every model's gradient in one call
(`torch.func.vmap(torch.func.grad(loss))`): one large batched operation per layer instead of one
small operation per layer and model. Each model keeps its own initialisation and its own data order
(both drawn from its seed); the optimizer works elementwise, so Adam or SGD on the stacked tensors
is Adam or SGD on each model. BatchNorm works as in each model alone: its batch statistics are those of
the model's own batch (vmap's), and its running statistics, stacked like the parameters, are updated in place per
model (`functional_call` writes into the stacked buffers). `batched=False` trains the same models one after another with a plain
PyTorch loop — the reference the batched path must agree with, and the baseline of
`benchmark/perf/shadow_training.py`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from benchmark.core.errors import UnlearnBenchError
from benchmark.models.pretraining import Recipe, build_model
from datamodules.datasets import DatasetInfo, ImageTensorDataset
from datamodules.datasets.augment import AUGMENTATIONS


def data_orders(num_samples: int, seeds: Sequence[int], epochs: int) -> torch.Tensor:
    """[models, epochs, num_samples]: each model's shuffled sample order per epoch, drawn from its seed."""
    orders = torch.empty(len(seeds), epochs, num_samples, dtype=torch.long)
    for m, seed in enumerate(seeds):
        generator = torch.Generator().manual_seed(int(seed))
        for epoch in range(epochs):
            orders[m, epoch] = torch.randperm(num_samples, generator=generator)
    return orders


def train_models(
    arch: str,
    info: DatasetInfo,
    dataset: ImageTensorDataset,
    recipe: Recipe,
    seeds: Sequence[int],
    *,
    batched: bool = True,
    device: torch.device | str = "cpu",
    epochs: int | None = None,
) -> list[nn.Module]:
    """Train one `arch` per seed on `dataset` with `recipe` (initialisation and data order from the seed).

    Args:
        arch: registered model name.
        info: the dataset's description (classes, channels, image size, augmentation).
        dataset: the in-memory training set.
        recipe: optimizer, learning rate, schedule, epochs, batch size.
        seeds: one model per seed.
        batched: all models in one vmapped step (True) or one after another (False).
        device: where to train.
        epochs: override `recipe.epochs` (tests).
    """
    if not isinstance(dataset, ImageTensorDataset):
        raise UnlearnBenchError(f"batched training needs an in-memory dataset, got {type(dataset).__name__}")
    if len(seeds) == 0:
        return []
    epochs = recipe.epochs if epochs is None else epochs
    device = torch.device(device)
    models = [build_model(arch, info, seed).to(device) for seed in seeds]
    images, labels = dataset.images.to(device), dataset.targets.to(device)
    orders = data_orders(len(labels), seeds, epochs).to(device)
    augment_name = recipe.augment or info.train_augment  # (as `Retrain`'s: the recipe's, else the dataset's)
    augment = AUGMENTATIONS.get(augment_name) if augment_name else None
    pixels = (lambda x: x.float().div(255)) if images.dtype == torch.uint8 else (lambda x: x.float())
    steps = math.ceil(len(labels) / recipe.batch_size)
    if batched:
        return _train_stacked(models, images, labels, orders, recipe, epochs, steps, pixels, augment)
    for m, model in enumerate(models):
        model.train()
        optimizer = recipe.make_optimizer(model.parameters())
        scheduler = recipe.make_scheduler(optimizer)
        for epoch in range(epochs):
            for step in range(steps):
                index = orders[m, epoch, step * recipe.batch_size:(step + 1) * recipe.batch_size]
                x = pixels(images[index])
                loss = F.cross_entropy(model(augment(x) if augment else x), labels[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            if scheduler:
                scheduler.step()
    return models


def _train_stacked(models, images, labels, orders, recipe, epochs, steps, pixels, augment) -> list[nn.Module]:
    params, buffers = stack_module_state(models)
    template = copy.deepcopy(models[0]).to("meta").train()
    forward = vmap(lambda p, b, x: functional_call(template, (p, b), (x,)))
    optimizer = recipe.make_optimizer(list(params.values()))
    scheduler = recipe.make_scheduler(optimizer)
    count = len(models)
    for epoch in range(epochs):
        for step in range(steps):
            index = orders[:, epoch, step * recipe.batch_size:(step + 1) * recipe.batch_size]
            x = pixels(images[index.reshape(-1)])
            if augment:
                x = augment(x)
            logits = forward(params, buffers, x.reshape(count, index.shape[1], *x.shape[1:]))
            # the sum over models of each model's mean loss: its gradient w.r.t. model m's parameters is model m's own
            loss = F.cross_entropy(logits.flatten(0, 1), labels[index].reshape(-1), reduction="sum") / index.shape[1]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if scheduler:
            scheduler.step()
    with torch.no_grad():
        for m, model in enumerate(models):
            model.load_state_dict({**{k: v[m].detach().clone() for k, v in params.items()}, **{k: v[m].clone() for k, v in buffers.items()}})
    return models
