"""hdr predict on odd input (issue 23): images every mode of which once broke the batch, deep and
multi-frame images, --output places that cannot be written or are symlinks, and refusals that
come before any framework is imported."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hdr.apps import predict
from hdr.apps.predict import preprocess

from .test_predict import _one_error_line, fake_run, good_png, seven, tiny_model_file  # noqa: F401  (fixtures)

REPO = Path(__file__).parents[1]
SEVEN = REPO / "examples" / "seven.png"


def stroke() -> np.ndarray:
    """A clean straight stroke: its crop is solid ink, one level, where Otsu's threshold has
    nothing to split (it raised 'All-NaN slice encountered')."""
    a = np.full((100, 100), 255, np.uint8)
    a[20:80, 45:55] = 0
    return a


STROKE_MODES = ["L", "RGB", "LA", "1", "I;16", "I"]


@pytest.mark.parametrize("mode", STROKE_MODES)
def test_clean_stroke_is_read_in_any_mode(mode):
    out = preprocess(Image.fromarray(stroke()).convert(mode), (28, 28))
    assert out.max() == 255
    rows, cols = np.nonzero(out)
    assert np.ptp(rows) + 1 == 20 and np.ptp(cols) + 1 < 10  # a 1: tall, thin, in MNIST's 20 px box


def test_clean_strokes_beside_a_good_file_all_answered(cli_run, fake_run, good_png, tmp_path):
    files = []
    for mode in STROKE_MODES:
        files.append(tmp_path / f"stroke-{mode.replace(';', '')}.{'tif' if mode == 'I' else 'png'}")
        Image.fromarray(stroke()).convert(mode).save(files[-1])
    r = cli_run("predict", fake_run, good_png, *files)
    assert r.exit_code == 0, r.stderr
    assert [line.split(": ")[0] for line in r.stdout.splitlines()] == [str(p) for p in (good_png, *files)]
    assert "blank" not in r.stdout and r.stderr == ""


# ---------------------------------------------------------------- deep images

def _saved(img: Image.Image, path: Path) -> Image.Image:
    img.save(path)
    return Image.open(path)


def test_deep_images_are_scaled_not_clipped(tmp_path):
    """examples/seven.png as a 16-bit PNG, a 12-bit one, a float TIFF in 0..1 and a 32-bit
    integer TIFF: each reads as the 8-bit original does (Pillow's conversion clipped them blank)."""
    expected = preprocess(Image.open(SEVEN), (28, 28))
    assert expected.max() == 255
    g = np.asarray(Image.open(SEVEN).convert("L"), np.float64)
    deep = {
        "16-bit.png": Image.fromarray((g * 257).astype(np.uint16)),
        "12-bit.png": Image.fromarray(np.round(g * 4095 / 255).astype(np.uint16)),
        "float.tif": Image.fromarray((g / 255).astype(np.float32)),
        "int32.tif": Image.fromarray((g * 257).astype(np.int32)),
    }
    for name, img in deep.items():
        read = _saved(img, tmp_path / name)
        assert read.mode in ("I;16", "F", "I"), (name, read.mode)
        out = predict.preprocess_file(tmp_path / name, (28, 28))
        assert np.abs(out.astype(int) - expected).mean() < 1, name
