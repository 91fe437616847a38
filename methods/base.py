"""The method contract: the base class of every unlearning method, its shared settings, and the registry.

A method file declares what data it may see (`data_access`, `train_splits`), its own typed keyword-only
hyperparameters and the paper they come from, and implements `training_step` (and, when it needs one-off work
before unlearning, `prepare`). Everything else is shared, once:

- the base settings, three typed groups every method takes without declaring them: `optimizer` (an
  `OptimizerCallable`, as LightningCLI injects it: `--model.optimizer.lr 0.01`, `--model.optimizer torch.optim.Adam`),
  `budget` (`Budget`: epochs, batch size, stop criterion) and `batchnorm` (BatchNorm's mode while unlearning);
- the paper's defaults: `defaults = "configs/methods/<Method>/<paper>.yaml"` (a LightningCLI model config)
  becomes the class's signature defaults, so `--model NegGrad`, `NegGrad()` and `--print_config` all give
  the paper's values, and a dict given for a group (`budget={"max_epochs": 3}`) is merged into them;
- the cost, stop criterion, divergence, curves and BatchNorm mode, as Lightning callbacks (`benchmark/callbacks.py`);
- the evaluation on every named split (a method never computes its own evaluation numbers).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import importlib
import importlib.util
import inspect
import json
import sys
import traceback
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import docstring_parser
import lightning.pytorch as pl
import torch
import yaml
from jsonargparse.typing import PositiveInt
from lightning.pytorch.cli import OptimizerCallable
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import CombinedLoader
from torch import nn

from benchmark.callbacks import BN_SAMPLES, BatchNormMode, CostMeter, Curves, EpochOfTotal, StopCriterion
from benchmark.core.errors import UnlearnBenchError
from benchmark.core.random_state import random_state, set_random_state
from benchmark.core.registry import Registry
from benchmark.core.validation import check_fields, checked
from benchmark.metrics.evaluator import Evaluator
from datamodules.access import FORGET_ONLY, DataAccess, DataView

StopTarget = Literal["none", "misclassify", "relabel"]
BatchNormModeName = Literal["train", "frozen", "reestimate"]
ROOT = Path(__file__).resolve().parents[1]
"""The repository root: `defaults` paths are relative to it."""


@dataclass(frozen=True)
class Budget:
    """How long a method unlearns and when it stops.

    Args:
        max_epochs: most epochs of unlearning (the trainer's `max_epochs` is set from it).
        batch_size: training batch size.
        stop: stop early when the forget set is fully misclassified (`misclassify`: forget/acc = 0, seed 001
            Algorithm 3) or fully relabeled (`relabel`: relabel/acc = 1); `none` never; unset: the method's
            `goal` when it has one, else `none`.
        stop_check: check the stop criterion after every optimizer `step` or every `epoch`.
    """

    max_epochs: PositiveInt = 1
    batch_size: PositiveInt = 64
    stop: StopTarget | None = None
    stop_check: Literal["epoch", "step"] = "epoch"

    def __post_init__(self) -> None:
        check_fields(self, "budget")  # one line naming the setting, the value and its range


SGD: dict = {"class_path": "torch.optim.SGD", "init_args": {"lr": 1e-3, "momentum": 0.9}}
"""The base's optimizer: SGD, lr 1e-3, momentum 0.9 (seed 000 §Experimental details)."""
BASE_SETTINGS = ("optimizer", "budget", "batchnorm")
SHARED_NAMES = frozenset({*BASE_SETTINGS, *(f.name for f in dataclasses.fields(Budget)), "lr", "momentum", "weight_decay"})
"""Names a method's own `__init__` must not declare: the base settings and what they hold."""


def optimizer_spec(value: Any) -> dict:
    """The canonical JSON form `{"class_path", "init_args"}` of an optimizer setting (such a dict, an optimizer class,
    or a `functools.partial` of one, as jsonargparse builds it): the class's full path and every argument, its
    defaults filled in, so that one optimizer has one spelling (a run's identity hashes it). The arguments are
    checked by building the optimizer once (`lr: -1` is refused here, by the optimizer's own check)."""
    if isinstance(value, dict):
        if "class_path" not in value:
            raise UnlearnBenchError(f"an optimizer setting needs a class_path, got {value}")
        cls, given = _optimizer_class(value["class_path"]), dict(value.get("init_args") or {})
    elif isinstance(value, type):
        cls, given = value, {}
    elif isinstance(value, functools.partial) and any(isinstance(a, type) for a in (value.func, *value.args)):
        cls, given = next(a for a in (value.func, *value.args) if isinstance(a, type)), dict(value.keywords)
    else:
        raise UnlearnBenchError(f"cannot read the optimizer setting {value!r}: give a class path and its arguments, "
                                "e.g. {'class_path': 'torch.optim.SGD', 'init_args': {'lr': 0.01}}")
    path = f"{cls.__module__}.{cls.__qualname__}"
    accepted = {name: p for name, p in inspect.signature(cls).parameters.items() if name != "params" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    unknown = set(given) - set(accepted)
    if unknown:
        raise UnlearnBenchError(f"optimizer {path} has no argument(s) {sorted(unknown)}; its arguments: {', '.join(accepted)}")
    defaults = {name: _like(p, p.default) for name, p in accepted.items() if p.default is not p.empty}
    init_args = defaults | {name: _like(accepted[name], value) for name, value in given.items()}
    try:
        cls([torch.zeros(1, requires_grad=True)], **init_args)
    except (TypeError, ValueError, RuntimeError) as error:
        raise UnlearnBenchError(f"optimizer {path} refuses {json.dumps(given)}: {error}") from None
    return {"class_path": path, "init_args": json.loads(json.dumps(init_args))}


def _like(parameter: inspect.Parameter, value: Any) -> Any:
    """`value` as a float where the parameter is annotated float (`0`, and YAML's string `'1e-4'`); else unchanged."""
    floating = "float" in str(parameter.annotation) or isinstance(parameter.default, float)
    if floating and not isinstance(value, bool) and isinstance(value, (int, str)):
        try:
            return float(value)
        except ValueError:
            return value  # the optimizer's own check names it
    return value


def _optimizer_class(class_path: str) -> type:
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module or "torch.optim"), name)
    except (ImportError, AttributeError, ValueError):
        raise UnlearnBenchError(f"unknown optimizer class {class_path}") from None
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        raise UnlearnBenchError(f"{class_path} is not an optimizer class (a torch.optim.Optimizer)")
    return cls


