"""`hdr data download|path|describe`."""

from __future__ import annotations

from pathlib import Path

import click

from hdr.cli.options import DatasetName
from hdr.core.errors import UsageError


@click.group("data")
def group():
    """Download and inspect the datasets."""


@group.command("download")
@click.argument("names", nargs=-1, type=DatasetName())
def download(names):
    """Download and verify datasets into the data folder (HDR_DATA_DIR or the user cache); all
    of them when no NAME is given."""
    from hdr.core import data

    for name in names or tuple(data.DATASETS):
        paths = data.ensure_files(name)
        data.load(name)
        click.echo(f"{name}: ok ({paths[next(iter(paths))].parent})")


@group.command("path")
def path():
    """Print the data folder hdr reads datasets from."""
    from hdr.core import data

    click.echo(str(data.data_dir()))


@group.command("describe")
@click.argument("name", metavar="NAME", type=DatasetName())
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Also write NAME-classes.png (class distribution, train vs test), NAME-samples.png "
                   "(sample digits per class) and NAME-classes.csv into DIR.")
@click.option("--augment", "augment_config", type=click.Path(dir_okay=False, path_type=Path), metavar="CONFIG",
              help="With --out: also NAME-augmented.png, each class's digit as CONFIG's augment section "
                   "changes it in training.")
def describe(name, out, augment_config):
    """Per-class counts and proportions, image size and value range of dataset NAME, with a
    check for labels outside its classes and blank images.

    \b
      hdr data describe mnist --out pictures/
      hdr data describe mnist --out pictures/ --augment configs/records/mnist_cnn.yaml
    """
    from hdr.analysis import describe as describe_mod

    if augment_config is not None and out is None:
        raise UsageError("--augment draws a picture: give --out DIR too")
    for line in describe_mod.run(name, out, augment_config):
        click.echo(line)
