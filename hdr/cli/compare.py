"""`hdr compare RUN...`."""

from __future__ import annotations

from pathlib import Path

import click

from hdr.analysis import compare, comparecache
from hdr.core.errors import UsageError
from hdr.runs import listing, rundir


@click.command()
@click.argument("paths", nargs=-1, metavar="RUN...", type=click.Path(path_type=str))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Also write compare.csv, compare.md, compare.json and val_accuracy.png / val_loss.png here.")
@click.option("--sort", "sort_key", metavar="KEY",
              help="Sort by a column: best_val_accuracy, val_accuracy, test_accuracy (best first), "
                   "test_loss, train_seconds, params, epochs, best_epoch, status, run, or a config key.")
@click.option("--label", "labels", multiple=True, metavar="TEXT",
              help="Compare only the runs labelled TEXT (hdr train --label), exactly or as a shell pattern "
                   "('base*'); repeat it for any of several. Keys, groups and ranks are of those runs.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON, for scripts.")
@click.option("--wide", is_flag=True, help=f"Show every column; by default the tables fit {compare.WIDTH} columns.")
@click.option("--top", type=click.IntRange(min=0), default=compare.TOP, show_default=True, metavar="N",
              help="Rows per table: past N, the N best settings and runs (the first N with --sort); 0: all.")
def command(paths, out, sort_key, labels, as_json, wide, top):
    """Compare runs side by side: the config keys that differ, accuracy, loss, time, status.

    Runs and settings are ranked by validation accuracy at their best epoch ('best', 'vs best');
    test accuracy is shown beside it and never used to choose. Runs that repeat a setting are
    grouped (mean ± std over distinct seeds), and the runs are listed by id below. Past --top
    rows (50) a table shows the best of them, and says so; --json and --out have every run.

    A run's label (hdr train --label) is shown in a label column where any run has one; with
    --label only the runs whose label matches are compared.

    RUN is a run folder, a sweep folder (its runs), a cv folder (its folds) or a runs folder (its
    runs); a glob such as runs/* is fine, folders that are not runs are skipped with a warning.

    \b
      hdr compare runs/*
      hdr compare runs/sweeps/<id> --sort best_val_accuracy --out report/
    """
    if not paths:
        raise UsageError("give the run folders to compare, e.g. hdr compare runs/*")
    with listing.gc_paused():
        if labels:  # the runs are filtered before the analysis, which the kept result (comparecache) is not
            labels = [rundir.checked_label(t) for t in labels]
            runs = listing.load_runs(paths)
            kept = [r for r in runs if listing.has_label(r, labels)]
            if not kept:
                raise UsageError(f"none of the {len(runs)} runs named is labelled {' or '.join(labels)} "
                                 "(hdr runs DIR shows the labels)")
            result = compare.analyse(kept, sort_key)
        else:
            result = comparecache.compared(paths, sort_key)
        click.echo(compare.json_text(result) if as_json else compare.text(result, wide=wide, top=top))
    if out is not None:
        for path in compare.write(result, out, warn=lambda msg: click.echo(f"hdr: note: {msg}", err=True)):
            click.echo(f"wrote {listing.shown(path)}", err=True)
