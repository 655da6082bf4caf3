"""Arguments and options that several commands share, declared once here.

Each is a decorator, so a command reads as the list of what it takes. Nothing here imports more
than click at import time: `hdr --help` lists every command without loading their modules.
"""

from __future__ import annotations

import functools
from pathlib import Path

import click


class DatasetName(click.ParamType):
    """A registered dataset's name (hdr.core.data.DATASETS), looked up only when a command runs,
    so that listing the commands does not import the data module."""

    name = "dataset"

    def convert(self, value, param, ctx):
        from hdr.core.data import DATASETS

        if value in DATASETS:
            return value
        self.fail(f"unknown dataset {value!r}; allowed: {', '.join(DATASETS)}", param, ctx)


def config_and_overrides(f):
    """CONFIG [KEY=VALUE]...: a YAML config and dotted-key overrides (optional, for --resume)."""
    f = click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")(f)
    return click.argument("config", required=False, type=click.Path(dir_okay=False, path_type=str))(f)


def runs_dir(help: str):
    return click.option("--runs-dir", default="runs", show_default=True,
                        type=click.Path(file_okay=False, path_type=Path), help=help)


def check_runs_dir(path: Path) -> None:
    """Refuse at once, before the seconds of importing Keras, a --runs-dir where no run folder
    can be made (a file, a read-only or pseudo filesystem such as /proc). Leaves nothing behind:
    a folder that does not exist yet is made and removed again, the one sure test."""
    import os

    from hdr.core.errors import UsageError

    def refuse(why: str):
        raise UsageError(f"cannot create runs folder {path}: {why}; choose another with --runs-dir")

    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            refuse("it is not writable")
        return
    first = path  # the first folder of the path that is missing
    while not first.parent.is_dir() and first.parent != first:
        first = first.parent
    if os.path.lexists(first):
        refuse(f"{first} is not a folder")
    try:
        first.mkdir()
    except FileExistsError:
        return  # another process made it meanwhile
    except OSError as e:
        refuse(e.strerror)
    try:
        first.rmdir()
    except OSError:
        pass  # no longer empty or gone: another process uses it now


def resume(metavar: str, help: str):
    return click.option("--resume", "resume_dir", type=click.Path(file_okay=False, path_type=Path),
                        metavar=metavar, help=help)


def quiet(help: str):
    return click.option("-q", "--quiet", is_flag=True, help=help)


def executor(f):
    """--executor and its options, handed to the command as one `executor` object
    (hdr.orchestration.executors.Options)."""
    opts = [
        click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
                     help="Where runs train: local worker processes (--jobs), or a Ray cluster. A --resume keeps "
                          "the executor and options the command was started with, unless given again."),
        click.option("--jobs", default=1, show_default=True, type=click.IntRange(min=1),
                     help="local: runs at once, each in its own process with cores/N threads."),
        click.option("--address", metavar="ADDR", default=None,
                     help="ray: the cluster's head (HOST:6379, or 'auto'); without it, a Ray instance on this machine."),
        click.option("--cpus-per-run", default=1.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
                     help="ray: CPUs each run asks for (also its thread count)."),
        click.option("--gpus-per-run", default=0.0, show_default=True, type=click.FloatRange(min=0),
                     help="ray: GPUs each run asks for; below 1, runs share a GPU."),
    ]
    names = ("executor", "jobs", "address", "cpus_per_run", "gpus_per_run")

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        from click.core import ParameterSource

        from hdr.orchestration.executors import Options

        ctx = click.get_current_context()
        given = frozenset(n for n in names if ctx.get_parameter_source(n) not in (ParameterSource.DEFAULT, None))
        kwargs["executor"] = Options(**{n: kwargs.pop(n) for n in names}, given=given)  # a resume keeps the rest
        return f(*args, **kwargs)

    for opt in reversed(opts):
        wrapper = opt(wrapper)
    return wrapper
