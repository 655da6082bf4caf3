"""`hdr sweep ...`."""

from __future__ import annotations

import click

from hdr.cli import options


@click.command()
@options.config_and_overrides
@click.option("--grid", "grid_items", multiple=True, metavar="KEY=V1,V2,...",
              help="A config key and the values to try; several --grid give their Cartesian product.")
@click.option("--seeds", default=1, show_default=True, type=click.IntRange(min=1),
              help="Run each point with N seeds (training.seed, training.seed+1, ...); compare then "
                   "shows mean ± std and flags gaps within seed noise.")
@options.executor
@options.runs_dir("Folder for the run folders; the sweep folder goes in RUNS_DIR/sweeps/.")
@options.resume("SWEEP", "Finish a stopped sweep: resume its interrupted runs, train the points never started.")
@click.option("--dry-run", is_flag=True, help="List the points and their overrides; run nothing.")
@options.quiet("No progress lines; print only the table and the sweep folder.")
def command(config, overrides, grid_items, seeds, executor, runs_dir, resume_dir, dry_run, quiet):
    """Train CONFIG at every point of a grid, each point its own run folder, then compare them.

    \b
      hdr sweep configs/mlp_adam.yaml --grid optimizer.name=adam,adagrad,adadelta --seeds 3
      hdr sweep configs/cnn_adam.yaml --grid training.batch_size=64,128 \\
          --grid optimizer.learning_rate=0.001,0.0003 training.epochs=3 --jobs 2
      hdr sweep configs/mlp_adam.yaml --grid optimizer.name=adam,sgd --executor ray --address HEAD:6379
      hdr sweep --resume runs/sweeps/<id>

    Values are read as YAML; a value that is a list keeps its brackets: --grid model.hidden=[256],[512,512].
    A point that fails does not stop the others; the sweep exits 1 if any failed.
    The last line printed is the sweep folder.
    """
    from hdr.orchestration import sweep

    sweep.run(config, list(overrides), grid_items, seeds, executor, runs_dir, resume_dir, dry_run, quiet)
