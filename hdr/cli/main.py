"""The hdr command group. Each command is a module of hdr/cli/ that parses its options and hands
the work to the layers below; heavy imports (Keras, TensorFlow) happen inside the commands that
need them, so `hdr --help` and `hdr compare` start at once. Exit codes: hdr/core/errors.py.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from hdr import __version__
from hdr.core.errors import HdrError, Stopped, UsageError

# Every command lives in its own module of hdr/cli/, imported only when it runs: name ->
# (module:attr, the one-line help that `hdr --help` lists). The short help is said here once; the
# command's own docstring is the long help of `hdr NAME --help`.
LAZY_COMMANDS = {
    "train": ("hdr.cli.train:command", "Train the model a YAML config describes into a new run folder."),
    "runs": ("hdr.cli.runs:command", "List runs: status, progress, best validation and test accuracy."),
    "evaluate": ("hdr.cli.evaluate:command", "Confusion matrix, per-class figures and misclassified digits of a run."),
    "compare": ("hdr.cli.compare:command", "Runs side by side: the config keys that differ, accuracy, curves."),
    "sweep": ("hdr.cli.sweep:command", "Train a config at every point of a grid, then compare the runs."),
    "cv": ("hdr.cli.cv:command", "Stratified K-fold cross-validation of a config over the training set."),
    "predict": ("hdr.cli.predict:command", "The digit in your own image files, read by a run's model."),
    "draw": ("hdr.cli.draw:command", "Draw a digit with the mouse and watch a run's model guess it."),
    "export": ("hdr.cli.export:command", "A run's model as a verified SavedModel, ONNX or LiteRT file."),
    "tune": ("hdr.cli.tune:command", "Search a config's hyperparameters with Optuna; every trial a run folder."),
    "ensemble": ("hdr.cli.ensemble:command", "Average several runs' predicted probabilities and evaluate the ensemble."),
    "track": ("hdr.cli.track:command", "Log run folders to MLflow: config, per-epoch history, figures, files, model."),
    "data": ("hdr.cli.data:group", "Download and inspect the datasets."),
}


def _one_line(e: click.UsageError) -> UsageError:
    hint = f" (see '{e.ctx.command_path} --help')" if e.ctx is not None else ""
    message = e.format_message()
    if isinstance(e, click.NoSuchOption) and not e.possibilities:  # none of the command's own options is near
        message = message.rstrip(".") + _as_override(e)
    return UsageError(f"{message}{hint}")


def _as_override(e: click.NoSuchOption) -> str:
    """For `hdr train --epochs 3` and the like, in a command that takes KEY=VALUE overrides: the
    config key the option may have meant, written as the override that sets it."""
    if e.ctx is None or not any(p.name == "overrides" for p in e.ctx.command.params):
        return ""
    import difflib

    from hdr.engine.config import key_paths

    name = e.option_name.lstrip("-").replace("-", "_")
    keys = key_paths()
    last = {k.rpartition(".")[2] for k in keys}
    near = [name] if name in last else difflib.get_close_matches(name, sorted(last), n=1)
    if not near:
        return ""
    args = e.ctx.meta.get("hdr.args", [])
    value = "VALUE"
    for i, arg in enumerate(args):
        if arg.startswith(e.option_name + "="):
            value = arg.partition("=")[2]
        elif arg == e.option_name and i + 1 < len(args) and not args[i + 1].startswith("-"):
            value = args[i + 1]
    keys = [k for k in keys if k.rpartition(".")[2] == near[0]]
    return f"; config keys are set as KEY=VALUE after the config: {' or '.join(f'{k}={value}' for k in keys)}"


def _debug(ctx, param, value):
    if value:
        ctx.meta["hdr.debug"] = True


def _with_debug(cmd: click.Command) -> click.Command:
    """--debug after the command too (hdr evaluate RUN --debug), for it and its subcommands."""
    if not any(p.name == "debug" for p in cmd.params):
        cmd.params.append(click.Option(["--debug"], is_flag=True, expose_value=False, is_eager=True, callback=_debug,
                                       help="Show full tracebacks instead of one-line errors."))
    for sub in getattr(cmd, "commands", {}).values():
        _with_debug(sub)
    return cmd


class HdrGroup(click.Group):
    """click's LazyGroup recipe, plus hdr's one-line form of click's own usage errors and
    --debug tracebacks. Every other error is a click exception already (hdr.core.errors)."""

    def __init__(self, *args, lazy: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = lazy if lazy is not None else {}

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def format_commands(self, ctx, formatter):
        self._listing = True  # list lazy commands by their registered help, without importing them
        try:
            super().format_commands(ctx, formatter)
        finally:
            self._listing = False

    def get_command(self, ctx, name):
        if name not in self.lazy:
            return super().get_command(ctx, name)
        target, short = self.lazy[name]
        if getattr(self, "_listing", False):
            return click.Command(name, short_help=short)
        module, attr = target.split(":")
        # An import error here is a bug in hdr, not a user mistake: it propagates as a traceback.
        cmd = getattr(importlib.import_module(module), attr)
        cmd.short_help = short
        return _with_debug(cmd)

    def parse_args(self, ctx, args):
        ctx.meta["hdr.args"] = list(args)  # what an unknown option's hint quotes
        try:
            return super().parse_args(ctx, args)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as e:
            if isinstance(e, HdrError):
                raise
            raise _one_line(e) from None

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except HdrError:
            if ctx.meta.get("hdr.debug"):
                import traceback  # only here: every command would pay for importing it

                traceback.print_exc()  # then click prints the one line and exits with its code
            raise
        except click.UsageError as e:
            raise _one_line(e) from None
        except KeyboardInterrupt:
            # Ctrl-C before training started (or outside it): nothing was written yet.
            if ctx.meta.get("hdr.debug"):
                raise
            raise Stopped("interrupted; nothing was written") from None


@click.group(cls=HdrGroup, lazy=LAZY_COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hdr")
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx, debug):
    """hdr: train, evaluate and compare handwritten-digit classifiers from YAML configs.

    \b
    Start with:
      hdr train configs/cnn_adam.yaml
      hdr evaluate runs/<id>
      hdr compare runs/*
    """
    ctx.meta["hdr.debug"] = debug


_TRAINED = False  # set by `hdr train` (trained()) once its run folder is complete and its last line printed


def trained() -> None:
    global _TRAINED
    _TRAINED = True


def main():
    try:
        cli(prog_name="hdr")
    except SystemExit as e:
        if _TRAINED and e.code in (0, None):
            # Every file of the run is written and synced (hdr.runs.rundir); Python's tear-down of
            # TensorFlow would only keep the user waiting: about a CPU-second, several seconds
            # of wall time on a busy machine (BENCHMARKS.md, "Time to 99 %").
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        raise


if __name__ == "__main__":
    main()
