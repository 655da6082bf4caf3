"""`hdr predict RUN IMAGE...`."""

from __future__ import annotations

from pathlib import Path

import click

from hdr.core.errors import HdrError, UsageError
from hdr.runs import rundir


@click.command()
@click.argument("run", type=click.Path(path_type=str))
@click.argument("images", nargs=-1, metavar="IMAGE...")
@click.option("--top", "top", default=1, show_default=True, metavar="K",
              help="Also show the next most likely digits, K in all (1-10).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option("--output", "output", type=click.Path(path_type=Path), metavar="FILE.csv",
              help="Also write the results as CSV: file, digit, confidence, top (digit:probability ...). "
                   "A symlink is written through; /dev/stdout works.")
@click.option("--model", "model_path", type=click.Path(path_type=Path), metavar="PATH",
              help="An exported .onnx or .tflite model (hdr export) to predict with instead of the run's own.")
@click.option("--save-preprocessed", "save_dir", type=click.Path(path_type=Path), metavar="DIR",
              help="Write the 28x28 (or 16x16) input the model saw for each image as PNG into DIR.")
def command(run, images, top, as_json, output, model_path, save_dir):
    """Predict the digit in each IMAGE with the model of the run folder RUN.

    IMAGE is a photo, scan or drawing of one handwritten digit (PNG, JPEG, BMP, ...), any size,
    colour or grey, dark on light or light on dark, or a folder of them (its image files, in name
    order). It is converted to the dataset's format: grey, bright digit on black, cropped and
    re-framed to the model's input size. Deep images (16-bit PNG or TIFF, float TIFF) are scaled
    by their depth; an animated GIF or a multi-page file is read from its first frame, and a
    warning line says so.

    When RUN/export/model.onnx exists (hdr export RUN --format onnx) it is run with ONNX Runtime,
    without loading TensorFlow: one image takes a fraction of a second instead of seconds.

    Every readable image is predicted; each unreadable one is named on stderr, one line each,
    and the exit code is then 1 (2 when no image could be read at all, or for a bad argument).

    \b
      hdr predict runs/<id> my_seven.jpg
      hdr predict runs/<id> digits/*.png --top 3 --save-preprocessed seen/
    """
    from hdr.apps import predict

    if not images:
        raise UsageError("no IMAGE given: hdr predict RUN IMAGE... (e.g. hdr predict runs/<id> digit.png)")
    if not 1 <= top <= 10:
        raise UsageError(f"--top must be between 1 and 10, got {top}")
    for path, option in ((output, "--output"), (save_dir, "--save-preprocessed")):
        if path is not None:
            rundir.refuse_run_owned(path, option)
    paths = predict.expand(list(images))
    predict.check_output(output)
    results, bad = predict.predict_files(run, paths, top=top, save_dir=save_dir, model_path=model_path,
                                         warn=lambda line: click.echo(f"hdr: warning: {line}", err=True))
    if not results and len(paths) == 1:
        raise bad[0]
    for error in bad:
        error.show()
    if not results:
        usage = all(isinstance(e, UsageError) for e in bad)
        raise (UsageError if usage else HdrError)(f"none of the {len(paths)} images could be read")
    click.echo(predict.results_text(results, as_json))
    if output is not None:
        predict.write_csv(output, results)  # after the answers: a failure here does not lose them
    if bad:
        raise HdrError(f"{len(bad)} of {len(paths)} images could not be read (named above)")
