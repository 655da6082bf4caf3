"""`hdr cv ...`."""

from __future__ import annotations

import click

from hdr.cli import options


@click.command()
@options.config_and_overrides
@click.option("--folds", "-k", "k", default=5, show_default=True, type=int,
              help="Number of folds (at least 2).")
@options.executor
@options.runs_dir("The cv folder is created in RUNS_DIR/cv/.")
@options.resume("CV", "Finish a stopped cross-validation: train the folds it did not complete.")
@options.quiet("No progress output; print the results and the cv folder.")
def command(config, overrides, k, executor, runs_dir, resume_dir, quiet):
    """Stratified K-fold cross-validation of CONFIG over the training set.

    Each fold is trained and scored as its own run; the mean ± std of the folds' validation
    accuracy is printed and a box plot written. The last line printed is the cv folder.

    \b
      hdr cv configs/cnn_adam.yaml --folds 5 training.epochs=3
      hdr cv configs/cnn_adam.yaml --folds 5 --executor ray --address HEAD:6379
      hdr cv --resume runs/cv/<id>
    """
    from hdr.orchestration import cv

    cv.run(config, list(overrides), k, executor, runs_dir, resume_dir, quiet)
