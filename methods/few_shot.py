"""Few-shot unlearning by model inversion (seed 004, Yoon et al., *Few-shot Unlearning by Model Inversion*; §3, §4.1-4.3,
§5, Apps. A-F): invert the original into a conditional generator, filter its samples into D_e-like and D_r-like sets,
relearn the original on them according to the unlearning intention."""

from __future__ import annotations

import dataclasses
import io
import json
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from jsonargparse.typing import NonNegativeInt, OpenUnitInterval, PositiveFloat, PositiveInt
from lightning.pytorch.utilities import CombinedLoader
from torch import nn
from torch.utils.data import DataLoader, Dataset

from benchmark.core.errors import UnknownNameError, UnlearnBenchError
from benchmark.core.hashing import state_dict_sha256, tensors_sha256
from benchmark.core.paths import atomic_write_bytes, home
from benchmark.models import Classifier
from datamodules.access import FORGET_ONLY, DataView
from datamodules.datasets.augment import AUGMENTATIONS
from methods.base import UnlearningMethod, register_method
from methods.blocks.filtration import Filtration, filtrate
from methods.blocks.inversion import NORM_LAYERS, ConditionalGenerator, InversionSettings, invert
from methods.blocks.objectives import negative_learning_loss, untrained_targets

Intention = Literal["std", "unt", "neg", "cor"]
Transform = Callable[[torch.Tensor], torch.Tensor]
SOFT, NEGATIVE = 0, 1
"""The loss of a training row: soft cross-entropy to its label vector, or negative learning −log(1 − p_{y_e})."""
GENERATION_BATCH = 512
"""Samples drawn from G per forward (the result does not depend on it)."""


def augmentation(name: str) -> Transform:
    """The batch augmentation φ named `name` (`datamodules.datasets.augment.AUGMENTATIONS`); a one-line error naming the known ones."""
    try:
        return AUGMENTATIONS.get(name)
    except UnknownNameError:
        raise UnlearnBenchError(f"FewShotInversion.augmentations: unknown augmentation {name!r}; known: {', '.join(AUGMENTATIONS.names())}") from None


class Rows(Dataset):
    """Training rows held in memory: images, a label vector each (soft or one-hot) and the loss kind (`SOFT` /
    `NEGATIVE`); `__getitems__` returns whole batches, as `ImageTensorDataset`."""

    in_memory = True

    def __init__(self, x: torch.Tensor, targets: torch.Tensor, kinds: torch.Tensor) -> None:
        self.x, self.targets, self.kinds = x, targets, kinds

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int):
        return self.x[index], self.targets[index], self.kinds[index]

    def __getitems__(self, indices: Sequence[int]) -> list[torch.Tensor]:
        index = torch.as_tensor(indices, dtype=torch.long)
        return [self.x[index], self.targets[index], self.kinds[index]]

    @staticmethod
    def collate_fn(batch: list[torch.Tensor]) -> list[torch.Tensor]:
        return batch

    @staticmethod
    def join(*parts: Rows) -> Rows:
        return Rows(*(torch.cat(columns) for columns in zip(*((p.x, p.targets, p.kinds) for p in parts))))


def drawn_untrained_seed(seed: int) -> int:
    """The seed of w_unt drawn from `seed` (a generator's stream 2, `FewShotInversion.rng`): the oracles draw it from the
    original's seed, so with the default seeds Oracle_unt and Ours_unt share one w_unt."""
    return int(torch.randint(2**31, (1,), generator=torch.Generator().manual_seed((seed + 2) % 2**63)))


def intention_rows(x: torch.Tensor, intention: Intention, num_classes: int, *, correct_label: int | None = None,
                   untrained: Callable[[torch.Tensor], torch.Tensor] | None = None) -> Rows:
    """I_e (§3, eq. 4): the images `x` with the intention's label vectors and loss kinds — `neg` negative learning,
    `cor` one-hot `correct_label`, `unt` the targets `untrained(x)` (w_unt's response)."""
    n = len(x)
    if intention == "neg":
        return Rows(x, torch.zeros(n, num_classes), torch.full((n,), NEGATIVE))
    if intention == "cor":
        return Rows(x, F.one_hot(torch.full((n,), correct_label), num_classes).float(), torch.full((n,), SOFT))
    return Rows(x, untrained(x), torch.full((n,), SOFT))


