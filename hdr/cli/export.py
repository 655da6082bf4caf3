"""`hdr export RUN --format F`."""

from __future__ import annotations

from pathlib import Path

import click

from hdr.apps import export


@click.command()
@click.argument("run", type=click.Path(path_type=str))
@click.option("--format", "fmt", required=True, type=click.Choice(list(export.FORMATS)),
              help="savedmodel (TF serving), onnx (ONNX Runtime), litert (LiteRT / TF Lite).")
@click.option("--out", "out", type=click.Path(path_type=Path), metavar="PATH",
              help="Where to write it (default: RUN/export/model.onnx, model.tflite or savedmodel/).")
def command(run, fmt, out):
    """Export the model of the completed run folder RUN as a SavedModel, ONNX or LiteRT model.

    The exported model takes the raw uint8 pixels (N, H, W, 1), as model.keras does, and gives
    the class probabilities. It is kept only after it reproduced model.keras on the whole test
    set of the run's dataset (same top-1 class on every image, probabilities within 1e-4); the
    figures go beside it in PATH.verification.json. A mixed-precision run is exported computing
    in float32 and checked against bf16 rounding instead: probabilities within 1e-2 (fp16: 2e-3),
    the same top-1 class except where model.keras's two best are within twice that. `hdr predict` and `hdr draw` use
    RUN/export/model.onnx when it exists, without loading TensorFlow.

    ONNX and LiteRT need the export extra: pip install 'hdr[export]'. Exit codes: 2 for a bad
    request (nothing written), 1 when the export fails verification (nothing written).

    \b
      hdr export runs/<id> --format onnx
      hdr export runs/<id> --format litert --out digits.tflite
    """
    path, figures = export.export(run, fmt, out)
    click.echo(f"{fmt}: {figures['images']} test images, top-1 agreement {figures['top1_agreement']:.2%}, "
               f"largest probability difference {figures['max_abs_probability_diff']:.1e}")
    click.echo(str(path))
