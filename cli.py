"""UnlearnBench command line: `python cli.py fit|test|pretrain|compare|datasets|models|request …`.

`fit` and `test` are LightningCLI subcommands: `--model` picks a method, `--data` a scenario,
`--pretrained` the original model; every hyperparameter is settable from YAML or the command line.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import logging
import re
import sys
import warnings
from pathlib import Path

import jsonargparse.typing as restricted_types
import yaml
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

import methods  # noqa: F401  (registers the methods for --model)
from benchmark.commands import tools
from benchmark.core.errors import UnlearnBenchError
from benchmark.core.validation import allowed
from benchmark.experiment import runner
from benchmark.metrics.evaluator import Evaluation
from benchmark.models.pretraining import Pretrained
from benchmark.training import check_world, run_test
from datamodules.scenarios import SCENARIOS, UnlearningScenario
from methods import METHODS, UnlearningMethod
from methods.base import load_method


def one_line(message: str) -> str:
    """Condense jsonargparse's multi-line parse error into one line naming the problem (and what is allowed)."""
    lines = [line.strip(" -") for line in str(message).strip().splitlines() if line.strip(" -")] or ["invalid arguments"]
    key = re.match(r'Parser key "([^"]+)":?\s*(.*)', lines[0])
    if not key:
        return "; ".join(lines[:2]) if lines[0].startswith("Problems parsing config") else lines[0]  # (YAML: the line and column)
    group, rest = key.groups()
    if rest:
        return f"invalid value for --{group}: {rest}"
    given = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("Given value:")), None)
    problem = next((i for i, line in enumerate(lines) if line.startswith("Problem with given class_path")), None)
    if problem is not None:
        class_path = re.search(r"'([^']+)'", lines[problem]).group(1)
        detail = lines[problem + 1:]
        text = " ".join(detail)
        option = re.search(r"Option '([^']+)' is not accepted", text)
        nested = re.match(r'Parser key "([^"]+)"', detail[0])
        if option:
            where = f"{group}.{nested.group(1)}" if nested else group
            inner = re.search(r"class_path='([^']+)'", text) if nested else None  # (an optimizer's option)
            owner = inner.group(1) if inner else class_path
            return f"--{where}.{option.group(1)} is not a setting of {owner.rpartition('.')[2]}; its settings: {', '.join(settings_of(owner))}"
        if nested:
            reason = detail[1].split(". Got value", 1)[0] if len(detail) > 1 else "invalid value"
            restricted = re.match(r"Not of type (\w+): (.+) does not conform to restriction", reason)
            if restricted and isinstance(getattr(restricted_types, restricted.group(1), None), type):
                reason = f"{restricted.group(2)} is not allowed; {allowed(getattr(restricted_types, restricted.group(1)))}"
            return f"invalid value for --{group}.{nested.group(1)}: {reason}"
        return f"--{group} {class_path}: {detail[0]}"  # (the import of a module.Class failed: why)
    known = {"model": ("method", METHODS.names()), "data": ("scenario", SCENARIOS)}
    if group in known and given:
        kind, names = known[group]
        return f"unknown {kind} '{given}'; known: {', '.join(names)} (or an import path module.Class, or file.py:Class)"
    return f"invalid value for --{group}: {'; '.join(lines[1:3])}"


def settings_of(class_path: str) -> list[str]:
    """The settings a method takes (dataclass groups expanded: `budget.max_epochs`), or an optimizer's arguments."""
    try:
        module, _, name = class_path.rpartition(".")
        cls = getattr(importlib.import_module(module or "torch.optim"), name)
        parameters = [p for p in inspect.signature(cls).parameters.values() if p.name != "params"]
    except (ImportError, AttributeError, ValueError, TypeError):
        return ["(see --model.help)"]
    names = []
    for parameter in parameters:
        group = parameter.default if dataclasses.is_dataclass(parameter.default) else None
        names += [f"{parameter.name}.{f.name}" for f in dataclasses.fields(group)] if group else [parameter.name]
    return names


def check_config_files(argv: list[str]) -> None:
    """A `--config` file that is not valid YAML: one line naming the file, the line and the column (jsonargparse
    would name only `<unicode string>`)."""
    for i, arg in enumerate(argv):
        path = argv[i + 1] if arg == "--config" and i + 1 < len(argv) else arg.split("=", 1)[1] if arg.startswith("--config=") else None
        if path and Path(path).is_file():
            try:
                yaml.safe_load(Path(path).read_text())
            except yaml.MarkedYAMLError as error:
                mark = error.problem_mark or error.context_mark
                where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
                raise UnlearnBenchError(f"config {path} is not valid YAML:{where} {error.problem or error.context}") from None
            except (yaml.YAMLError, UnicodeDecodeError) as error:
                raise UnlearnBenchError(f"config {path} is not valid YAML: {error}") from None


def method_files_imported(argv: list[str]) -> list[str]:
    """`--model file.py:Class` (as `submit --method` takes it): import the file and name the class by its import path."""
    out = list(argv)
    for i, arg in enumerate(out):
        value = out[i + 1] if arg == "--model" and i + 1 < len(out) else arg.split("=", 1)[1] if arg.startswith("--model=") else None
        if value and ":" in value and value.split(":", 1)[0].endswith(".py"):
            cls, _ = load_method(value)
            path = f"{cls.__module__}.{cls.__qualname__}"
            out[i + 1 if arg == "--model" else i] = path if arg == "--model" else f"--model={path}"
    return out


