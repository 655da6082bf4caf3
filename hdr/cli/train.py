"""`hdr train CONFIG [KEY=VALUE]...` and `hdr train --resume RUN`."""

from __future__ import annotations

from pathlib import Path

import click

from hdr.cli import main, options
from hdr.core.errors import UsageError


@click.command()
@options.config_and_overrides
@options.runs_dir("Folder in which the run folder is created.")
@click.option("--resume", "resume_run", type=click.Path(path_type=str), metavar="RUN",
              help="Continue an interrupted run from its last completed epoch.")
@options.quiet("No progress output; print only the run folder.")
@click.option("--label", metavar="TEXT",
              help="A label for the run, shown by hdr runs and hdr compare and filtered on by their --label "
                   "(one printable line; change it later with hdr runs --set-label).")
@click.option("--info", "info_items", multiple=True, hidden=True, metavar="KEY=VALUE",
              help="Extra field recorded in run.json (used by hdr sweep).")
def command(config, overrides, runs_dir, resume_run, quiet, label, info_items):
    """Train the model that CONFIG describes and write a run folder.

    KEY=VALUE pairs override config keys by dotted path, values read as YAML:

    \b
      hdr train configs/cnn_adam.yaml training.epochs=1 optimizer.name=sgd

    The last line printed on stdout is the path of the run folder.
    """
    from hdr.engine import config as config_mod
    from hdr.runs import rundir

    # Every refusal first: importing Keras (hdr.engine.train) takes seconds.
    if resume_run:
        if config or overrides:
            raise UsageError("--resume takes only the run folder; the config is the run's own config.yaml")
        if label is not None:
            raise UsageError("--resume keeps the run's label; change it with hdr runs --set-label TEXT RUN")
        folder = rundir.open_run(resume_run)
        with rundir.owned(folder):  # in use by another process? Let go at once: train.resume takes it for good
            config_mod.resumable(folder)
    else:
        if not config:
            raise UsageError("missing CONFIG: give a YAML config file (see configs/) or --resume RUN")
        cfg = config_mod.load(config, list(overrides))
        label = rundir.checked_label(label) if label is not None else None
        options.check_runs_dir(runs_dir)
    from hdr.engine import train

    if resume_run:
        folder = train.resume(folder, quiet=quiet)
    else:
        extra = dict(item.partition("=")[::2] for item in info_items)
        if label:
            extra[rundir.LABEL] = label
        folder = train.train(cfg, Path(config).stem, Path(runs_dir), quiet=quiet, extra_info=extra)
    if not quiet:
        click.echo(train.outcome_line(folder))
    click.echo(str(folder))
    main.trained()
