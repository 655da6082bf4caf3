"""`hdr track RUN...`."""

from __future__ import annotations

from pathlib import Path

import click

from hdr.apps import track


@click.command("track")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--uri", metavar="URI",
              help="MLflow tracking URI: a server (http://127.0.0.1:5000) or a store (sqlite:///PATH.db). "
                   "Default: $MLFLOW_TRACKING_URI, else sqlite:///<runs folder>/mlflow.db.")
@click.option("--experiment", default=track.DEFAULT_EXPERIMENT, show_default=True, metavar="NAME",
              help="MLflow experiment to log into; created when missing.")
def command(runs, uri, experiment):
    """Log run folders to MLflow: config as parameters, history as metric steps, test and
    evaluation figures, status, plots, eval folders and model.keras as artifacts. A sweep, cv or
    runs folder stands for its runs. Tracking a run again updates its MLflow run (run.json keeps
    its id); a copy of a run folder gets an MLflow run of its own. Runs still training or damaged
    are left out.

    \b
      hdr track runs/<id>
      hdr track runs/sweeps/<id> --experiment lr-sweep
      hdr track runs/<id> --uri http://127.0.0.1:5000
      mlflow ui --backend-store-uri sqlite:///runs/mlflow.db    # then look at them
    """
    for line in track.track_runs(runs, uri, experiment):
        click.echo(line)