def make_optimizer(spec: dict, params) -> torch.optim.Optimizer:
    """The optimizer `spec` (`optimizer_spec` form) names, over `params`."""
    return _optimizer_class(spec["class_path"])(params, **spec["init_args"])


def _merge(default: Any, value: Any) -> Any:
    """A group setting given as a dict is merged into the group's default; anything else replaces it."""
    if isinstance(value, dict) and dataclasses.is_dataclass(default):
        unknown = set(value) - {f.name for f in dataclasses.fields(default)}
        if unknown:
            raise UnlearnBenchError(f"{type(default).__name__} has no setting(s) {sorted(unknown)}; its settings: "
                                    f"{', '.join(f.name for f in dataclasses.fields(default))}")
        return dataclasses.replace(default, **value)
    if isinstance(value, dict) and isinstance(default, dict) and "class_path" in default:
        same_class = _optimizer_class(value.get("class_path", default["class_path"])) is _optimizer_class(default["class_path"])
        return {"class_path": value.get("class_path", default["class_path"]),
                "init_args": {**(default["init_args"] if same_class else {}), **(value.get("init_args") or {})}}
    return value


def load_defaults(source: str | dict | None) -> dict:
    """The `init_args` of a method's defaults: a dict, or a LightningCLI model config file (relative to the repository)."""
    if source is None or isinstance(source, dict):
        return dict(source or {})
    path = Path(source) if Path(source).is_absolute() else ROOT / source
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise UnlearnBenchError(f"cannot read the method defaults {source}: {error}") from None
    return dict(config.get("init_args") or {})