def rows_loss(logits: torch.Tensor, targets: torch.Tensor, kinds: torch.Tensor, y_e: int | None) -> torch.Tensor:
    """The mean loss of a batch of `Rows`: cross-entropy to each row's label vector, −log(1 − p_{y_e}) on `NEGATIVE` rows."""
    loss = F.cross_entropy(logits, targets, reduction="none")
    negative = kinds == NEGATIVE
    if bool(negative.any()):
        loss = torch.where(negative, negative_learning_loss(logits, y_e), loss)
    return loss.mean()


@dataclass
class GeneratedSet:
    """What `generated_set` makes from f_o and D_e (the part a cache per (checkpoint, request, fraction, seed) keeps).

    Attributes:
        generator: G, in evaluation mode (on f_o's device).
        x: the generated samples, pixels in [0, 1] (CPU), `samples_per_condition` per condition y ∈ Y ∪ {y⁺}.
        conditions: the condition of each row of `x` (K = y⁺).
        filtration: §4.2's result on `x` (D̃, D̃_e, D̃_r, f_o's soft labels; its tensors on f_o's device).
        inversion_seconds: training G and sampling `x`.
        filtration_seconds: `filtrate`.
    """

    generator: ConditionalGenerator
    x: torch.Tensor
    conditions: torch.Tensor
    filtration: Filtration
    inversion_seconds: float
    filtration_seconds: float

    @property
    def erase_x(self) -> torch.Tensor:
        """D̃_e's images (CPU)."""
        return self.filtration.x[self.filtration.erase].cpu()

    @property
    def retain_x(self) -> torch.Tensor:
        """D̃_r's images (CPU)."""
        return self.filtration.x[self.filtration.retain].cpu()


