"""`hdr ensemble RUN...`."""

from __future__ import annotations

from pathlib import Path

import click

from hdr.cli import options


@click.command("ensemble")
@click.argument("runs", nargs=-1, type=click.Path(path_type=Path))
@click.option("--split", type=click.Choice(["test", "val"]), default="test", show_default=True,
              help="test: the test split; val: the validation split, when every run validated on the same rows.")
@click.option("--out", type=click.Path(path_type=Path), help="Folder to write (must not exist). "
              "Default: <runs dir of the first run>/ensembles/<time>-<n>runs-<random>/.")
@options.quiet("Print only the folder written.")
def command(runs, split, out, quiet):
    """Average the predicted probabilities of RUNS (run folders, or sweep folders for their runs)
    and evaluate the average like hdr evaluate, with each member's accuracy beside the ensemble's.
    A copy of a member (cp -a: the same run id, or the same model) is left out with a note.

    \b
      hdr sweep configs/mlp_adam.yaml --seeds 5
      hdr ensemble runs/sweeps/<id>

    The last line printed is the folder written.
    """
    from hdr.analysis import ensemble

    folder, metrics = ensemble.ensemble(runs, split, out, note=lambda msg: click.echo(f"hdr: note: {msg}", err=True))
    if not quiet:
        click.echo(ensemble.summary_text(metrics))
    click.echo(str(folder))
