"""`hdr runs [DIR]`."""

from __future__ import annotations

from pathlib import Path

import click

from hdr.runs import listing


@click.command()
@click.argument("runs_dir", default="runs", type=click.Path(path_type=str))
@click.option("--all", "show_all", is_flag=True, help="Also list folders that are not complete runs.")
@click.option("--status", "statuses", multiple=True, metavar="STATUS[,STATUS]",
              help=f"Only runs with this status ({', '.join(listing.STATUSES)}); repeat it or give a comma list.")
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON, for scripts.")
def command(runs_dir, show_all, statuses, as_json):
    """List the runs in RUNS_DIR (default: runs): status, progress, best validation accuracy
    (the epoch that reached it is in --json) and test accuracy.

    \b
      hdr runs runs/ --status completed
      hdr runs runs/ --status failed,crashed --json
    """
    with listing.gc_paused():
        text = listing.list_runs(Path(runs_dir), show_all=show_all, statuses=listing.parse_statuses(statuses),
                                 as_json=as_json)
    click.echo(text)
