"""`hdr evaluate RUN`."""

from __future__ import annotations

from pathlib import Path

import click

from hdr.cli import options


@click.command("evaluate")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--split", type=click.Choice(["test", "val"]), default="test", show_default=True,
              help="test: the dataset's test split; val: the run's validation split, rebuilt exactly.")
@click.option("--on", "on", type=options.DatasetName(), metavar="DATASET",
              help="Evaluate on another dataset's test split, re-framing its images to "
                   "the model's input size; reports the transfer gap. Writes RUN/eval-on-DATASET/.")
@options.quiet("Print only the folder written.")
def command(run, split, on, quiet):
    """Evaluate the model of run folder RUN: loss, accuracy, confusion matrix, per-class figures and
    the misclassified digits, written with report.md into RUN/eval/ (RUN/eval-val/ for --split val,
    RUN/eval-on-DATASET/ for --on). Re-running replaces that folder as a whole.

    \b
      hdr evaluate runs/<id>
      hdr evaluate runs/<id> --split val
      hdr evaluate runs/<id> --on usps     # an MNIST model on USPS digits

    The last line printed is the folder written.
    """
    from hdr.analysis import evaluate

    out, metrics, classes = evaluate.evaluate(run, split, on)
    if not quiet:
        click.echo(evaluate.summary_text(metrics, classes))
    click.echo(str(out))