@register_method
class FewShotInversion(UnlearningMethod):
    """Seed 004's "Ours": unlearn from the original model f_o and the few given images D_e alone (one label y_e).

    1. Model inversion (§4.1, `methods.blocks.inversion.invert`): a conditional generator G(z, y), y ∈ Y ∪ {y⁺},
       trained against f_o with ℓ_tv + ℓ_div + ℓ_ent + ℓ_aug (Φ = `augmentations`) + ℓ_tar (y⁺ against D_e) + ℓ_bn
       (`inversion`). ℓ_bn is used only when f_o has BatchNorm (§4.1: "available only when the classifier includes
       BN layers"; Table 3, App. D.2), ℓ_tar only when it has normalisation layers (App. A: "only batch normalization
       layers are selected"; the block hooks those): without BatchNorm, ℓ_bn unset (`w_bn` null) is off and a w_bn > 0
       is refused; without normalisation layers, ℓ_tar is set to 0 with a warning.
    2. Filtration (§4.2, `methods.blocks.filtration.filtrate`): `samples_per_condition` samples of G for each of the
       K + 1 conditions; D̃ keeps those with H(f_o(x̃)) < `t_ent` and stable under Φ, labelled by f_o's softmax (soft
       labels); D̃_e = {κ(x, D_e) < t_f} (RBF MMD in f_o's penultimate features; t_f by Kneedle unless `t_f` is
       given), D̃_r = D̃ \\ D̃_e. A one-line error when D̃ or D̃_e is empty or no knee is found (without
       `fallback_quantile`).
    3. Relearning per intention (§3, §4.3): from f_o, on D̃_r (soft cross-entropy to f_o's soft labels, i.e. the
       KL to f_o up to a constant) ∪ Ĩ_e, D̃_e relabelled by the intention, in one shuffled set:
       - `std` (Oracle_std, I_e = ∅): scrub, then D̃_r alone;
       - `unt` (Oracle_unt): scrub, then D̃_e labelled by the output of a randomly initialised model of f_o's
         architecture (`untrained_seed`; softmax, or its arg-max with `unt_labels="hard"`);
       - `neg` (Oracle_neg): no scrub; −log(1 − p_{y_e}(x)) on D̃_e (negative learning);
       - `cor` (Oracle_cor): no scrub; cross-entropy to `correct_label` on D̃_e (the request's correct label: the
         method sees only D_e with the label f_o was trained with, so it is an argument).
       Scrubbing (§4.3, after Kim & Woo 2022; App. D.3) is `scrub_epochs` epochs on D̃_e with uniformly random
       one-hot labels (drawn once per sample), before the `budget.max_epochs` relearning epochs; `scrub=False` with
       `std` is Table 7's Ours_std − scrub. `include_given` adds D_e itself to Ĩ_e (and to the scrub set) with the
       intention's labels.

    Epochs: `budget.max_epochs` counts the relearning epochs; the scrub epochs come before them (the trainer runs
    `scrub_epochs + budget.max_epochs` epochs when scrubbing). Neither set is augmented while relearning.

    Defaults (`configs/methods/FewShotInversion/seed004.yaml`). The paper gives no number for them; each is an
    assumption, mostly the authors' code (JinhwanNam/Few-shot-Unlearning, `Unlearning/`):
    - relearning: SGD lr 1e-3, momentum 0.9, weight decay 2e-5, 10 epochs, batch 128 (`main.py`, `default.yaml`,
      `prepare.py`; §4.3 "couples of fine-tuning steps");
    - scrubbing: 10 epochs (`default.yaml`'s neutralization_epochs; §4.3 "a few early epochs"), on D̃_e only (§4.3 as
      printed; `scrub_set="all"` adds D̃_r with its soft labels, as the authors' neutralisation loader), random
      labels uniform over all K classes (their `np.random.choice(0..9)`, y_e included);
    - 500 samples per condition (`default.yaml` n; they redraw until 500 pass the filter, here drawn once, §4.2);
    - t_ent = 0.5 nats (`cgenerate.generate`'s threshold; §4.2 "a pre-defined threshold");
    - Φ = a random shift (`crop`, see `crop`): §4.1 names "flipping, rotating, and cropping"; the authors' code uses
      crop and ±15° rotation; flips are left out for digits and clothes;
    - t_f by Kneedle (§4.2) with κ's RBF bandwidth by the median heuristic (the block's default; the authors' code
      sums σ² ∈ {10, 512, 2048});
    - the inversion's weights, steps and generator: `InversionSettings`'s defaults (§4.1 gives none);
    - `unt` labels soft (their `softmax(net2(x))`), the untrained model in evaluation mode;
    - D_e joins Ĩ_e (§3: I_e is defined on D_e and extended to D'_e).
    - BatchNorm frozen while relearning (`batchnorm: frozen`; the paper is silent, the authors' code trains in train mode
      on a scrub loader that mixes in D̃_r, i.e. `batchnorm: train` + `scrub_set: all`): batches of D̃_e alone, in train
      mode, are normalised by their own statistics, which removes the class signal they share, so the scrub learns
      random labels on features the evaluated model never sees (digits class 9, seed 0: Ours_std's D_e test accuracy
      100 % in train mode, 36 % with `scrub_set: all`, 2.8 % frozen; `fewshot_table7` keeps the train-mode row).
    """

    data_access = FORGET_ONLY
    train_splits = ("forget",)
    defaults = "configs/methods/FewShotInversion/seed004.yaml"

    def __init__(self, *, intention: Intention = "std", correct_label: NonNegativeInt | None = None, scrub: bool | None = None,
                 scrub_epochs: PositiveInt = 10, scrub_set: Literal["erase", "all"] = "erase", include_given: bool = True,
                 unt_labels: Literal["soft", "hard"] = "soft", untrained_seed: int | None = None,
                 samples_per_condition: PositiveInt = 500, augmentations: list[str] = ["crop"],  # noqa: B006 (jsonargparse shows it)
                 t_ent: PositiveFloat = 0.5, t_f: PositiveFloat | None = None, bandwidth: list[float] | None = None,
                 fallback_quantile: OpenUnitInterval | None = None, inversion: InversionSettings = InversionSettings(),
                 seed: int | None = None, **kwargs) -> None:
        """
        Args:
            intention: the unlearning intention (§3): `std` (erase), `unt` (an untrained model's response), `neg`
                (negative learning against D_e's label), `cor` (the correct label, `correct_label`).
            correct_label: the correct label of D_e, for `cor` only (the request's annotation, §3 Oracle_cor).
            scrub: scrub D̃_e with random labels before relearning (§4.3); null: the paper's choice, for `std` and
                `unt` only; false with `std` is Table 7's Ours_std − scrub.
            scrub_epochs: epochs of scrubbing (§4.3 "a few early epochs"; the authors' code 10).
            scrub_set: what scrubbing trains on: `erase` (D̃_e with random labels, §4.3) or `all` (also D̃_r with
                f_o's soft labels, the authors' neutralisation loader).
            include_given: D_e itself joins Ĩ_e (and the scrub set) with the intention's labels.
            unt_labels: `unt`'s labels: the untrained model's `soft` output (softmax) or its `hard` arg-max.
            untrained_seed: the seed of `unt`'s randomly initialised model; null: drawn from `seed`.
            samples_per_condition: samples of G per condition, K + 1 conditions (the authors' code 500).
            augmentations: Φ, by name (§4.1 ℓ_aug, §4.2's filter): names of
                `datamodules.datasets.augment`: `crop` (a random shift, no flip), `flip`, `crop_flip`.
            t_ent: the entropy threshold of §4.2, in nats (the authors' code 0.5).
            t_f: eq. (3)'s κ threshold by hand; null: Kneedle's knee (§4.2).
            bandwidth: the RBF σ of κ, or several whose kernels are summed; null: the median heuristic.
            fallback_quantile: t_f when Kneedle finds no knee: this quantile of κ; null: no knee is an error.
            inversion: G's training (`InversionSettings`: loss weights, steps, batch, generator width, Adam).
            seed: the seed of the inversion, the sampling and the random labels; null: the run's seed
                (`seed_everything`, read when `prepare` runs).
        """
        super().__init__(**kwargs)
        if intention == "cor" and correct_label is None:
            raise UnlearnBenchError("FewShotInversion: intention 'cor' relabels D̃_e to the correct label, which the request must "
                                    "carry: give correct_label (e.g. --model.correct_label 6)")
        if intention != "cor" and correct_label is not None:
            raise UnlearnBenchError(f"FewShotInversion: correct_label = {correct_label} is only read by intention 'cor', not '{intention}'")
        if bandwidth is not None and (not bandwidth or not all(isinstance(b, (int, float)) and math.isfinite(b) and b > 0 for b in bandwidth)):
            raise UnlearnBenchError(f"FewShotInversion.bandwidth = {bandwidth!r} is not allowed; null or a list of numbers > 0 (RBF σ)")
        if not augmentations:
            raise UnlearnBenchError("FewShotInversion.augmentations is empty; Φ needs at least one augmentation (§4.1 ℓ_aug, §4.2)")
        self.augmentations, self.transforms = list(augmentations), [augmentation(name) for name in augmentations]
        self._settings: tuple[nn.Module, InversionSettings] | None = None
        self.intention, self.correct_label, self.include_given = intention, correct_label, include_given
        self.scrubbing = scrub if scrub is not None else intention in ("std", "unt")
        self.scrub_epochs, self.scrub_set, self.unt_labels, self.untrained_seed = scrub_epochs, scrub_set, unt_labels, untrained_seed
        self.samples_per_condition, self.t_ent, self.t_f, self.bandwidth = samples_per_condition, t_ent, t_f, bandwidth
        self.fallback_quantile, self.inversion, self.seed = fallback_quantile, inversion, seed
        self.generated: GeneratedSet | None = None
        self.y_e: int | None = None
        self.scrub_rows: Rows | None = None
        self.relearn_rows: Rows | None = None

    # ---- epochs and phases ----
    def num_epochs(self) -> int:
        return (self.scrub_epochs if self.scrubbing else 0) + self.budget.max_epochs

    @property
    def phase(self) -> str:
        """`scrub` for the first `scrub_epochs` epochs when scrubbing, then `relearn`."""
        return "scrub" if self.scrubbing and self.trainer.current_epoch < self.scrub_epochs else "relearn"

    def rng(self, stream: int) -> torch.Generator:
        """A CPU generator seeded from `generation_seed`: stream 0 the inversion and sampling, 1 the scrub labels,
        2 the untrained model's seed."""
        return torch.Generator().manual_seed((self.generation_seed + stream) % 2**63)

    # ---- D_e and the request ----
    def given(self, data: DataView) -> tuple[torch.Tensor, int]:
        """D_e's images (pixels in [0, 1], CPU) and its one label y_e; a one-line error for several labels or none."""
        forget = data["forget"]
        batches = list(DataLoader(forget, batch_size=1024, collate_fn=getattr(forget, "collate_fn", None)))
        if not batches:
            raise UnlearnBenchError("FewShotInversion: the request's forget set D_e is empty")
        x = torch.cat([b[0] for b in batches])
        labels = sorted(set(torch.cat([b[1] for b in batches]).tolist()))
        if len(labels) != 1:
            raise UnlearnBenchError(f"FewShotInversion: D_e holds the labels {labels}; seed 004 erases targets of one label y_e "
                                    "(§4.1 footnote 2): request one class's images")
        return x, labels[0]

    def settings_for(self, model: nn.Module) -> InversionSettings:
        """`inversion` for f_o = `model`: ℓ_bn's weight decided (`InversionSettings.for_model`: off without BatchNorm
        unless asked, which is an error) and ℓ_tar off, with a warning, for one without normalisation layers (worked
        out once per model: the cache key and the inversion both ask)."""
        if self._settings is not None and self._settings[0] is model:
            return self._settings[1]
        settings = self.inversion
        if settings.w_tar > 0 and not any(isinstance(m, NORM_LAYERS) for m in model.modules()):
            warnings.warn(f"FewShotInversion: {type(model).__name__} {getattr(model, 'arch', '')} has no normalisation layers; ℓ_tar "
                          "switched off (seed 004 App. A)", stacklevel=2)
            settings = dataclasses.replace(settings, w_tar=0.0)
        try:
            self._settings = (model, settings.for_model(model))
        except UnlearnBenchError as error:
            raise UnlearnBenchError(f"FewShotInversion: {error}") from None
        return self._settings[1]

    # ---- §4.1 and §4.2: the hook a cache of G and D̃ wraps ----
    def generated_set(self, data: DataView) -> GeneratedSet:
        """Invert f_o (§4.1), sample G, filtrate (§4.2): a function of f_o, D_e, this method's inversion and
        filtration settings (`inversion`, `augmentations`, `samples_per_condition`, `t_ent`, `t_f`, `bandwidth`,
        `fallback_quantile`) and `generation_seed` (set by `prepare`) only; not of the intention. A cache keyed by
        (checkpoint, request, fraction, seed) and those settings can wrap it, adding the seconds of the set it
        returns (`inversion_seconds + filtration_seconds`) to `self.reused_seconds`; `prepare` records the set's
        own seconds as `cost/inversion_seconds` and `cost/filtration_seconds` either way."""
        d_e, y_e = self.given(data)
        model = self.original
        device = next(model.parameters()).device
        generator = self.rng(0)
        start = time.perf_counter()
        g = invert(model, self.settings_for(model), d_e=d_e, y_e=y_e, transforms=self.transforms, generator=generator,
                   progress=self._trainer is not None and self._trainer.progress_bar_callback is not None)
        k = g.num_classes
        conditions = torch.arange(k + 1).repeat_interleave(self.samples_per_condition)
        with torch.no_grad():
            x = torch.cat([g(torch.randn(len(c), g.z_dim, generator=generator).to(device), c.to(device)).cpu()
                           for c in conditions.split(GENERATION_BATCH)])
        inversion_seconds = time.perf_counter() - start
        start = time.perf_counter()
        filtration = filtrate(model, x, conditions, d_e, transforms=self.transforms, t_ent=self.t_ent, t_f=self.t_f,
                              bandwidth=self.bandwidth, strict=True, fallback_quantile=self.fallback_quantile)
        return GeneratedSet(g, x, conditions, filtration, inversion_seconds, time.perf_counter() - start)

    def cached_generated_set(self, data: DataView) -> GeneratedSet:
        """`generated_set`, made once and cached under `$UNLEARNBENCH_HOME/few_shot/` (seed 004's four intentions share
        one G and D̃ per original, request, fraction and seed). The key: f_o's weights, D_e, the inversion and
        filtration settings and `generation_seed`. Read from the cache, its seconds count as spent (`reused_seconds`)."""
        d_e, _ = self.given(data)
        settings = {"inversion": dataclasses.asdict(self.settings_for(self.original)), "augmentations": self.augmentations,
                    "samples_per_condition": self.samples_per_condition, "t_ent": self.t_ent, "t_f": self.t_f,
                    "bandwidth": self.bandwidth, "fallback_quantile": self.fallback_quantile, "seed": self.generation_seed}
        key = tensors_sha256({"d_e": d_e}, extra=state_dict_sha256(self.original) + json.dumps(settings, sort_keys=True))
        path = home() / "few_shot" / f"{key[:32]}.pt"
        device = next(self.original.parameters()).device
        if path.exists():
            saved = torch.load(path, weights_only=True)
            with torch.random.fork_rng(devices=[]):
                g = ConditionalGenerator(**saved["generator_args"])  # (its initial weights, replaced: no draw from the global generator)
            g.load_state_dict(saved["generator"])
            fields = {**saved["filtration"], **{name: value.to(device) for name, value in saved["filtration_tensors"].items()}}
            generated = GeneratedSet(g.to(device).eval(), saved["x"], saved["conditions"], Filtration(**fields),
                                     saved["inversion_seconds"], saved["filtration_seconds"])
            self.reused_seconds += generated.inversion_seconds + generated.filtration_seconds
            return generated
        with torch.random.fork_rng(devices=[] if device.type == "cpu" else [device], device_type=device.type):
            generated = self.generated_set(data)  # (neither making the set nor reading it draws from the global generators:
            # a fit that makes it goes on from the random numbers of one that reads it)
        g, f = generated.generator, generated.filtration
        tensors = {name: getattr(f, name).cpu() for name in ("kept", "x", "soft_labels", "kappa", "erase", "retain")}
        buffer = io.BytesIO()
        torch.save({"generator": g.state_dict(), "x": generated.x, "conditions": generated.conditions,
                    "generator_args": {"z_dim": g.z_dim, "channels": g.channels, "image_size": g.image_size,
                                       "num_classes": g.num_classes, "width": self.inversion.width},
                    "filtration_tensors": tensors,
                    "filtration": {name: getattr(f, name) for name in ("t_f", "knee_found", "n_generated", "n_kept", "n_erase", "plus_share", "issues")},
                    "inversion_seconds": generated.inversion_seconds, "filtration_seconds": generated.filtration_seconds}, buffer)
        atomic_write_bytes(path, buffer.getvalue())
        return generated

    # ---- §4.3: the relearning sets ----
    def prepare(self, data: DataView) -> None:
        d_e, self.y_e = self.given(data)  # (checks before any work)
        if not isinstance(self.original, Classifier):
            raise UnlearnBenchError(f"FewShotInversion needs a Classifier (f_o's penultimate features, §4.2); got {type(self.original).__name__}")
        k = self.num_classes
        if self.correct_label is not None and not 0 <= self.correct_label < k:
            raise UnlearnBenchError(f"FewShotInversion: correct_label = {self.correct_label} is not a class of {data.info.name} [0, {k})")
        if self.correct_label == self.y_e:
            raise UnlearnBenchError(f"FewShotInversion: correct_label = {self.correct_label} is D_e's label y_e already; nothing to correct")
        self.generation_seed = torch.initial_seed() if self.seed is None else self.seed
        self.generated = self.cached_generated_set(data)
        f = self.generated.filtration
        self.cost |= {"cost/inversion_seconds": self.generated.inversion_seconds, "cost/filtration_seconds": self.generated.filtration_seconds,
                      "cost/generated": float(f.n_generated), "cost/filtered": float(f.n_kept), "cost/filtered_e": float(f.n_erase),
                      "cost/knee_found": float(f.knee_found)}
        if f.plus_share is not None:
            self.cost["cost/plus_share"] = f.plus_share
        if f.t_f is not None:
            self.cost["cost/t_f"] = f.t_f
        erase_x = torch.cat([self.generated.erase_x, d_e]) if self.include_given else self.generated.erase_x
        retain = Rows(self.generated.retain_x, f.soft_labels[f.retain].float().cpu(), torch.full((int(f.retain.sum()),), SOFT))
        labels = self.rng(1)
        scrub = Rows(erase_x, F.one_hot(torch.randint(0, k, (len(erase_x),), generator=labels), k).float(), torch.full((len(erase_x),), SOFT))
        self.scrub_rows = Rows.join(scrub, retain) if self.scrub_set == "all" else scrub
        self.relearn_rows = retain if self.intention == "std" else Rows.join(retain, self.intended(erase_x))

    def intended(self, x: torch.Tensor) -> Rows:
        """Ĩ_e (eq. 4): the rows `x` (D̃_e, and D_e when `include_given`) with the intention's labels."""
        seed = self.untrained_seed if self.untrained_seed is not None else drawn_untrained_seed(self.generation_seed)
        return intention_rows(x, self.intention, self.num_classes, correct_label=self.correct_label, untrained=lambda x: untrained_targets(
            self.pretrained.arch, self.data.info, seed, x, soft=self.unt_labels == "soft", device=self.device))

    # ---- training ----
    def on_fit_start(self) -> None:
        super().on_fit_start()
        self.trainer.reload_dataloaders_every_n_epochs = 1  # (each phase has its own loader)

    def train_loader(self, data: DataView) -> CombinedLoader:
        rows = self.scrub_rows if self.phase == "scrub" else self.relearn_rows
        return CombinedLoader({self.phase: data.loader_over(rows, self.batch_size())}, mode="max_size_cycle")

    def training_step(self, batch, batch_idx):
        x, targets, kinds = batch[self.phase]
        loss = rows_loss(self.model(x), targets, kinds, self.y_e)
        self.log_train("train/loss", loss)
        return loss