class OneLineErrorParser(LightningArgumentParser):
    """Parse errors as one line naming the problem (and the known names), exit status 2."""

    def error(self, message: str, ex: Exception | None = None):
        if not self.exit_on_error:  # a nested parser jsonargparse checks a value with: it catches the error
            super().error(message, ex)
        print(f"error: {one_line(message)}", file=sys.stderr)
        sys.exit(2)


class UnlearnCLI(LightningCLI):
    """`fit` unlearns and then evaluates every split; `test` evaluates; each writes one result record."""

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """`fit` and `test` only: Lightning's `validate` and `predict` have no meaning for an unlearning run."""
        return {name: skip for name, skip in LightningCLI.subcommands().items() if name in ("fit", "test")}

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_class_arguments(Pretrained, "pretrained")
        parser.add_class_arguments(Evaluation, "evaluation")
        parser.add_argument("--results_dir", type=str | None, default=None, help="where result records go (default $UNLEARNBENCH_HOME/results)")
        for group in [g for g in parser._action_groups if (g.title or "").startswith("Customize every aspect of training")]:
            group.title = "Lightning Trainer flags, last: the run's devices, accelerator and strategy (--trainer.devices 2 --trainer.strategy ddp)"
            parser._action_groups.remove(group)  # `fit --help` shows the method, scenario, original and evaluation first
            parser._action_groups.append(group)

    def _setting(self, key: str):
        return self.config[self.subcommand][key]

    def _pretrained(self) -> Pretrained:
        return Pretrained(**dict(self._setting("pretrained")))

    def _attach(self) -> None:
        """The pipeline's start (`runner.attach`), and its end: a `RecordWriter` on the trainer, run by `trainer.test`."""
        check_world(self.trainer)
        evaluation = Evaluation(**dict(self._setting("evaluation")))
        runner.attach(self.model, self.datamodule, self._pretrained(), evaluation, progress=self.trainer.is_global_zero)
        runner.pl.seed_everything(self._setting("seed_everything"), verbose=False)
        self.writer = runner.RecordWriter(self._pretrained(), self._setting("seed_everything"), self._config, self._setting("results_dir"))
        self.trainer.callbacks.append(self.writer)

    def _config(self) -> dict:
        return json.loads(self._parser(self.subcommand).dump(self.config[self.subcommand], format="json", skip_check=True))

    def before_fit(self) -> None:
        self._attach()
        self.trainer.fit_loop.max_epochs = self.model.num_epochs()

    def after_fit(self) -> None:
        run_test(self.model, self.datamodule, self.trainer, verbose=False)  # the fitted weights (on SLURM, not an hpc_ckpt_*)
        self._show()

    def before_test(self) -> None:
        """`test` evaluates the original (or `--pretrained.checkpoint`), or the model a previous `fit` of the method saved."""
        self._attach()
        if self.model.num_epochs() > 0 or self.model.one_shot:
            runner.load_unlearned(self.model, self.datamodule, self._pretrained(), self._setting("seed_everything"), self._setting("results_dir"),
                                  self.trainer)

    def test(self, model: UnlearningMethod, datamodule: UnlearningScenario, ckpt_path: str | None = None, **test_kwargs) -> None:
        """The `test` subcommand's `trainer.test`: of the weights `before_test` loaded (on SLURM, not an hpc_ckpt_*), or `--ckpt_path`."""
        run_test(model, datamodule, self.trainer, ckpt_path, **test_kwargs)

    def after_test(self) -> None:
        self._show()

    def _show(self) -> None:
        if self.trainer.is_global_zero:
            print(tools.format_table([self.writer.record]))
            print(f"result record: {self.writer.record['path']}")


def cli_main(args: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if args is None else args)
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*(does not have many workers|Total length of|No training batches|LeafSpec|treespec|module\\(s\\) in eval mode|LightningCLI's args parameter).*")
    try:
        if argv and argv[0] in tools.TOOLS:
            tools.TOOLS[argv[0]](argv[1:])
            return
        check_config_files(argv)
        UnlearnCLI(
            UnlearningMethod,
            UnlearningScenario,
            subclass_mode_model=True,
            subclass_mode_data=True,
            args=method_files_imported(argv),
            parser_class=OneLineErrorParser,
            seed_everything_default=0,
            trainer_defaults=runner.TRAINER_DEFAULTS,
            save_config_callback=None,
            auto_configure_optimizers=False,
            parser_kwargs={"allow_abbrev": False, "description": __doc__ + f"\nOther commands: {', '.join(tools.TOOLS)} (each has --help)."},
        )
    except KeyboardInterrupt:
        interrupted(argv)
    except SystemExit:
        if runner.RecordWriter.interrupted:  # Lightning's own Ctrl-C handling ends in sys.exit(1), silently
            interrupted(argv)
        raise
    except Exception as error:  # noqa: BLE001 (jsonargparse wraps errors raised while instantiating)
        cause = user_error(error)
        if cause is None:
            raise
        print(f"error: {cause}", file=sys.stderr)
        sys.exit(2)


def interrupted(argv: list[str]) -> None:
    """Ctrl-C: one line saying what was (not) written, exit status 130 (as a shell reports SIGINT)."""
    what = "no entry was written" if argv and argv[0] == "submit" else "no result record was written"
    print(f"error: interrupted; {what}", file=sys.stderr)
    sys.exit(130)


def user_error(error: BaseException | None) -> UnlearnBenchError | None:
    """The `UnlearnBenchError` behind `error`, if any (following the chain of causes)."""
    while error is not None and not isinstance(error, UnlearnBenchError):
        error = error.__cause__ or error.__context__
    return error


if __name__ == "__main__":
    cli_main()
