"""hdr export: each format written, verified on the whole test set, and reproducing model.keras;
every bad request is one line, exit 2, and leaves nothing behind."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from hdr.apps import export


def _copy_run(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("export", ".lock"))
    return dest


@pytest.fixture(scope="module")
def run_copy(mnist_mlp_run, tmp_path_factory) -> Path:
    """The session's MNIST run, copied: exports written here do not change what other tests see."""
    return _copy_run(mnist_mlp_run, tmp_path_factory.mktemp("export") / "run")


@pytest.fixture(scope="module")
def test_set(run_copy):
    from hdr.core import data
    from hdr.runs import rundir

    info = rundir.read_json(run_copy / "run.json")
    return data.load(info["dataset"], quiet=True, recorded_dir=info.get("data_dir")).test


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.realdata
@pytest.mark.parametrize("fmt", list(export.FORMATS))
def test_export_is_verified_and_reproduces_keras(cli_run, run_copy, test_set, fmt, tmp_path):
    r = cli_run("export", run_copy, "--format", fmt)
    assert r.exit_code == 0, r.stderr
    path = export.default_path(run_copy, fmt)
    assert r.stdout.strip().splitlines()[-1] == str(path) and path.exists()
    figures = json.loads(export.verification_path(path).read_text())
    assert figures["format"] == fmt and figures["images"] == len(test_set.y) == 10000
    assert figures["top1_agreement"] == 1.0 and figures["top1_disagreements"] == 0
    assert figures["max_abs_probability_diff"] <= figures["tolerance"] == 1e-4
    assert figures["export_test_accuracy"] == figures["keras_test_accuracy"] > 0.9
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporaries left

    # The file on its own, run by its runtime, gives model.keras's probabilities on uint8 input.
    from hdr.apps.predict import predict_arrays
    from hdr.runs.rundir import load_model

    x = test_set.x[:64]
    assert x.dtype == np.uint8 and x.shape[1:] == (28, 28, 1)
    ours = np.asarray(export.RUNNERS[fmt](path, x))
    keras_probs = predict_arrays(load_model(run_copy), x)
    assert ours.shape == (64, 10)
    np.testing.assert_allclose(ours, keras_probs, atol=1e-4)
    assert (ours.argmax(1) == keras_probs.argmax(1)).all()

    if fmt in ("onnx", "litert"):  # hdr predict --model PATH reads a user's image with it, no TensorFlow
        from PIL import Image

        from hdr.apps.predict import preprocess

        img = tmp_path / "digit.png"
        Image.fromarray(255 - x[0, :, :, 0]).resize((84, 84)).save(img)
        r = cli_run("predict", run_copy, img, "--model", path, "--json")
        assert r.exit_code == 0, r.stderr
        expected = predict_arrays(load_model(run_copy), preprocess(Image.open(img), (28, 28))[None])[0]
        np.testing.assert_allclose(json.loads(r.stdout)[0]["probabilities"], expected, atol=1e-4)


def _one_line(r, code: int) -> str:
    assert r.exit_code == code, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hdr: error: "), r.stderr
    return lines[0]


@pytest.fixture
def bare_run(mnist_mlp_run, tmp_path) -> Path:
    return _copy_run(mnist_mlp_run, tmp_path / "run")


@pytest.mark.realdata
def test_bad_requests_are_one_line_exit_2_and_leave_nothing(cli_run, bare_run, tmp_path, monkeypatch):
    before = _files(tmp_path)
    assert "tflite" in _one_line(cli_run("export", bare_run, "--format", "tflite"), 2)

    info = json.loads((bare_run / "run.json").read_text())
    (bare_run / "run.json").write_text(json.dumps({**info, "status": "interrupted"}))
    assert "not a completed run" in _one_line(cli_run("export", bare_run, "--format", "onnx"), 2)
    (bare_run / "run.json").write_text(json.dumps(info))

    (tmp_path / "a_file").write_text("x")
    line = _one_line(cli_run("export", bare_run, "--format", "onnx", "--out", tmp_path / "a_file" / "m.onnx"), 2)
    assert "a_file" in line and "not a folder" in line
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if not os.access(locked, os.W_OK):  # root writes anywhere: nothing to test there
        assert "not writable" in _one_line(cli_run("export", bare_run, "--format", "onnx", "--out", locked / "m.onnx"), 2)

    monkeypatch.setitem(export.FORMATS, "onnx", export.Format("onnx", "model.onnx", ("no_such_converter",), "onnxruntime"))
    line = _one_line(cli_run("export", bare_run, "--format", "onnx"), 2)
    assert "no_such_converter" in line and "pip install 'hdr[export]'" in line
    assert _files(tmp_path) == before | {"a_file", "locked"}


@pytest.mark.realdata
def test_failed_verification_exits_1_and_leaves_nothing(cli_run, bare_run, monkeypatch):
    real = export.RUNNERS["onnx"]
    monkeypatch.setitem(export.RUNNERS, "onnx", lambda path, x: real(path, x)[:, ::-1])  # classes swapped
    before = _files(bare_run)
    line = _one_line(cli_run("export", bare_run, "--format", "onnx"), 1)
    assert "failed verification" in line and "nothing written" in line
    assert _files(bare_run) == before


def test_mixed_precision_model_exports_a_float32_twin():
    """tf2onnx and LiteRT's built-in ops cannot convert bf16 math: the export computes in float32
    with the same weights, within bf16 rounding of the original."""
    import keras

    inputs = keras.Input((4, 4, 1))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(8, activation="relu", dtype="mixed_bfloat16")(x)
    outputs = keras.layers.Dense(3, activation="softmax", dtype="float32")(x)
    model = keras.Model(inputs, outputs)
    assert export.compute_dtype(model) == "bfloat16"
    twin = export._float32_twin(model)
    assert export.compute_dtype(twin) == "float32"
    x = np.random.default_rng(0).integers(0, 256, (32, 4, 4, 1)).astype("float32") / 255
    np.testing.assert_allclose(np.asarray(twin(x)), np.asarray(model(x)), atol=export.TOLERANCE["bfloat16"])


def test_verify_allows_16_bit_flips_only_in_near_ties(monkeypatch):
    ref = np.array([[0.500, 0.498, 0.002], [0.9, 0.05, 0.05], [0.2, 0.7, 0.1]], np.float32)
    flipped = ref[:, [1, 0, 2]]  # the first row's two best swap (a near tie), and the others swap too
    monkeypatch.setitem(export.RUNNERS, "onnx", lambda path, x: flipped)
    y = np.array([0, 0, 1])
    x = np.zeros((3, 2, 2, 1), np.uint8)
    f = export.verify("onnx", Path("unused"), x, y, ref, "bfloat16")
    assert f["top1_disagreements"] == 3 and f["top1_disagreements_beyond_near_ties"] == 2 and f["near_ties"] == 1
    nudged = ref + np.float32([[-0.002, 0.002, 0], [0, 0, 0], [0, 0, 0]])  # only the near tie flips
    monkeypatch.setitem(export.RUNNERS, "onnx", lambda path, x: nudged)
    f = export.verify("onnx", Path("unused"), x, y, ref, "bfloat16")
    assert f["top1_disagreements"] == 1 and f["top1_disagreements_beyond_near_ties"] == 0
    f = export.verify("onnx", Path("unused"), x, y, ref, "float32")  # float32: no near-tie allowance
    assert f["top1_disagreements_beyond_near_ties"] == 1 and f["tolerance"] == 1e-4
