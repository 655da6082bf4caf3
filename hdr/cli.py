"""The hdr command line. Heavy imports (Keras, TensorFlow) happen inside the commands that need them,
so `hdr --help` and `hdr compare` start at once. Exit codes: hdr/errors.py.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import click

from hdr import __version__
from hdr.errors import HdrError, Stopped, UsageError

# Commands that live in their own modules, imported only when run: name -> (module:attr, the
# one-line help that `hdr --help` lists). The short help is said here once; the command's own
# docstring is the long help of `hdr NAME --help`.
LAZY_COMMANDS = {
    "runs": ("hdr.runs:command", "List runs: status, progress, best validation and test accuracy."),
    "evaluate": ("hdr.evaluate:command", "Confusion matrix, per-class figures and misclassified digits of a run."),
    "compare": ("hdr.compare:command", "Runs side by side: the config keys that differ, accuracy, curves."),
    "sweep": ("hdr.sweep:command", "Train a config at every point of a grid, then compare the runs."),
    "cv": ("hdr.cv:command", "Stratified K-fold cross-validation of a config over the training set."),
    "predict": ("hdr.predict:command", "The digit in your own image files, read by a run's model."),
    "draw": ("hdr.draw:command", "Draw a digit with the mouse and watch a run's model guess it."),
    "export": ("hdr.export:command", "A run's model as a verified SavedModel, ONNX or LiteRT file."),
    "tune": ("hdr.tune:command", "Search a config's hyperparameters with Optuna; every trial a run folder."),
    "ensemble": ("hdr.ensemble:command", "Average several runs' predicted probabilities and evaluate the ensemble."),
    "track": ("hdr.track:command", "Log run folders to MLflow: config, per-epoch history, figures, files, model."),
}
DATA_COMMANDS = {
    "describe": ("hdr.describe:command", "Class counts, value range, checks and sample grid of a dataset."),
}


class DatasetName(click.ParamType):
    """A registered dataset's name (hdr.data.DATASETS), looked up only when a command runs, so
    that listing the commands does not import the data module."""

    name = "dataset"

    def convert(self, value, param, ctx):
        from hdr.data import DATASETS

        if value in DATASETS:
            return value
        self.fail(f"unknown dataset {value!r}; allowed: {', '.join(DATASETS)}", param, ctx)


def _one_line(e: click.UsageError) -> UsageError:
    hint = f" (see '{e.ctx.command_path} --help')" if e.ctx is not None else ""
    return UsageError(f"{e.format_message()}{hint}")


class HdrGroup(click.Group):
    """click's LazyGroup recipe, plus hdr's one-line form of click's own usage errors and
    --debug tracebacks. Every other error is a click exception already (hdr.errors)."""

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
        return cmd

    def parse_args(self, ctx, args):
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


def _config_name(path: str) -> str:
    return Path(path).stem


@cli.command()
@click.argument("config", required=False, type=click.Path(dir_okay=False, path_type=str))
@click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path(file_okay=False),
              help="Folder in which the run folder is created.")
@click.option("--resume", "resume_run", type=click.Path(path_type=str), metavar="RUN",
              help="Continue an interrupted run from its last completed epoch.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output; print only the run folder.")
@click.option("--info", "info_items", multiple=True, hidden=True, metavar="KEY=VALUE",
              help="Extra field recorded in run.json (used by hdr sweep).")
def train(config, overrides, runs_dir, resume_run, quiet, info_items):
    """Train the model that CONFIG describes and write a run folder.

    KEY=VALUE pairs override config keys by dotted path, values read as YAML:

    \b
      hdr train configs/cnn_adam.yaml training.epochs=1 optimizer.name=sgd

    The last line printed on stdout is the path of the run folder.
    """
    if resume_run:
        if config or overrides:
            raise UsageError("--resume takes only the run folder; the config is the run's own config.yaml")
        from hdr import train as train_mod

        folder = train_mod.resume(Path(resume_run), quiet=quiet)
    else:
        if not config:
            raise UsageError("missing CONFIG: give a YAML config file (see configs/) or --resume RUN")
        from hdr import config as config_mod

        cfg = config_mod.load(config, list(overrides))
        from hdr import train as train_mod

        extra = {}
        for item in info_items:
            key, _, value = item.partition("=")
            extra[key] = value
        folder = train_mod.train(cfg, _config_name(config), Path(runs_dir), quiet=quiet, extra_info=extra)
    if not quiet:
        import json

        m = json.loads((folder / "metrics.json").read_text())
        click.echo(f"test accuracy {m['test_accuracy']:.4f}, test loss {m['test_loss']:.4f}, "
                   f"{m['epochs']} epoch{'s' if m['epochs'] != 1 else ''} in {m['train_seconds']:.1f}s")
    click.echo(str(folder))
    global _TRAINED
    _TRAINED = True


@cli.group(cls=HdrGroup, lazy=DATA_COMMANDS)
def data():
    """Download and inspect the datasets."""


@data.command("download")
@click.argument("names", nargs=-1, type=DatasetName())
def data_download(names):
    """Download and verify datasets into the data folder (HDR_DATA_DIR or the user cache); all
    of them when no NAME is given."""
    from hdr import data as data_mod

    for name in names or tuple(data_mod.DATASETS):
        paths = data_mod.ensure_files(name)
        data_mod.load(name)
        click.echo(f"{name}: ok ({paths[next(iter(paths))].parent})")


@data.command("path")
def data_path():
    """Print the data folder hdr reads datasets from."""
    from hdr import data as data_mod

    click.echo(str(data_mod.data_dir()))


_TRAINED = False  # set by `hdr train` once its run folder is complete and its last line printed


def main():
    try:
        cli(prog_name="hdr")
    except SystemExit as e:
        if _TRAINED and e.code in (0, None):
            # Every file of the run is written and synced (hdr.rundir); Python's tear-down of
            # TensorFlow would only keep the user waiting: about a CPU-second, several seconds
            # of wall time on a busy machine (BENCHMARKS.md, "Time to 99 %").
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        raise


if __name__ == "__main__":
    main()
