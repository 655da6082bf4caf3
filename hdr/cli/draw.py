"""`hdr draw RUN`."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("run", type=click.Path(path_type=str))
@click.option("--model", "model_path", type=click.Path(path_type=Path), metavar="PATH",
              help="An exported .onnx or .tflite model (hdr export) to guess with instead of the run's own.")
def command(run, model_path):
    """Draw a digit with the mouse and watch the model of run folder RUN guess it.

    The guess, its confidence and all ten class probabilities update each time you lift the
    mouse button; the small image shows the preprocessed 28x28 input the model actually sees.
    Clear (or Escape) wipes the canvas.

    \b
      hdr draw runs/<id>
    """
    from hdr.apps import draw

    draw.show(run, model_path)
