"""UnlearnBench command line: `python cli.py fit|test|pretrain|compare|datasets|models|request …`.

`fit` and `test` are LightningCLI subcommands: `--model` picks a method, `--data` a scenario,
`--pretrained` the original model; every hyperparameter is settable from YAML or the command line.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import warnings

from jsonargparse import ArgumentError
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

import methods  # noqa: F401  (registers the methods for --model)
from benchmark.commands import tools
from benchmark.core.errors import UnlearnBenchError
from benchmark.experiment import runner
from benchmark.metrics.evaluator import Evaluation
from benchmark.models.pretraining import Pretrained
from datamodules.scenarios import SCENARIOS, UnlearningScenario
from methods import METHODS, UnlearningMethod


def one_line(message: str) -> str:
    """Condense jsonargparse's multi-line parse error into one line naming the problem."""
    lines = [line.strip(" -") for line in str(message).strip().splitlines() if line.strip(" -")] or ["invalid arguments"]
    key = re.match(r'Parser key "([^"]+)"', lines[0])
    if not key:
        return lines[0]
    given = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("Given value:")), None)
    known = {"model": ("method", METHODS.names()), "data": ("scenario", SCENARIOS)}
    if key.group(1) in known and given:
        kind, names = known[key.group(1)]
        return f"unknown {kind} '{given}'; known: {', '.join(names)} (or an import path module.Class)"
    return f"invalid value for --{key.group(1)}: {'; '.join(lines[1:3])}"


class OneLineErrorParser(LightningArgumentParser):
    """Parse errors as one line naming the problem (and the known names), exit status 2."""

    def error(self, message: str, ex: Exception | None = None):
        if not self.exit_on_error:  # a nested parser jsonargparse checks a value with: it catches the error
            raise ArgumentError(message) from ex
        print(f"error: {one_line(message)}", file=sys.stderr)
        sys.exit(2)


class UnlearnCLI(LightningCLI):
    """`fit` unlearns and then evaluates every split; `test` evaluates; each writes one result record."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_class_arguments(Pretrained, "pretrained")
        parser.add_class_arguments(Evaluation, "evaluation")
        parser.add_argument("--results_dir", type=str | None, default=None, help="where result records go (default $UNLEARNBENCH_HOME/results)")

    def _setting(self, key: str):
        return self.config[self.subcommand][key]

    def _pretrained(self) -> Pretrained:
        return Pretrained(**dict(self._setting("pretrained")))

    def _attach(self) -> None:
        """The pipeline's start (`runner.attach`), and its end: a `RecordWriter` on the trainer, run by `trainer.test`."""
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
        self.trainer.test(self.model, datamodule=self.datamodule, verbose=False)
        self._show()

    def before_test(self) -> None:
        """`test` evaluates the original (or `--pretrained.checkpoint`), or the model a previous `fit` of the method saved."""
        self._attach()
        if self.model.num_epochs() > 0:
            runner.load_unlearned(self.model, self.datamodule, self._setting("seed_everything"), self._setting("results_dir"))

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
    warnings.filterwarnings("ignore", message=".*(does not have many workers|Total length of|No training batches|LeafSpec|treespec|module\\(s\\) in eval mode).*")
    try:
        if argv and argv[0] in tools.TOOLS:
            tools.TOOLS[argv[0]](argv[1:])
            return
        UnlearnCLI(
            UnlearningMethod,
            UnlearningScenario,
            subclass_mode_model=True,
            subclass_mode_data=True,
            args=args,
            parser_class=OneLineErrorParser,
            seed_everything_default=0,
            trainer_defaults=runner.TRAINER_DEFAULTS,
            save_config_callback=None,
            auto_configure_optimizers=False,
            parser_kwargs={"description": __doc__ + f"\nOther commands: {', '.join(tools.TOOLS)} (each has --help)."},
        )
    except KeyboardInterrupt:
        print("error: interrupted; no result record was written", file=sys.stderr)
        sys.exit(130)
    except Exception as error:  # noqa: BLE001 (jsonargparse wraps errors raised while instantiating)
        cause = user_error(error)
        if cause is None:
            raise
        print(f"error: {cause}", file=sys.stderr)
        sys.exit(2)


def user_error(error: BaseException | None) -> UnlearnBenchError | None:
    """The `UnlearnBenchError` behind `error`, if any (following the chain of causes)."""
    while error is not None and not isinstance(error, UnlearnBenchError):
        error = error.__cause__ or error.__context__
    return error


if __name__ == "__main__":
    cli_main()
