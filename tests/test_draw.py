"""hdr draw: the drawing logic without a display, the real window under Xvfb, and the errors.

Sketch (the PIL drawing + model) is tested headlessly; the tkinter window is driven with
synthetic mouse events on a virtual X server when Xvfb is installed (apt-get install xvfb).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from hdr.apps.draw import CANVAS, Sketch

from .conftest import REPO


class FixedModel:
    """Stands in for a Keras model: always the same probabilities, and counts its calls."""

    def __init__(self, probs):
        self.probs = np.asarray(probs, np.float32)
        self.output_shape = (None, len(self.probs))
        self.calls = []

    def predict_on_batch(self, x):
        self.calls.append(np.array(x))
        return np.tile(self.probs, (len(x), 1))


PROBS = [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.62, 0.05, 0.05]

# Strokes in canvas coordinates (280x280), as a user would draw them.
SEVEN = [[(60, 50), (120, 50), (180, 52), (215, 55)], [(215, 55), (190, 110), (160, 170), (135, 235)]]
ONE = [[(140, 40), (141, 100), (142, 170), (143, 240)]]
ZERO = [[(140 + 55 * np.sin(t), 140 - 90 * np.cos(t)) for t in np.linspace(0, 2 * np.pi, 40)]]


def scaled(strokes, factor, dx, dy):
    """The same strokes drawn smaller and elsewhere on the canvas."""
    return [[(x * factor + dx, y * factor + dy) for x, y in s] for s in strokes]


# ---------------------------------------------------------------- Sketch, no display

def test_stroke_draws_into_the_pil_image_and_clear_wipes_it():
    sk = Sketch(FixedModel(PROBS))
    assert sk.is_blank() and sk.image.size == (CANVAS, CANVAS)
    sk.stroke([(20, 20), (200, 20)])
    a = np.asarray(sk.image)
    assert a[20, 100] == 255 and a[20 + sk.brush // 2 + 2, 100] == 0  # a line as wide as the brush
    assert a[20, 20 - sk.brush // 2 + 1] == 255  # with a round cap past the end point
    sk.stroke([(100, 200)])  # a click makes a dot
    assert np.asarray(sk.image)[200, 100] == 255
    sk.clear()
    assert sk.is_blank() and sk.probs is None and not sk.model_input.any()


def test_predict_uses_the_preprocessed_drawing():
    model = FixedModel(PROBS)
    sk = Sketch(model, size=(28, 28))
    assert sk.predict() is None and sk.guess() is None and model.calls == []  # blank: nothing to ask
    for s in SEVEN:
        sk.stroke(s)
    probs = sk.predict()
    np.testing.assert_allclose(probs, PROBS)
    assert sk.guess() == (7, pytest.approx(0.62))
    (x,) = model.calls
    assert x.shape[1:3] == (28, 28) and x.dtype == np.uint8  # one image, the model's input size
    from hdr.apps.predict import preprocess

    np.testing.assert_array_equal(x[0, :, :, 0], preprocess(sk.image, (28, 28)))
    np.testing.assert_array_equal(sk.model_input, x[0, :, :, 0])
    rows, cols = np.nonzero(sk.model_input)
    assert max(np.ptp(rows), np.ptp(cols)) + 1 == 20  # MNIST framing, not the whole canvas squeezed


def test_usps_sized_model_gets_16x16():
    model = FixedModel(PROBS)
    sk = Sketch(model, size=(16, 16))
    for s in ONE:
        sk.stroke(s)
    sk.predict()
    assert model.calls[0].shape[1:3] == (16, 16)


@pytest.mark.realdata
def test_drawn_digits_are_read_wherever_and_however_big(mnist_mlp_run):
    """Seed 002's complaint: canvas drawings were misread. Drawn large, or small in a corner,
    these must be read right once preprocessed like MNIST."""
    from hdr.apps.predict import input_size, load_model

    from PIL import Image

    from hdr.apps.predict import predict_arrays

    model = load_model(mnist_mlp_run)
    sk = Sketch(model, input_size(model))
    naive_right = 0
    for label, strokes in ((7, SEVEN), (1, ONE), (0, ZERO)):
        for factor, dx, dy in ((1, 0, 0), (0.4, 0, 0), (0.5, 130, 120)):
            sk.clear()
            for s in scaled(strokes, factor, dx, dy):
                sk.stroke(s)
            probs = sk.predict()
            assert int(np.argmax(probs)) == label, (label, factor, np.round(probs, 2))
            assert abs(float(probs.sum()) - 1) < 1e-4
            # The control: the whole canvas shrunk to 28x28, as a naive app would do.
            naive = np.asarray(sk.image.resize((28, 28), Image.LANCZOS))
            naive_right += int(predict_arrays(model, naive[None])[0].argmax() == label)
    assert naive_right <= 5  # of 9 (2 on the run this was written with)


# ---------------------------------------------------------------- errors

def run_without_model(folder):
    """A run folder as hdr draw checks it (config.yaml, run.json) but with no model.keras: a draw
    that loaded the model before asking for a window would fail on it instead."""
    folder.mkdir()
    (folder / "config.yaml").write_text("dataset: {name: mnist}\n")
    (folder / "run.json").write_text('{"id": "run", "status": "completed"}')
    return folder


def test_no_display_is_one_line(tmp_path):
    if sys.platform != "linux":
        pytest.skip("without DISPLAY, Tk only fails on X11 systems")
    pytest.importorskip("tkinter")
    run = run_without_model(tmp_path / "run")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    out = subprocess.run([sys.executable, "-m", "hdr.cli", "draw", str(run)], env=env,
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 2, out.stderr  # run in the wrong place: the user's to change, as a mistake
    assert out.stderr.strip().splitlines() == [out.stderr.strip()]
    assert out.stderr.startswith("hdr: error: hdr draw needs a display")
    assert "run it where there is one" in out.stderr and "DISPLAY=:99" in out.stderr and "Xvfb" in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_missing_tkinter_says_how_to_get_it(cli_run, tmp_path, monkeypatch):
    run = run_without_model(tmp_path / "run")
    monkeypatch.setitem(sys.modules, "tkinter", None)  # import tkinter -> ImportError
    result = cli_run("draw", run)
    assert result.exit_code == 1
    assert result.stderr.startswith("hdr: error: hdr draw needs tkinter") and "python3-tk" in result.stderr


def test_bad_run_folder(cli_run, tmp_path):
    result = cli_run("draw", tmp_path / "nope")
    assert result.exit_code == 2 and "run folder not found" in result.stderr


# ---------------------------------------------------------------- the real window, under Xvfb

@pytest.fixture(scope="module")
def xvfb_display():
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("Xvfb not installed (apt-get install xvfb)")
    read, write = os.pipe()
    # -displayfd: Xvfb picks a free display number and writes it to the pipe once ready.
    proc = subprocess.Popen([xvfb, "-displayfd", str(write), "-screen", "0", "800x600x24", "-nolisten", "tcp"],
                            pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as f:
        number = f.readline().strip()
    if not number:
        proc.kill()
        pytest.skip("Xvfb did not start")
    yield f":{number}"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def window(xvfb_display, monkeypatch):
    pytest.importorskip("tkinter")
    monkeypatch.setenv("DISPLAY", xvfb_display)
    from hdr.apps.draw import open_root

    root = open_root()
    yield root
    root.destroy()


def drag(root, canvas, points):
    root.update()  # events reach only a mapped window
    canvas.event_generate("<ButtonPress-1>", x=round(points[0][0]), y=round(points[0][1]))
    for x, y in points[1:]:
        canvas.event_generate("<B1-Motion>", x=round(x), y=round(y), state=0x100)  # Button1 held
    canvas.event_generate("<ButtonRelease-1>", x=round(points[-1][0]), y=round(points[-1][1]))
    root.update()


def test_window_predicts_after_each_stroke_and_clears(window):
    from hdr.apps.draw import App

    model = FixedModel(PROBS)
    app = App(window, Sketch(model))
    window.update()
    assert app.guess_var.get() == "?" and model.calls == []
    for s in SEVEN:
        drag(window, app.canvas, s)
    assert len(model.calls) == 2  # once per mouse release
    assert app.guess_var.get() == "7" and app.conf_var.get() == "confidence 62%"
    assert len(app.canvas.find_all()) > 0  # the strokes are on screen...
    assert np.asarray(app.sketch.image)[52, 120] == 255  # ...and in the PIL twin the model reads
    assert app._preview.width() == 28 * 4 and app._preview.height() == 28 * 4
    bar_texts = [app.bars.itemcget(i, "text") for i in app.bars.find_all() if app.bars.type(i) == "text"]
    assert "62%" in bar_texts and "1%" in bar_texts
    app.clear()
    window.update()
    assert app.guess_var.get() == "?" and app.canvas.find_all() == () and app.sketch.is_blank()


@pytest.mark.realdata
def test_window_with_a_real_model(window, mnist_mlp_run):
    from hdr.apps.draw import App
    from hdr.apps.predict import input_size, load_model

    model = load_model(mnist_mlp_run)
    app = App(window, Sketch(model, input_size(model)))
    for s in ONE:
        drag(window, app.canvas, s)
    assert app.guess_var.get() == "1"
    assert app.conf_var.get().startswith("confidence ")


@pytest.mark.realdata
def test_draw_reads_the_onnx_export_like_model_keras(cli_run, mnist_mlp_run, tmp_path):
    """hdr draw's model-loading path: RUN/export/model.onnx when there (no TensorFlow), with the
    same guesses and probabilities as model.keras."""
    import shutil

    from hdr.apps import predict

    run = tmp_path / "run"
    shutil.copytree(mnist_mlp_run, run, ignore=shutil.ignore_patterns("export", ".lock"))
    assert not isinstance(predict.load_predictor(run), predict.OnnxModel)  # no export yet: model.keras
    assert cli_run("export", run, "--format", "onnx").exit_code == 0
    onnx_model, keras_model = predict.load_predictor(run), predict.load_model(run)
    assert isinstance(onnx_model, predict.OnnxModel)
    assert predict.input_size(onnx_model) == predict.input_size(keras_model) == (28, 28)
    for label, strokes in ((7, SEVEN), (1, ONE), (0, ZERO)):
        a, b = Sketch(onnx_model), Sketch(keras_model)
        for s in strokes:
            a.stroke(s)
            b.stroke(s)
        pa, pb = a.predict(), b.predict()
        assert int(np.argmax(pa)) == int(np.argmax(pb)) == label
        np.testing.assert_allclose(pa, pb, atol=1e-4)
