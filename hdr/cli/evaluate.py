"""`hdr evaluate RUN`."""

from __future__ import annotations

import os
from pathlib import Path

import click

from hdr.cli import options
from hdr.core.errors import HdrError, UsageError


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
    RUN/eval-on-DATASET/ for --on). Re-running replaces that folder as a whole. A sweep, cv, tune
    or runs folder evaluates each of its runs, one line for each.

    \b
      hdr evaluate runs/<id>
      hdr evaluate runs/<id> --split val
      hdr evaluate runs/<id> --on usps     # an MNIST model on USPS digits
      hdr evaluate runs/sweeps/<id>        # every run of the sweep

    The last line printed is the folder written.
    """
    from hdr.analysis import evaluate

    runs = runs_inside(run)
    if runs is None:
        out, metrics, classes = evaluate.evaluate(run, split, on)
        if not quiet:
            click.echo(evaluate.summary_text(metrics, classes))
        click.echo(str(out))
        return
    done, failed = 0, 0
    for folder in runs:
        try:
            out, metrics, classes = evaluate.evaluate(folder, split, on)
        except UsageError as e:  # not evaluable as it stands (still training, no model): said, and left
            click.echo(f"hdr: note: skipping {folder}: {e.format_message()}", err=True)
            continue
        except HdrError as e:
            click.echo(f"hdr: warning: {folder} was not evaluated: {e.format_message()}", err=True)
            failed += 1
            continue
        done += 1
        click.echo(str(out) if quiet else f"{out}: {evaluate.summary_text(metrics, classes).splitlines()[0]}")
    if failed:
        raise HdrError(f"{failed} of the {len(runs)} runs in {run} could not be evaluated (named above)")
    if not done:
        raise UsageError(f"none of the {len(runs)} runs in {run} can be evaluated (each is named above)")


def runs_inside(path: Path) -> list[Path] | None:
    """The run folders of a folder of runs (a sweep, cv, tune or runs folder), as hdr compare and
    hdr track read them; None for a run folder or anything else (evaluated, or refused, as one)."""
    from hdr.runs import listing, rundir

    if not path.is_dir() or (path / rundir.RUN).is_file():
        return None
    notes: list[str] = []
    found = [Path(os.path.normpath(f)) for f in listing.expand([path], notes.append)]  # a sweep names ../../<id>
    if not found:
        return None
    for note in notes:
        click.echo(f"hdr: warning: {note}", err=True)
    return found
