"""`hdr runs [DIR]`, and `hdr runs --set-label TEXT | --archive | --delete RUN...`."""

from __future__ import annotations

from pathlib import Path

import click

from hdr.core.errors import UsageError
from hdr.runs import listing, rundir


@click.command()
@click.argument("paths", nargs=-1, metavar="[DIR | RUN...]", type=click.Path(path_type=str))
@click.option("--all", "show_all", is_flag=True, help="Also list folders that are not complete runs.")
@click.option("--status", "statuses", multiple=True, metavar="STATUS[,STATUS]",
              help=f"Only runs with this status ({', '.join(listing.STATUSES)}); repeat it or give a comma list.")
@click.option("--label", "labels", multiple=True, metavar="TEXT",
              help="Only runs labelled TEXT, exactly or as a shell pattern ('base*'); repeat it for any of several.")
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON, for scripts.")
@click.option("--set-label", "new_label", metavar="TEXT",
              help=f"Label each RUN TEXT (one printable line, at most {rundir.MAX_LABEL} characters; '' removes it).")
@click.option("--archive", is_flag=True,
              help=f"Move each RUN into {rundir.ARCHIVE}/ beside it; list those with hdr runs DIR/{rundir.ARCHIVE}.")
@click.option("--delete", is_flag=True, help="Delete each RUN for good.")
@click.option("--yes", "-y", is_flag=True, help="With --archive or --delete: do not ask first.")
def command(paths, show_all, statuses, labels, as_json, new_label, archive, delete, yes):
    """List the runs in DIR (default: runs): status, progress, best validation accuracy (the
    epoch that reached it is in --json), test accuracy and, where a run has one, its label. The
    runs moved into DIR/archive/ are listed only as hdr runs DIR/archive.

    With --set-label, --archive or --delete, change the runs named instead. Each RUN is checked
    first: a run in training, a folder that is not a run or a symbolic link stops the command
    with nothing changed. --archive and --delete list what goes and ask (--yes: do not ask).

    \b
      hdr runs runs/ --status completed --label 'baseline*'
      hdr runs runs/ --status failed,crashed --json
      hdr runs --set-label baseline runs/<id>
      hdr runs --archive runs/<id> runs/<id2>
    """
    actions = [name for name, on in (("--set-label", new_label is not None), ("--archive", archive),
                                     ("--delete", delete)) if on]
    if len(actions) > 1:
        raise UsageError(f"{actions[0]} and {actions[1]} cannot be combined; give one")
    if not actions:
        if yes:
            raise UsageError("--yes goes with --archive or --delete")
        if len(paths) > 1:
            raise UsageError("hdr runs lists one folder: give one DIR (or change runs with --set-label, --archive "
                             "or --delete)")
        with listing.gc_paused():
            text = listing.list_runs(Path(paths[0] if paths else "runs"), show_all=show_all,
                                     statuses=listing.parse_statuses(statuses), as_json=as_json,
                                     labels=[rundir.checked_label(t) for t in labels])
        click.echo(text)
        return
    action = actions[0]
    if show_all or statuses or labels or as_json:
        raise UsageError(f"{action} takes only run folders; --all, --status, --label and --json are for listing")
    if not paths:
        raise UsageError(f"{action} needs the run folders, e.g. hdr runs {action}"
                         f"{' TEXT' if new_label is not None else ''} runs/<id>")
    if new_label is not None:
        lines = listing.label_runs(paths, new_label)
    else:
        lines = listing.remove_runs(paths, "archive" if archive else "delete",
                                    lambda prompt: yes or click.confirm(prompt, default=False, err=True))
        if not lines:
            click.echo("hdr: nothing was changed", err=True)
            raise click.exceptions.Exit(1)  # the user said no: a script must not read it as done
    click.echo("\n".join(lines))
