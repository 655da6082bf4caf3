"""The hdr command line. Heavy imports (Keras, TensorFlow) happen inside the commands that need them,
so `hdr --help` and `hdr compare` start at once.

Exit codes: 0 success, 1 runtime failure, 2 usage or config mistake, 130/143 interrupted.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from hdr import __version__
from hdr.errors import HdrError


# Commands that live in their own modules, imported only when listed or run: "name": "module:attr".
LAZY_COMMANDS = {
    "evaluate": "hdr.evaluate:command",
    "compare": "hdr.compare:command",
    "sweep": "hdr.sweep:command",
    "cv": "hdr.cv:command",
    "predict": "hdr.predict:command",
    "draw": "hdr.draw:command",
}

# The one-line help of each lazy command, so `hdr --help` lists the commands without importing
# their modules (several import numpy: half of the 0.3 s budget for `hdr --help`).
# tests/test_perf_paths.py checks every entry against the command's own help.
LAZY_HELP = {
    "hdr.evaluate:command": "Evaluate the model of run folder RUN: loss, accuracy, confusion matrix, per-class "
                            "figures and the misclassified digits, written with report.md into RUN/eval/ "
                            "(RUN/eval-val/ for --split val, RUN/eval-on-DATASET/ for --on).",
    "hdr.compare:command": "Compare runs side by side: the config keys that differ, accuracy, loss, time, status.",
    "hdr.sweep:command": "Train CONFIG at every point of a grid, each point its own run folder, then compare them.",
    "hdr.cv:command": "Stratified K-fold cross-validation of CONFIG over the training set.",
    "hdr.predict:command": "Predict the digit in each IMAGE with the model of the run folder RUN.",
    "hdr.draw:command": "Draw a digit with the mouse and watch the model of run folder RUN guess it.",
    "hdr.describe:command": "Per-class counts and proportions, image size and value range of dataset NAME "
                            "(mnist or usps), with a check for NaN, out-of-range values, bad labels and blank "
                            "images.",
}


class HdrGroup(click.Group):
    """Turns hdr's own errors into one line on stderr and the right exit code, and loads
    commands lazily (click's documented LazyGroup pattern) so start-up stays fast."""

    def __init__(self, *args, lazy: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as e:
            click.echo(e.ctx.get_help())
            sys.exit(0)
        except click.ClickException as e:
            # click's usage errors, as one line like every other hdr error.
            ctx = getattr(e, "ctx", None)
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            click.echo(f"hdr: error: {e.format_message()}{hint}", err=True)
            sys.exit(e.exit_code)
        except click.exceptions.Abort:
            click.echo("hdr: aborted", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def format_commands(self, ctx, formatter):
        self._listing = True  # get_command describes lazy commands from LAZY_HELP instead of importing them
        try:
            super().format_commands(ctx, formatter)
        finally:
            self._listing = False

    def get_command(self, ctx, name):
        if name in self.lazy:
            import importlib

            module, attr = self.lazy[name].split(":")
            if getattr(self, "_listing", False) and self.lazy[name] in LAZY_HELP:
                import importlib.util

                if importlib.util.find_spec(module) is None:
                    return None  # not built yet
                return click.Command(name, help=LAZY_HELP[self.lazy[name]])
            try:
                return getattr(importlib.import_module(module), attr)
            except ModuleNotFoundError as e:
                if e.name == module:
                    return None  # not built yet: the command is simply absent
                raise
        return super().get_command(ctx, name)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except HdrError as e:
            if ctx.meta.get("hdr.debug"):
                raise
            click.echo(f"hdr: error: {e}", err=True)
            sys.exit(e.exit_code)
        except KeyboardInterrupt:
            # Ctrl-C before training started (or outside it): nothing was written yet.
            if ctx.meta.get("hdr.debug"):
                raise
            click.echo("hdr: interrupted", err=True)
            sys.exit(130)


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
    from hdr.errors import UsageError

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
                   f"{m['epochs']} epochs in {m['train_seconds']:.1f}s")
    click.echo(str(folder))


@cli.command()
@click.argument("runs_dir", default="runs", type=click.Path(path_type=str))
@click.option("--all", "show_all", is_flag=True, help="Also list folders that are not complete runs.")
def runs(runs_dir, show_all):
    """List the runs in RUNS_DIR (default: runs) with status and progress."""
    from hdr.runs import list_runs

    click.echo(list_runs(Path(runs_dir), show_all=show_all))


@cli.group(cls=HdrGroup, lazy={"describe": "hdr.describe:command"})
def data():
    """Download and inspect the datasets."""


@data.command("download")
@click.argument("names", nargs=-1, type=click.Choice(["mnist", "usps"]))
def data_download(names):
    """Download and verify datasets into the data folder (HDR_DATA_DIR or the user cache)."""
    from hdr import data as data_mod

    for name in names or ("mnist", "usps"):
        paths = data_mod.ensure_files(name)
        data_mod.load(name)
        click.echo(f"{name}: ok ({paths[next(iter(paths))].parent})")


@data.command("path")
def data_path():
    """Print the data folder hdr reads datasets from."""
    from hdr import data as data_mod

    click.echo(str(data_mod.data_dir()))


def main():
    cli(prog_name="hdr")


if __name__ == "__main__":
    main()
