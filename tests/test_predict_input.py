"""hdr predict on odd input (issue 23): images every mode of which once broke the batch, deep and
multi-frame images, --output places that cannot be written or are symlinks, and refusals that
come before any framework is imported."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
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


def test_a_file_that_trips_a_bug_is_its_own_error_line(cli_run, fake_run, good_png, tmp_path, monkeypatch):
    """Whatever goes wrong with one image, the others are answered and it gets one line (exit 1)."""
    odd = tmp_path / "odd.png"
    seven().save(odd)
    real = predict.preprocess

    def trips(image, size, style=None):
        if Path(image.filename).name == "odd.png":
            raise ValueError("All-NaN slice encountered")
        return real(image, size, style)

    monkeypatch.setattr(predict, "preprocess", trips)
    r = cli_run("predict", fake_run, odd, good_png)
    assert r.exit_code == 1, (r.stdout, r.stderr)
    assert [line.split(": ")[0] for line in r.stdout.splitlines()] == [str(good_png)]
    errors = r.stderr.strip().splitlines()
    assert len(errors) == 2 and "odd.png" in errors[0] and "All-NaN slice" in errors[0]
    assert "1 of 2 images" in errors[1]
    # Alone, it is that one line, and a failure (exit 1), not a mistake of the user's (exit 2).
    assert "odd.png" in _one_error_line(cli_run("predict", fake_run, odd), 1)


# ---------------------------------------------------------------- deep and multi-frame images

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


def test_multi_frame_image_is_read_from_its_first_frame_with_a_warning(cli_run, fake_run, good_png, tmp_path):
    first = seven()
    gif, tif = tmp_path / "anim.gif", tmp_path / "pages.tif"
    later = [Image.new("L", first.size, 255), seven(width=4)]  # unlike frames (a GIF merges equal ones)
    first.save(gif, save_all=True, append_images=later, duration=100)
    first.save(tif, save_all=True, append_images=[Image.new("L", first.size, 255)])
    r = cli_run("predict", fake_run, gif, tif, good_png, "--json")
    assert r.exit_code == 0, r.stderr
    import json

    results = json.loads(r.stdout)
    assert [x["path"] for x in results] == [str(gif), str(tif), str(good_png)]
    assert results[0]["digit"] is not None and results[0]["probabilities"] == results[2]["probabilities"]
    warnings = r.stderr.strip().splitlines()
    assert len(warnings) == 2 and all(w.startswith("hdr: warning: ") for w in warnings)
    assert "anim.gif holds 3 frames" in warnings[0] and "first" in warnings[0]
    assert "pages.tif holds 2 frames" in warnings[1]


# ---------------------------------------------------------------- --output

def _rows(text: str) -> list[dict]:
    return list(csv.DictReader(text.splitlines()))


def test_unwritable_output_refused_before_predicting(cli_run, fake_run, good_png, tmp_path):
    line = _one_error_line(cli_run("predict", fake_run, good_png, "--output", "/proc/x.csv"), 2)
    assert "--output /proc/x.csv" in line and "cannot create a file in /proc" in line
    line = _one_error_line(cli_run("predict", fake_run, good_png, "--output", tmp_path), 2)
    assert f"--output {tmp_path}: is a folder" in line
    line = _one_error_line(cli_run("predict", fake_run, good_png, "--output", tmp_path / "no" / "x.csv"), 2)
    assert f"its folder {tmp_path / 'no'} does not exist" in line


def test_late_write_failure_keeps_the_answers(cli_run, fake_run, good_png, small_disk):
    """The disk fills up between the check and the write: the answers are still printed, then
    one line (exit 1), and nothing half-written is left."""
    disk = small_disk("64k")
    try:
        with open(disk / "filler", "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
    except OSError:
        pass
    r = cli_run("predict", fake_run, good_png, "--output", disk / "out.csv")
    assert r.exit_code == 1, (r.stdout, r.stderr)
    assert r.stdout.startswith(f"{good_png}: ")
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and f"--output {disk / 'out.csv'}" in lines[0] and "No space left" in lines[0]
    assert sorted(p.name for p in disk.iterdir()) == ["filler"]


def test_output_symlink_to_a_file_is_written_through(cli_run, fake_run, good_png, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "results.csv").write_text("old\n")
    link = tmp_path / "here" / "out.csv"
    link.parent.mkdir()
    link.symlink_to(elsewhere / "results.csv")
    r = cli_run("predict", fake_run, good_png, "--output", link)
    assert r.exit_code == 0, r.stderr
    assert link.is_symlink() and os.readlink(link) == str(elsewhere / "results.csv")
    assert [row["file"] for row in _rows((elsewhere / "results.csv").read_text())] == [str(good_png)]
    assert sorted(p.name for p in elsewhere.iterdir()) == ["results.csv"]  # no temporary file left
    assert sorted(p.name for p in link.parent.iterdir()) == ["out.csv"]


def test_output_symlink_to_dev_stdout_is_written_into(cli_run, fake_run, good_png, tmp_path, capfd):
    link = tmp_path / "out.csv"
    link.symlink_to("/dev/stdout")
    r = cli_run("predict", fake_run, good_png, "--output", link)
    assert r.exit_code == 0, r.stderr
    assert link.is_symlink() and os.readlink(link) == "/dev/stdout"
    assert [row["file"] for row in _rows(capfd.readouterr().out)] == [str(good_png)]


# ---------------------------------------------------------------- refusals before any framework

HEAVY = ("tensorflow", "keras", "tf_keras", "onnxruntime", "jax", "torch")
WRAPPER = ("import runpy, sys\n"
           "try:\n    runpy.run_module('hdr', run_name='__main__')\n"
           "finally:\n"
           f"    heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
           "    print('HEAVY', heavy, file=sys.stderr)\n")


@pytest.mark.parametrize("case", ["image not found", "not an image", "unwritable output", "no run folder",
                                  "no --model file"])
def test_refusals_come_before_any_framework_import(fake_run, good_png, tmp_path, case):
    (tmp_path / "notes.png").write_text("not a picture\n")
    args = {
        "image not found": [fake_run, tmp_path / "nothing.png"],
        "not an image": [fake_run, tmp_path / "notes.png", tmp_path / "nothing.png"],
        "unwritable output": [fake_run, good_png, "--output", "/proc/x.csv"],
        "no run folder": [tmp_path / "no-run", good_png],
        "no --model file": [fake_run, good_png, "--model", tmp_path / "m.onnx"],
    }[case]
    out = subprocess.run([sys.executable, "-c", WRAPPER, "predict", *map(str, args)], capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert out.returncode == 2 and out.stdout == "", out.stderr[-2000:]
    errors = [line for line in out.stderr.splitlines() if line.startswith("hdr: error: ")]
    assert errors and "HEAVY []" in out.stderr, out.stderr[-2000:]
