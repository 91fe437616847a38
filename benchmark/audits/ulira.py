"""`mia/ulira_acc`, `mia/ulira_auc`: the per-example likelihood-ratio attack on unlearning, U-LiRA
(Hayes et al., "Inexact Unlearning Needs More Careful Evaluations to Avoid a False Sense of Privacy", 2024).

The question U-LiRA asks of each forget sample x: does the model's output on x look like the output of
a model that saw x and then *unlearned* it with this method, or like the output of a model *retrained*
without x? For the run's fixed forget request:

1. shadow originals: `shadows` models trained from scratch on the full training set with the original's
   recipe (other seeds), and `shadows + 1` models retrained on D_r; both trained in one batch
   (`benchmark.audits.batched_training`) and cached, so every method on the same request shares them;
2. unlearned shadows: the method under test, with the run's hyperparameters, applied to each shadow
   original (a method that ignores the original, like Retrain, gets retrained models of other seeds);
3. per forget sample, Gaussians of the logit-scaled confidence φ = log p_y − log(1 − p_y) over the
   unlearned shadows and over the retrained shadows (Hayes et al. §4, after Carlini et al.'s LiRA);
4. targets: the run's unlearned model (label "unlearned") and the held-out retrained model (label
   "retrained"); the attack scores each forget sample under each target by the log-likelihood ratio
   log N(φ; μ_u, σ_u) − log N(φ; μ_r, σ_r) and says "unlearned" when it is positive.

`mia/ulira_acc` is the attack's balanced accuracy over those 2·|D_f| decisions and `mia/ulira_auc` its
ROC-AUC: 0.5 means the method's outputs on D_f cannot be told from retraining (Retrain itself scores
~0.5); higher means the unlearning is detectable. Our choices where Hayes et al. leave room: one
fixed forget set shared by all shadows (the benchmark's request) instead of random forget sets per
shadow, per-example (not global) variances with a floor of `MIN_STD`, and equal priors.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import Tensor, nn
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from benchmark import training
from benchmark.audits.batched_training import train_models
from benchmark.audits.challenge import challenge_confidence, challenge_measures
from benchmark.core.errors import UnlearnBenchError
from benchmark.core.paths import home
from benchmark.models.pretraining import (
    ADDED_FIELDS,
    RECIPES,
    Pretrained,
    build_model,
    load_checkpoint,
    save_checkpoint,
)
from datamodules.requests import content_hash

MIN_STD = 1e-2
"""Floor of a per-example standard deviation of φ, so that identical shadow outputs do not give ±∞."""
NAMES = ("mia/ulira_acc", "mia/ulira_auc")


def logit_confidence(logits: Tensor, labels: Tensor) -> Tensor:
    """φ = log p_y − log(1 − p_y) of softmax(logits), computed stably as z_y − logsumexp_{j≠y} z_j."""
    logits = logits.double()
    true = logits.gather(-1, labels.long().view(-1, 1)).squeeze(-1)
    others = logits.scatter(-1, labels.long().view(-1, 1), -math.inf)
    return true - torch.logsumexp(others, dim=-1)


def gaussian_log_ratio(phi: Tensor, unlearned: Tensor, retrained: Tensor) -> Tensor:
    """log N(φ; μ_u, σ_u) − log N(φ; μ_r, σ_r) per sample; `unlearned` / `retrained` are [shadows, samples]."""

    def log_density(samples: Tensor) -> Tensor:
        mean = samples.mean(0)
        std = samples.std(0, unbiased=samples.shape[0] > 1).clamp_min(MIN_STD)
        return torch.distributions.Normal(mean, std).log_prob(phi)

    return log_density(unlearned.double()) - log_density(retrained.double())


class ULiRA(Metric):
    """The U-LiRA decision on target models' φ over the forget samples (see the module docstring).

    Built from the shadow models' φ (`unlearned`, `retrained`: [shadows, |D_f|]); fed with
    `update(phi, indices, unlearned)` for each target model's batch of forget samples (`unlearned`:
    whether that target is an unlearned model); `compute` gives `mia/ulira_acc` and `mia/ulira_auc`.
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(self, unlearned: Tensor, retrained: Tensor, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if unlearned.shape[0] < 2 or retrained.shape[0] < 2 or unlearned.shape[1:] != retrained.shape[1:]:
            raise UnlearnBenchError(f"U-LiRA needs at least 2 shadow models of each kind over the same samples, got {tuple(unlearned.shape)} and {tuple(retrained.shape)}")
        self.shadow_unlearned, self.shadow_retrained = unlearned.double(), retrained.double()
        for name in ("index", "phi", "target"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(self, phi: Tensor, indices: Tensor, unlearned: bool) -> None:
        self.index.append(indices.reshape(-1).to(self.dtype))
        self.phi.append(phi.reshape(-1).to(self.dtype))
        self.target.append(torch.full((phi.numel(),), float(unlearned), dtype=self.dtype, device=phi.device))

    def compute(self) -> dict[str, float]:
        index, phi, target = dim_zero_cat(self.index).long().cpu(), dim_zero_cat(self.phi).double().cpu(), dim_zero_cat(self.target).cpu()
        if not ((target == 1).any() and (target == 0).any()):
            raise UnlearnBenchError("U-LiRA needs at least one unlearned and one retrained target model")
        score = gaussian_log_ratio(phi, self.shadow_unlearned[:, index], self.shadow_retrained[:, index]).numpy()
        truth = target.numpy() == 1
        said = score > 0
        accuracy = 0.5 * (said[truth].mean() + (~said[~truth]).mean())
        return {"mia/ulira_acc": float(accuracy), "mia/ulira_auc": float(roc_auc_score(truth, score))}


@torch.no_grad()
def split_outputs(model: nn.Module, loader, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """Logits, labels and indices of `model` on every sample of `loader` (batches `(x, y, index)`), on the CPU."""
    was_training = model.training
    model.eval()
    logits, labels, indices = [], [], []
    for x, y, index in loader:
        logits.append(model(x.to(device)).cpu())
        labels.append(y)
        indices.append(index)
    model.train(was_training)
    return torch.cat(logits), torch.cat(labels), torch.cat(indices)


def forget_phi(model: nn.Module, loader, device: torch.device) -> tuple[Tensor, Tensor]:
    """φ of `model` on every sample of `loader`, with the indices."""
    logits, labels, index = split_outputs(model, loader, device)
    return logit_confidence(logits, labels), index


def challenge_of(unlearned: list[nn.Module], retrained: list[nn.Module], scenario, device: torch.device) -> dict[str, float]:
    """The NeurIPS 2023 challenge's `mia/neurips_f`, `mia/neurips_score`, `mia/neurips_models` (`benchmark/audits/challenge.py`)
    from the unlearned and retrained shadow models: their confidences on D_f and their retain and test accuracies."""
    loaders = {split: scenario.eval_loader(split, shard=False) for split in ("forget", "retain", "test")}
    confs, accuracy = {}, {}
    for kind, models in (("unlearned", unlearned), ("retrained", retrained)):
        rows, correct = [], {"retain": [], "test": []}
        for model in models:
            logits, labels, _ = split_outputs(model.to(device), loaders["forget"], device)
            rows.append(challenge_confidence(logits.float().numpy(), labels.numpy()))
            for split, values in correct.items():
                logits, labels, _ = split_outputs(model, loaders[split], device)
                values.append(float((logits.argmax(1) == labels).float().mean()))
        confs[kind], accuracy[kind] = np.stack(rows), {split: float(np.mean(values)) for split, values in correct.items()}
    return challenge_measures(confs["unlearned"], confs["retrained"], accuracy["unlearned"], accuracy["retrained"])


def shadow_seeds(kind: str, count: int, seed: int) -> list[int]:
    """Seeds of the shadow models, disjoint from pretraining seeds in everyday use (0-999)."""
    base = {"original": 10_000, "retrained": 20_000}[kind]
    return [base + 1000 * seed + i for i in range(count)]


def trained_shadows(kind: str, scenario, pretrained: Pretrained, seeds: Sequence[int], device: torch.device) -> list[nn.Module]:
    """Shadow originals (full training set) or retrained shadows (D_r), trained in one batch and cached."""
    recipe_name = pretrained.recipe_name(scenario.info.name)
    if RECIPES.get(recipe_name).init is not None:
        raise UnlearnBenchError(f"U-LiRA's shadow models train from scratch, and recipe {recipe_name} fine-tunes a pretrained body (Recipe.init): "
                                "not supported; use a from-scratch recipe")
    numerics = {k: v for k, v in RECIPES.get(recipe_name).key_fields().items() if k in ADDED_FIELDS}
    if numerics:
        raise UnlearnBenchError(f"U-LiRA's shadow models train in batch in fp32 and the default memory format, and recipe {recipe_name} sets "
                                f"{', '.join(f'{k}={v}' for k, v in numerics.items())}: not supported; use a recipe without them")
    dataset = scenario.train_set if kind == "original" else scenario.splits["retain"]
    recipe = {k: v for k, v in RECIPES.get(recipe_name).key_fields().items() if k != "init"}  # (the key from before the field)
    key = {"kind": kind, "dataset": scenario.info.name, "arch": pretrained.arch, "recipe": recipe,
           "request": scenario.request.hash if kind == "retrained" else content_hash(asdict(scenario.request.corruption)), "seeds": list(seeds)}
    folder = home() / "shadows" / scenario.info.name / pretrained.arch / f"{kind}-{content_hash(key)[:16]}"
    models = [build_model(pretrained.arch, scenario.info, s) for s in seeds]
    if all((folder / f"{s}.pt").exists() for s in seeds):
        for model, s in zip(models, seeds, strict=True):
            load_checkpoint(folder / f"{s}.pt", model)
        return [m.to(device) for m in models]
    models = train_models(pretrained.arch, scenario.info, dataset, RECIPES.get(recipe_name), seeds, device=device)
    for model, s in zip(models, seeds, strict=True):
        save_checkpoint(folder / f"{s}.pt", model, {"seed": s, **key})
    return models


def unlearned_shadows(method, scenario, pretrained: Pretrained, originals: list[nn.Module], seeds: Sequence[int]) -> list[nn.Module]:
    """The method (same class and hyperparameters as `method`) applied to each shadow original."""
    models = []
    for original, seed in zip(originals, seeds, strict=True):
        clone = method.fresh_copy()
        training.attach_model(clone, copy.deepcopy(original).cpu(), scenario, Pretrained(pretrained.arch, pretrained.recipe, seed), type(method.evaluation)(mia=False))
        trainer = pl.Trainer(**{**training.TRAINER_DEFAULTS, "accelerator": method.device.type, "devices": 1, "enable_progress_bar": False, "max_epochs": 1})
        with torch.random.fork_rng():
            pl.seed_everything(seed, verbose=False)
            training.fit(clone, scenario, trainer)
        models.append(clone.model)
    return models


def ulira_measures(method, scenario, shadows: int, seed: int = 0, ulira: bool = True, challenge: bool = False) -> dict[str, float]:
    """`mia/ulira_acc` and `mia/ulira_auc` of `method`'s unlearned model (see the module docstring); with `challenge`,
    also the NeurIPS 2023 challenge's forgetting quality from the same shadow models (`challenge_of`)."""
    trainer = getattr(method, "_trainer", None)
    if trainer is not None and trainer.world_size > 1:
        raise UnlearnBenchError("U-LiRA trains its shadow models in one process; run it without DDP (--trainer.devices 1)")
    if shadows < (3 if challenge else 2):
        needs = "the NeurIPS challenge's score needs at least 3" if challenge else "U-LiRA needs at least 2"
        raise UnlearnBenchError(f"{needs} shadow models of each kind, got --evaluation.ulira_shadows {shadows}")
    pretrained, device = method.pretrained, method.device
    if pretrained.checkpoint:
        raise UnlearnBenchError("U-LiRA trains shadow originals with the pretraining recipe; it cannot do so for an explicit --pretrained.checkpoint")
    retrained_seeds = shadow_seeds("retrained", shadows + 1, seed)
    retrained = trained_shadows("retrained", scenario, pretrained, retrained_seeds, device)
    if getattr(method, "ignores_original", False):
        extra = shadow_seeds("retrained", 2 * shadows + 1, seed)[shadows + 1:]
        unlearned = trained_shadows("retrained", scenario, pretrained, extra, device)
    else:
        original_seeds = shadow_seeds("original", shadows, seed)
        unlearned = unlearned_shadows(method, scenario, pretrained, trained_shadows("original", scenario, pretrained, original_seeds, device), original_seeds)
    results = challenge_of(unlearned, retrained[:-1], scenario, device) if challenge else {}
    if not ulira:
        return results
    forget = scenario.eval_loader("forget", shard=False)
    phi_u = torch.stack([forget_phi(m.to(device), forget, device)[0] for m in unlearned])
    phi_r = torch.stack([forget_phi(m, forget, device)[0] for m in retrained[:-1]])
    attack = ULiRA(phi_u, phi_r)
    for target, is_unlearned in ((method.model, True), (retrained[-1], False)):
        phi, index = forget_phi(target, forget, device)
        attack.update(phi, index, is_unlearned)
    return results | attack.compute()