def _with_defaults(cls: type) -> None:
    """Give `cls.__init__` the signature jsonargparse and `inspect` see: its own keyword-only parameters, then (when
    it forwards `**kwargs`) its parent's, with `cls.defaults` as their defaults; the wrapper applies them."""
    own = cls.__dict__.get("__init__")
    own = getattr(own, "__wrapped__", own)
    parent = cls.__mro__[1]
    target = own if own is not None else parent.__init__
    parameters: list[inspect.Parameter] = []
    forwards = own is None
    if own is not None:
        for p in list(_typed_signature(own).parameters.values())[1:]:
            if p.kind is p.VAR_KEYWORD:
                forwards = True
            elif p.kind is not p.VAR_POSITIONAL:
                parameters.append(p.replace(kind=p.KEYWORD_ONLY))
    if forwards:
        names = {p.name for p in parameters}
        parameters += [p for p in list(_typed_signature(parent.__init__).parameters.values())[1:] if p.name not in names
                       and (p.name not in BASE_SETTINGS or p.name in cls.base_settings)]
    defaults = load_defaults(cls.__dict__.get("defaults"))
    unknown = set(defaults) - {p.name for p in parameters}
    if unknown:
        raise UnlearnBenchError(f"the defaults of {cls.__name__} ({cls.defaults}) set {sorted(unknown)}, which it does not take")
    parameters = [p.replace(default=_merge(p.default, defaults[p.name])) if p.name in defaults else p for p in parameters]
    signature = inspect.Signature([inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD), *parameters])

    @functools.wraps(target)
    def __init__(self, *args, **kwargs):
        if args:
            raise TypeError(f"{cls.__name__} takes keyword arguments only")
        signature.bind(self, **kwargs)  # an argument it does not take: TypeError naming it
        values = {p.name: _merge(p.default, kwargs[p.name]) if p.name in kwargs else p.default for p in parameters}
        values = {p.name: checked(f"{cls.__name__}.{p.name}", p.annotation, values[p.name]) for p in parameters}
        if "_init_args" not in self.__dict__:  # the outermost class's resolved arguments are the method's hparams
            object.__setattr__(self, "_init_args", values)
        target(self, **values)  # (its own parameters, and its parent's when it forwards **kwargs)

    __init__.__signature__ = signature
    __init__.__doc__ = _documented(own.__doc__ if own is not None else None, parent.__init__.__doc__, [p.name for p in parameters])
    __init__.__declared__ = own  # the class's own `__init__` (None: it declares none)
    __init__.__annotations__ = {p.name: p.annotation for p in parameters if p.annotation is not p.empty}
    cls.__init__ = __init__


def _documented(own: str | None, inherited: str | None, names: list[str]) -> str | None:
    """`own` docstring with the `Args` entries of `inherited` it lacks for `names` appended (the `--help` of a method
    then describes the base settings too)."""
    google = docstring_parser.DocstringStyle.GOOGLE
    have = {p.arg_name for p in docstring_parser.parse(own or "", google).params}
    extra = [p for p in docstring_parser.parse(inherited or "", google).params if p.arg_name in names and p.arg_name not in have]
    if not extra:
        return own
    text = "\n" + inspect.cleandoc(own or "") + ("" if have else "\n\nArgs:")  # (a first line would be the summary)
    return text + "".join(f"\n    {p.arg_name}: {' '.join((p.description or '').split())}" for p in extra)


def _typed_signature(function) -> inspect.Signature:
    """`inspect.signature(function)` with its string annotations (`from __future__ import annotations`) resolved."""
    signature = inspect.signature(function)
    if hasattr(function, "__signature__"):
        return signature
    hints = typing.get_type_hints(function)
    return signature.replace(parameters=[p.replace(annotation=hints.get(p.name, p.annotation)) for p in signature.parameters.values()])


METHODS: Registry[type["UnlearningMethod"]] = Registry("method")


def register_method(cls: type[UnlearningMethod]) -> type[UnlearningMethod]:
    """Register a method class under its class name (the name used by `--model`)."""
    return METHODS.register(cls.__name__)(cls)


