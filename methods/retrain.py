"""Retrain: train from scratch on the retain set with the original's recipe — the usual gold standard."""

from __future__ import annotations

from torch import nn

from benchmark.core.errors import UnlearnBenchError
from benchmark.metrics.evaluator import Evaluator
from benchmark.models.pretraining import RECIPES, Pretrained, Recipe, cache_path, initial_model, load_checkpoint, save_checkpoint
from datamodules.access import RETAIN_FULL, DataView
from methods.base import TrainsOnRetain, register_method


@register_method
class Retrain(TrainsOnRetain):
    """Train `pretrained.arch` from the recipe's initialisation (fresh, or a pretrained body: `Recipe.init`) on D_r
    with the pretraining recipe and seed ("Retrain Model", seed 002 Tables I, III, IV). The result is cached by (dataset, arch, recipe, seed, retain set:
    `ForgetRequest.training_set_hash`), so a relabeling request reuses the plain request's Retrain; a cache hit
    reports the cost of the run that filled the cache. The original model is this same procedure on the empty
    request, so both share one cache.
    """

    data_access = RETAIN_FULL
    ignores_original = True

    def __init__(self) -> None:
        super().__init__()
        self.recipe: Recipe | None = None
        self.cached: dict | None = None

    def attach(self, original: nn.Module, data: DataView, pretrained: Pretrained, evaluator: Evaluator) -> None:
        super().attach(original, data, pretrained, evaluator)
        self.recipe = RECIPES.get(pretrained.recipe_name(data.info.name))
        self.train_augment = self.recipe.augment  # (the scenario applies it instead of the dataset's)
        self.cache_file = cache_path(pretrained, data.info.name, data.training_set_hash)
        fresh = initial_model(pretrained, data.info)
        self.cached = load_checkpoint(self.cache_file, fresh) if self.cache_file.exists() else None
        self.model.load_state_dict(fresh.state_dict())
        self.recipe.prepare(self.model)
        if self.cached is not None:  # the cost of the run that filled the cache, also for `test`
            self.cost = self._cached_cost()

    def _cached_cost(self) -> dict[str, float]:
        """The cost of the run that filled the cache, flagged `cost/cached` 1."""
        return {**{k: v for k, v in self.cached.items() if k.startswith("cost/")}, "cost/cached": 1.0}

    def num_epochs(self) -> int:
        return 0 if self.cached is not None else self.recipe.epochs

    def batch_size(self) -> int:
        return self.recipe.batch_size

    def configure_optimizers(self):
        optimizer = self.recipe.make_optimizer(self.model.parameters())
        scheduler = self.recipe.make_scheduler(optimizer)
        return optimizer if scheduler is None else {"optimizer": optimizer, "lr_scheduler": scheduler}

    def on_fit_start(self) -> None:
        super().on_fit_start()
        wanted = self.recipe.trainer_precision
        if self.cached is None and self.trainer.precision != wanted:
            raise UnlearnBenchError(f"recipe {self.pretrained.recipe_name(self.data.info.name)} trains in {wanted} precision, "
                                    f"this trainer in {self.trainer.precision}: give --trainer.precision {wanted}")

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        if self.recipe.clip_value is not None:
            self.clip_gradients(optimizer, gradient_clip_val=self.recipe.clip_value, gradient_clip_algorithm="value")

    def on_fit_end(self) -> None:  # after the callbacks' (the cost meter's)
        if self.cached is not None:
            self.cost.update(self._cached_cost())
        else:
            self.cost["cost/cached"] = 0.0
            if self.trainer.is_global_zero:
                save_checkpoint(self.cache_file, self.model, dict(self.cost))