_LOADED: dict[tuple[str, str], object] = {}


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _shown(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def load_method(spec: str) -> tuple[type, dict]:
    """The method class named by `spec`: a registered name, or `path/to/file.py:ClassName` (a subclass of
    `UnlearningMethod` in a user's own file, imported once per content); and its `source` (as an entry stores it)."""
    if ":" not in spec and not spec.endswith(".py"):
        return METHODS.get(spec), {"kind": "registered"}
    file, _, name = spec.rpartition(":") if ":" in spec else (spec, "", "")
    path = Path(file) if Path(file).is_absolute() or Path(file).exists() else ROOT / file
    if not path.exists():
        raise UnlearnBenchError(f"method file {file} does not exist")
    if not name:
        raise UnlearnBenchError(f"name the class in the method file: --method {file}:ClassName")
    digest = file_sha256(path)
    key = (str(path.resolve()), digest)
    if key not in _LOADED:
        module_spec = importlib.util.spec_from_file_location(f"unlearnbench_submission_{digest[:16]}", path)
        module = importlib.util.module_from_spec(module_spec)
        try:
            module_spec.loader.exec_module(module)
        except Exception as error:  # noqa: BLE001 (the user's file: report it in one line)
            raise UnlearnBenchError(f"importing method file {file} raised {describe_error(error, path)}") from None
        _LOADED[key] = sys.modules[module.__name__] = module  # (importable by name: jsonargparse, pickling)
    cls = getattr(_LOADED[key], name, None)
    if not (isinstance(cls, type) and issubclass(cls, UnlearningMethod)):
        found = [n for n, v in vars(_LOADED[key]).items() if isinstance(v, type) and issubclass(v, UnlearningMethod) and v.__module__ == _LOADED[key].__name__]
        what = "no class" if cls is None else "not a subclass of methods.base.UnlearningMethod:"
        raise UnlearnBenchError(f"{file}: {what} '{name}'; its UnlearningMethod subclasses: {', '.join(found) or 'none'}")
    return cls, {"kind": "file", "file": str(path.resolve()), "class": name, "sha256": digest}


def describe_error(error: BaseException, path: Path | None) -> str:
    """`Type: message at file:line` (the innermost frame in the user's file, when there is one)."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    text = f"{type(error).__name__}" + (f": {message}" if message else "")
    if path is not None:
        frames = [f for f in traceback.extract_tb(error.__traceback__) if Path(f.filename).resolve() == path.resolve()]
        if frames:
            text += f" at {_shown(path)}:{frames[-1].lineno}"
    return text


GENERATOR = "generator:"
"""The checkpoint's key prefix of a method's own random generators."""


class UnlearningMethod(pl.LightningModule):
    """The unlearning method: `--model NAME` picks one, `--model.help NAME` lists its settings.

    The base of all methods (see the module docstring); subclasses set `data_access` and `train_splits`."""

    data_access: ClassVar[DataAccess] = FORGET_ONLY
    train_splits: ClassVar[tuple[str, ...]] = ("forget",)
    """Splits iterated in one training epoch; the longest defines the epoch, shorter ones cycle."""
    defaults: ClassVar[str | dict | None] = None
    """The paper's defaults: `configs/methods/<Method>/<paper>.yaml` (or a dict of init args)."""
    base_settings: ClassVar[tuple[str, ...]] = BASE_SETTINGS
    """The base settings the method takes (RAWP makes its own ascent steps: no `optimizer`)."""
    one_shot: ClassVar[bool] = False
    """Whether the method changes the weights in `prepare` alone, with no training epochs (Fisher): `test` then
    still evaluates what its `fit` saved, not the original."""
    augmented_keys: tuple[str, ...] = ()
    """Batch keys, besides the scenario's split names, whose images get the training augmentation (the scenario applies
    it on the device, `on_after_batch_transfer`): a method's own iterable over the splits' images under another key
    (RL's joined set). A method that keys its batches otherwise and leaves them out is not augmented (SCRUB's passes,
    as the authors' loaders)."""
    ignores_original: ClassVar[bool] = False
    """Whether the result does not depend on the original model's weights (Retrain): U-LiRA's shadows then need no originals."""

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__ or "defaults" in cls.__dict__ or "base_settings" in cls.__dict__:
            _with_defaults(cls)

    def __init__(self, *, optimizer: OptimizerCallable = SGD, budget: Budget = Budget(), batchnorm: BatchNormModeName = "train") -> None:
        """
        Args:
            optimizer: the optimizer of the unlearning (`class_path` and `init_args`, as LightningCLI's).
            budget: epochs, batch size and stop criterion.
            batchnorm: BatchNorm's mode while unlearning: `train` (batch statistics, as the authors' code),
                `frozen` (running statistics, not updated; affine weights still train) or `reestimate` (`train`,
                then the running statistics re-estimated on `BN_SAMPLES` retain images, seeded: a diagnostic
                that lets a method without retain access see that many retain images, `BatchNormMode`).
        """
        super().__init__()
        self.optimizer_spec = optimizer_spec(optimizer)
        self.budget = _merge(Budget(), budget)
        self.batchnorm = batchnorm
        if batchnorm == "reestimate" and self.data_access.retain == "none":
            self.data_access, self.retain_subset_size = DataAccess(forget=self.data_access.forget, retain="subset"), BN_SAMPLES
        own = {"optimizer": optimizer, "budget": budget, "batchnorm": batchnorm}
        init_args = self.__dict__.pop("_init_args") if "_init_args" in self.__dict__ else own
        self._init_kwargs = dict(init_args)
        self._set_hparams(self.hparams_of(init_args))  # (`save_hyperparameters` would read them off the call frames)
        self._hparams_initial = copy.deepcopy(self._hparams)
        self.model: nn.Module | None = None
        self.original: nn.Module | None = None
        self.data: DataView | None = None
        self.evaluator: Evaluator | None = None
        self.cost: dict[str, float] = {}
        self.stopped_at: dict[str, int] | None = None
        self.diverged: dict[str, int] | None = None
        """Where the training loss stopped being finite (training stops there), or None."""
        self.reused_seconds = 0.0
        """Seconds of one-off work `prepare` read from a cache instead of repeating it (e.g. an adversarial set made by
        another method on the same original, data and seed); the cost counts them as spent (`cost/reused_seconds`)."""
        self.results: dict[str, float] = {}
        self.curves: dict[str, list[float]] = {}
        """With `--evaluation.curves`: accuracy per split before unlearning and after every epoch."""

    @staticmethod
    def hparams_of(init_args: dict) -> dict:
        """The JSON form of resolved init args (what records and entries show; a value JSON cannot hold as its `str`)."""
        shown = {}
        for name, value in init_args.items():
            if name == "optimizer":
                value = optimizer_spec(value)
            elif dataclasses.is_dataclass(value):
                value = dataclasses.asdict(value)
            shown[name] = value
        return json.loads(json.dumps(shown, default=str))

    @property
    def stop_target(self) -> StopTarget:
        """The budget's stop criterion; unset: the method's `goal` (misclassify / relabel), else `none`."""
        return self.budget.stop if self.budget.stop is not None else getattr(self, "goal", "none")

    # ---- set up by the pipeline ----
    def attach(self, original: nn.Module, data: DataView, pretrained, evaluator: Evaluator) -> None:
        """Take the original model (a frozen copy is kept, a trainable copy is unlearned), the data view the method
        may see, the original's description (`Pretrained`) and the evaluator of the benchmark's splits."""
        self.original = copy.deepcopy(original).eval().requires_grad_(False)
        self.model = copy.deepcopy(original).train().requires_grad_(True)
        self.data = data
        self.num_classes = data.num_classes
        self.pretrained = pretrained
        self.evaluator = evaluator
        self.evaluation = evaluator.evaluation

    def fresh_copy(self) -> "UnlearningMethod":
        """A new, unattached instance of this method with the same hyperparameters (for shadow runs)."""
        return type(self)(**self._init_kwargs)

    def num_epochs(self) -> int:
        return self.budget.max_epochs

    def batch_size(self) -> int:
        return self.budget.batch_size

    def configure_callbacks(self) -> list[pl.Callback]:
        """The shared callbacks (cost, stop criterion, BatchNorm mode, curves); a method may add its own."""
        curves = getattr(self, "evaluation", None) is not None and self.evaluation.curves
        return [BatchNormMode(), CostMeter(), StopCriterion(), EpochOfTotal(), *([Curves()] if curves else [])]  # (re-estimation counted in the cost)

    # ---- what a method implements ----
    def prepare(self, data: DataView) -> None:
        """One-off work before unlearning (noise, adversarial examples, importances); counted in the cost."""

    def train_loader(self, data: DataView):
        """The training iterable: by default `train_splits` combined, batches as `{split: (x, y)}`."""
        return CombinedLoader({name: data.loader(name, self.batch_size()) for name in self.train_splits}, mode="max_size_cycle")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def configure_optimizers(self):
        return make_optimizer(self.optimizer_spec, self.model.parameters())

    # ---- Lightning hooks ----
    def on_fit_start(self) -> None:
        missing = [name for name in self.train_splits if name not in self.data]
        if "relabel" in missing:
            raise UnlearnBenchError(f"{type(self).__name__} trains on the request's new labels and needs a request with new labels "
                                    f"(e.g. RandomInstances relabel=True); request {self.data.request_hash[:16]} has none")
        if self._resumed is not None and self._resumed[1]["world_size"] != self.trainer.world_size:
            raise UnlearnBenchError(f"the checkpoint was written by a fit of {self._resumed[1]['world_size']} processes; resume it with as "
                                    f"many (--trainer.num_nodes × --trainer.devices), not {self.trainer.world_size}")
        self.prepare(self.data)
        if self._resumed is not None:  # `prepare` saw the original and drew what it drew in the fit that wrote the checkpoint
            weights, randomness = self._resumed
            self.load_state_dict(weights)
            state = randomness["state"]
            state = {name: value[self.global_rank] for name, value in state.items()} if randomness["world_size"] > 1 else state
            set_random_state({name: value for name, value in state.items() if not name.startswith(GENERATOR)})
            for name, value in state.items():
                if name.startswith(GENERATOR):
                    getattr(self, name.removeprefix(GENERATOR)).set_state(value.cpu().clone())
            self._resumed = None

    _resumed: tuple[dict, dict] | None = None

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Every process's random generators go into the checkpoint (its epoch's last draws made), the method's own
        (`torch.Generator` attributes, such as RL's label draws) included, so a fit resumed from it draws what the
        uninterrupted fit drew (its next epoch's shuffle first)."""
        state = random_state() | {GENERATOR + name: g.get_state() for name, g in vars(self).items() if isinstance(g, torch.Generator)}
        if self.trainer.world_size > 1:  # (every process builds the checkpoint; rank 0 alone writes it)
            state = {name: self.all_gather(value) for name, value in state.items()}
        checkpoint["random_state"] = {"world_size": self.trainer.world_size, "state": state}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Resuming a fit (`ckpt_path`): Lightning would load the checkpoint's weights before `on_fit_start`, so `prepare`
        (masks, adversarial examples, importances: computed from the original) would see the partly unlearned model, and
        modules `prepare` adds would be missing; `on_fit_start` loads them after `prepare` instead, and sets the random
        generators last, just before the next epoch's loader is made. (`test` loads the weights as Lightning does.)"""
        if self.trainer.state.fn == TrainerFn.FITTING and "random_state" in checkpoint:
            self._resumed = checkpoint["state_dict"], checkpoint["random_state"]
            checkpoint["state_dict"] = self.state_dict()

    def train_dataloader(self):
        return self.train_loader(self.data)

    def log_train(self, name: str, value: torch.Tensor, prog_bar: bool = False) -> None:
        """`self.log` of a training measure when something reads it: a logger, a callback that monitors a metric, or
        the progress bar (`prog_bar`). Lightning's `log` costs ~1 ms a step on CPU (it moves its result object to the
        value's device each time): 15 % of a digits epoch that nothing would read."""
        trainer = self._trainer
        if trainer is None:  # (a step called by hand: nothing to log to)
            return
        if trainer.loggers or any(getattr(c, "monitor", None) for c in trainer.callbacks) or (prog_bar and trainer.progress_bar_callback):
            self.log(name, value, prog_bar=prog_bar)

    def test_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        x, y, indices = batch
        self.evaluator.update(self.evaluator.splits[dataloader_idx], self.model(x), y, indices)

    def on_test_epoch_end(self) -> None:
        self.results = self.evaluator.compute()
        self.evaluator.reset()
        if self.trainer.loggers:
            self.log_dict(self.results, rank_zero_only=True)


class TrainsOnRetain(UnlearningMethod):
    """Cross-entropy on D_r batches: what FineTune, Retrain and the masking methods' fine-tuning train with."""

    train_splits = ("retain",)

    def training_step(self, batch, batch_idx):
        x, y = batch["retain"]
        loss = torch.nn.functional.cross_entropy(self.model(x), y)
        self.log_train("train/loss", loss, prog_bar=True)
        return loss
