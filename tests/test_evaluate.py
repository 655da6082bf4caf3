"""hdr evaluate and the MNIST <-> USPS re-framing.

Most tests use a run trained in-process on tiny generated datasets (a few seconds); the tests
marked realdata train one real 1-epoch MNIST run per session and check the numbers against
what training itself measured.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from hdr.core.transfer import reframe
from tests.conftest import REAL_DATA, have_real_data, realdata, use_data_dir, write_tiny_data

REPO = Path(__file__).resolve().parents[1]
needs_real = realdata


# ---------------------------------------------------------------- tiny generated datasets

@pytest.fixture(scope="module")
def fake_data(tmp_path_factory):
    """Tiny MNIST (300 train, 120 test) and USPS (150, 60) of noisy bars: learnable, yet the tiny
    model still makes mistakes to show."""
    return write_tiny_data(tmp_path_factory.mktemp("data"), mnist=(300, 120), usps=(150, 60), style="bars", seed=1)


@pytest.fixture
def fake_env(monkeypatch, fake_data):
    return use_data_dir(monkeypatch, fake_data)


def _train(runs_dir: Path, *overrides: str) -> Path:
    from hdr.engine import config
    from hdr.engine import train

    cfg = config.load(REPO / "configs" / "slp_sgd.yaml", ["training.epochs=2", "training.batch_size=32", *overrides])
    return train.train(cfg, "slp_sgd", runs_dir, quiet=True)


@pytest.fixture(scope="module")
def fake_run(fake_data, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        use_data_dir(mp, fake_data)
        return _train(tmp_path_factory.mktemp("runs"))


@pytest.fixture
def run_copy(fake_run, tmp_path):
    """A private copy of the fake run, so a test may damage or re-evaluate it freely."""
    dest = tmp_path / fake_run.name
    shutil.copytree(fake_run, dest)
    return dest


def assert_one_line_error(result, code: int, *words: str) -> None:
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hdr: error: "), result.stderr
    assert "Traceback" not in result.output
    for w in words:
        assert w in lines[0], (w, lines[0])


def read_matrix(path: Path) -> np.ndarray:
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["true\\pred"] + [str(k) for k in range(10)]
    assert [r[0] for r in rows[1:]] == [str(k) for k in range(10)]
    return np.array([[int(v) for v in r[1:]] for r in rows[1:]])


def read_per_class(path: Path) -> list[dict]:
    with path.open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["label", "support", "correct", "accuracy", "error_rate", "precision", "recall", "f1"]
    return rows


def confusion_of(preds: np.ndarray) -> np.ndarray:
    cm = np.zeros((10, 10), int)
    np.add.at(cm, (preds[:, 1].astype(int), preds[:, 2].astype(int)), 1)
    return cm


def check_consistent(out: Path, size: int) -> dict:
    """Everything in an eval folder agrees with everything else in it."""
    m = json.loads((out / "metrics.json").read_text())
    cm = read_matrix(out / "confusion_matrix.csv")
    assert cm.sum() == size == m["size"]
    split = m["split"]
    other = {"test": "val", "val": "test"}[split]
    assert f"{other}_accuracy" not in m and f"{other}_loss" not in m  # one split's figures, named for it
    assert np.trace(cm) / size == pytest.approx(m[f"{split}_accuracy"], abs=1e-12)
    assert m["error_rate"] == pytest.approx(1 - m[f"{split}_accuracy"], abs=1e-12)
    assert m["errors"] == size - np.trace(cm)
    preds = np.loadtxt(out / "predictions.csv", delimiter=",", skiprows=1, ndmin=2)
    assert len(preds) == size and len(np.unique(preds[:, 0])) == size  # one row per digit
    assert np.mean(preds[:, 1] == preds[:, 2]) == pytest.approx(m[f"{split}_accuracy"], abs=1e-12)
    assert confusion_of(preds).tolist() == cm.tolist()
    rows = read_per_class(out / "per_class.csv")
    for k, r in enumerate(rows):
        assert int(r["label"]) == k
        assert int(r["support"]) == cm[k].sum()
        assert int(r["correct"]) == cm[k, k]
        if cm[k].sum():
            assert float(r["recall"]) == pytest.approx(cm[k, k] / cm[k].sum(), abs=1e-6)
            assert float(r["accuracy"]) == pytest.approx(float(r["recall"]), abs=1e-6)
            assert float(r["error_rate"]) == pytest.approx(1 - float(r["accuracy"]), abs=1e-6)
        if cm[:, k].sum():
            assert float(r["precision"]) == pytest.approx(cm[k, k] / cm[:, k].sum(), abs=1e-6)
        p, rc = float(r["precision"]), float(r["recall"])
        assert float(r["f1"]) == pytest.approx(2 * p * rc / (p + rc) if p + rc else 0.0, abs=1e-5)
    assert m["macro_f1"] == pytest.approx(np.mean([float(r["f1"]) for r in rows]), abs=1e-5)
    assert m["macro_precision"] == pytest.approx(np.mean([float(r["precision"]) for r in rows]), abs=1e-5)
    # One picture per 100 mistakes, named as documented, every one a real PNG of sensible size.
    pages = max(1, math.ceil(m["errors"] / 100))
    expected = ["misclassified.png"] + [f"misclassified-{i:02d}.png" for i in range(2, pages + 1)]
    assert m["misclassified_pages"] == expected
    assert sorted(p.name for p in out.glob("misclassified*.png")) == sorted(expected)
    for png in ["confusion_matrix.png", *expected]:
        check_png(out / png)
    report = (out / "report.md").read_text()
    for ref in ("confusion_matrix.png", "misclassified.png", "per_class.csv", "../accuracy.png", "../loss.png"):
        assert f"({ref})" in report
    return m


def check_png(path: Path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        w, h = im.size
        assert 300 <= w <= 3000 and 200 <= h <= 3000, (path.name, im.size)
        assert np.asarray(im.convert("L")).std() > 5, f"{path.name} is blank"


# ---------------------------------------------------------------- evaluate: fake run

def test_evaluate_writes_consistent_files(cli_run, fake_env, run_copy):
    r = cli_run("evaluate", run_copy)
    assert r.exit_code == 0, r.output
    out = run_copy / "eval"
    assert r.stdout.strip().splitlines()[-1] == str(out)
    assert "accuracy" in r.stdout and "error rate" in r.stdout
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith("misclassified-")) == [
        "confusion_matrix.csv", "confusion_matrix.png", "metrics.json", "misclassified.png", "per_class.csv",
        "predictions.csv", "report.md"]
    m = check_consistent(out, 120)
    trained = json.loads((run_copy / "metrics.json").read_text())
    # The same model on the same data: what training measured with model.evaluate.
    assert m["test_accuracy"] == pytest.approx(trained["test_accuracy"], abs=1e-6)
    assert m["test_loss"] == pytest.approx(trained["test_loss"], rel=1e-4)
    assert (m["dataset"], m["split"], m["model_dataset"]) == ("mnist", "test", "mnist")


def test_split_val_rebuilds_the_validation_split(cli_run, fake_env, run_copy):
    r = cli_run("evaluate", run_copy, "--split", "val")
    assert r.exit_code == 0, r.output
    trained = json.loads((run_copy / "metrics.json").read_text())
    m = check_consistent(run_copy / "eval-val", trained["val_size"])
    assert m["split"] == "val"
    # Same rows as training used: the accuracy agrees with the last epoch's val_accuracy.
    assert m["val_accuracy"] == pytest.approx(trained["val_accuracy"], abs=1e-6)
    assert not (run_copy / "eval").exists()


def test_split_val_without_validation_split(cli_run, fake_env, tmp_path):
    run = _train(tmp_path, "dataset.validation_split=null", "training.epochs=1")
    assert_one_line_error(cli_run("evaluate", run, "--split", "val"), 2, "validation split", "--split test")
    assert not any(p.name.startswith((".eval", "eval")) for p in run.iterdir())


def test_on_other_dataset_reports_transfer_gap(cli_run, fake_env, run_copy):
    r = cli_run("evaluate", run_copy, "--on", "usps")
    assert r.exit_code == 0, r.output
    out = run_copy / "eval-on-usps"
    m = check_consistent(out, 60)
    trained = json.loads((run_copy / "metrics.json").read_text())
    assert (m["dataset"], m["model_dataset"], m["in_domain_dataset"]) == ("usps", "mnist", "mnist")
    assert m["in_domain_accuracy"] == pytest.approx(trained["test_accuracy"])
    assert m["transfer_gap"] == pytest.approx(m["in_domain_accuracy"] - m["test_accuracy"])
    assert "16x16 -> 28x28" in m["reframed"]
    assert "transfer gap" in r.stdout and "transfer gap" in (out / "report.md").read_text()
    # The misclassified digits are shown as the model saw them: 28x28, re-framed.
    with Image.open(out / "misclassified.png") as im:
        assert im.size[0] >= 10 * 84


def test_on_own_dataset_is_a_plain_evaluation(cli_run, fake_env, run_copy):
    assert cli_run("evaluate", run_copy, "--on", "mnist", "-q").exit_code == 0
    assert (run_copy / "eval").is_dir() and not (run_copy / "eval-on-mnist").exists()


def test_many_mistakes_are_split_over_numbered_pages(fake_env, run_copy, monkeypatch):
    import hdr.analysis.evaluate as ev

    monkeypatch.setattr(ev, "PER_PAGE", 4)
    out, m, _ = ev.evaluate(run_copy)
    assert m["errors"] > 8, "the tiny model should make mistakes on noisy fake digits"
    n = math.ceil(m["errors"] / 4)
    assert {p.name for p in out.glob("misclassified*.png")} == \
        {"misclassified.png"} | {f"misclassified-{i:02d}.png" for i in range(2, n + 1)}
    report = (out / "report.md").read_text()
    assert f"[{n}](misclassified-{n:02d}.png)" in report


def test_misclassified_order_is_worst_first():
    from hdr.analysis.evaluate import Evaluation, misclassified_order

    probs = np.array([
        [0.9, 0.1] + [0] * 8,    # right
        [0.3, 0.7] + [0] * 8,    # wrong, 0.7
        [0.05, 0.95] + [0] * 8,  # wrong, 0.95
        [0.45, 0.55] + [0] * 8,  # wrong, 0.55
    ])
    ev = Evaluation("mnist", "test", np.zeros((4, 28, 28, 1), np.uint8), np.array([0, 0, 0, 0]), probs, np.arange(4))
    assert misclassified_order(ev).tolist() == [2, 1, 3]


def test_rerun_replaces_eval_as_a_whole(cli_run, fake_env, run_copy):
    assert cli_run("evaluate", run_copy, "-q").exit_code == 0
    (run_copy / "eval" / "stale.txt").write_text("from an older version")
    (run_copy / "eval" / "misclassified-99.png").write_bytes(b"old")
    assert cli_run("evaluate", run_copy, "-q").exit_code == 0
    names = {p.name for p in (run_copy / "eval").iterdir()}
    assert "stale.txt" not in names and "misclassified-99.png" not in names
    assert not [p for p in run_copy.iterdir() if p.name.startswith(".eval")]


def test_failure_midway_keeps_the_old_eval(fake_env, run_copy, monkeypatch):
    import hdr.analysis.evaluate as ev

    ev.evaluate(run_copy)
    before = {p.name: p.read_bytes() for p in (run_copy / "eval").iterdir()}

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ev, "report_md", boom)  # the last file written
    with pytest.raises(OSError):
        ev.evaluate(run_copy)
    assert {p.name: p.read_bytes() for p in (run_copy / "eval").iterdir()} == before
    assert not [p for p in run_copy.iterdir() if p.name.startswith(".eval")]


def test_stale_temp_folders_of_dead_processes_are_removed(cli_run, fake_env, run_copy):
    dead = run_copy / ".eval.tmp-999999999-abc"  # no such pid
    dead.mkdir()
    assert cli_run("evaluate", run_copy, "-q").exit_code == 0
    assert not dead.exists()


def test_copied_run_folder_evaluates_without_absolute_paths(cli_run, fake_env, fake_run, tmp_path):
    moved = tmp_path / "elsewhere" / "the-run"
    shutil.copytree(fake_run, moved)
    r = cli_run("evaluate", moved, "--on", "usps", "-q")
    assert r.exit_code == 0, r.output
    for out in [moved / "eval-on-usps"]:
        for f in out.iterdir():
            if f.suffix in (".json", ".md", ".csv"):
                text = f.read_text()
                assert str(tmp_path) not in text and str(fake_run.parent) not in text, f.name


# ---------------------------------------------------------------- evaluate: bad input

def test_missing_run_folder(cli_run, fake_env, tmp_path):
    assert_one_line_error(cli_run("evaluate", tmp_path / "nope"), 2, "run folder not found")


def test_not_a_run_folder(cli_run, fake_env, tmp_path):
    assert_one_line_error(cli_run("evaluate", tmp_path), 2, "not a complete run folder", "run.json")


def test_incomplete_run_without_model(cli_run, fake_env, run_copy):
    (run_copy / "model.keras").unlink()
    info = json.loads((run_copy / "run.json").read_text())
    info["status"] = "interrupted"
    (run_copy / "run.json").write_text(json.dumps(info))
    assert_one_line_error(cli_run("evaluate", run_copy), 2, "no model.keras", "hdr train --resume")
    assert not [p for p in run_copy.iterdir() if "eval" in p.name]


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupt_model_file(cli_run, fake_env, run_copy, damage):
    model = run_copy / "model.keras"
    data = model.read_bytes()
    model.write_bytes({"garbage": b"not a keras file\n" * 50, "truncated": data[: len(data) // 2], "empty": b""}[damage])
    assert_one_line_error(cli_run("evaluate", run_copy), 1, "model.keras", "corrupt")
    assert not [p for p in run_copy.iterdir() if "eval" in p.name]


def test_corrupt_config(cli_run, fake_env, run_copy):
    (run_copy / "config.yaml").write_text("dataset: [\n")
    assert_one_line_error(cli_run("evaluate", run_copy), 2, "config.yaml")


def test_on_with_split_val(cli_run, fake_env, run_copy):
    assert_one_line_error(cli_run("evaluate", run_copy, "--on", "usps", "--split", "val"), 2, "--on usps", "--split")


def test_unknown_dataset_and_split(cli_run, fake_env, run_copy):
    for args in (["--on", "emnist"], ["--split", "train"]):
        r = cli_run("evaluate", run_copy, *args)
        assert r.exit_code == 2 and "Traceback" not in r.output
        assert args[0] in r.stderr


def test_cli_error_is_one_line_in_a_real_process(tmp_path):
    p = subprocess.run([sys.executable, "-m", "hdr.cli", "evaluate", str(tmp_path / "missing")],
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [f"hdr: error: run folder not found: {tmp_path / 'missing'} "
                                             "(list runs with: hdr runs)"]


# ---------------------------------------------------------------- numbers

def test_per_class_figures_from_a_known_matrix():
    from hdr.analysis.evaluate import confusion_matrix, per_class

    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 1, 1, 2, 2]
    cm = confusion_matrix(y_true, y_pred, 10)
    assert cm[:3, :3].tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    rows = per_class(cm)
    assert rows[0]["recall"] == pytest.approx(2 / 3) and rows[0]["precision"] == 1.0
    assert rows[1]["recall"] == pytest.approx(1 / 2) and rows[1]["precision"] == pytest.approx(1 / 2)
    assert rows[2]["precision"] == pytest.approx(1 / 2) and rows[2]["f1"] == pytest.approx(2 / 3)
    assert rows[5] == {"label": 5, "support": 0, "correct": 0, "accuracy": 0.0, "error_rate": 0.0,
                       "precision": 0.0, "recall": 0.0, "f1": 0.0}


# ---------------------------------------------------------------- re-framing

def ink_box(img: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero(img.any(axis=1)), np.flatnonzero(img.any(axis=0))
    return rows[0], rows[-1], cols[0], cols[-1]


def centre_of_mass(img: np.ndarray) -> tuple[float, float]:
    r, c = np.indices(img.shape)
    m = img.astype(float)
    return (r * m).sum() / m.sum(), (c * m).sum() / m.sum()


def test_usps_to_mnist_fits_20x20_box_centred_by_mass():
    img = np.zeros((16, 16), np.uint8)
    img[0:16, 1:5] = 255           # a tall stroke touching the top and bottom, off to the left,
    img[0, 5:9] = 255              # with a thin flag: the mass sits well left of the box's centre
    out = reframe(img, (28, 28))
    assert out.shape == (28, 28) and out.dtype == np.uint8
    r0, r1, c0, c1 = ink_box(out > 25)
    assert r1 - r0 + 1 == 20           # longest side scaled to 20
    assert 9 <= c1 - c0 + 1 <= 11      # aspect kept: 8/16 of 20
    cr, cc = centre_of_mass(out)
    assert abs(cr - 14) <= 0.75 and abs(cc - 14) <= 0.75
    assert (c0 + c1) / 2 > 15          # so the box itself sits right of centre
    assert r0 >= 2 and r1 <= 25        # about MNIST's 4-pixel margin (centring by mass moves it a little)


def test_mnist_to_usps_fills_the_frame():
    img = np.zeros((28, 28), np.uint8)
    img[6:22, 12:16] = 255             # a thin "1": 16 tall, 4 wide
    out = reframe(img[..., None], (16, 16))
    assert out.shape == (16, 16, 1)
    r0, r1, c0, c1 = ink_box(out[..., 0] > 25)
    assert (r0, r1) == (0, 15)         # fills the height
    assert 3 <= c1 - c0 + 1 <= 5 and abs((c0 + c1) / 2 - 7.5) <= 1  # keeps its aspect, centred


def test_lopsided_digit_stays_inside_the_frame():
    img = np.zeros((16, 16), np.uint8)
    img[0:4, :] = 255                  # heavy top bar
    img[4:16, 7] = 60                  # faint stem: the mass sits at the very top
    out = reframe(img, (28, 28))
    assert out.sum() > 0
    r0, r1, c0, c1 = ink_box(out > 0)
    # Centring the mass would push the bar 3 pixels past the top; the box is kept in the frame
    # instead, so the whole 20-pixel digit is there.
    assert r1 - r0 + 1 >= 19 and c1 - c0 + 1 >= 19
    assert out[r0: r0 + 4].mean() > 150     # the bar, uncut


def test_layouts_and_empty_images():
    batch = np.zeros((3, 16, 16, 1), np.uint8)
    batch[1, 4:12, 4:12, 0] = 200
    out = reframe(batch, (28, 28, 1))
    assert out.shape == (3, 28, 28, 1)
    assert out[0].max() == 0 and out[2].max() == 0 and out[1].max() > 150
    assert reframe(batch[..., 0], (28, 28)).shape == (3, 28, 28)
    assert reframe(np.zeros((0, 16, 16, 1), np.uint8), (28, 28)).shape == (0, 28, 28, 1)
    with pytest.raises(ValueError):
        reframe(np.zeros((2, 16, 16, 3)), (28, 28))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 15), st.integers(0, 15), st.integers(1, 16), st.integers(1, 16), st.sampled_from([16, 28]))
def test_any_blob_ends_up_inside_the_frame(top, left, h, w, size):
    img = np.zeros((16, 16), np.uint8)
    img[top: top + h, left: left + w] = 255
    out = reframe(img, (size, size))
    assert out.shape == (size, size)
    r0, r1, c0, c1 = ink_box(out > 25)
    longest = max(r1 - r0, c1 - c0) + 1
    if size == 28:
        assert longest <= 20 + 1               # the 20x20 box (+1 for resampling spill)
        assert longest >= 19
    else:
        assert longest >= 15                   # fills 16
    assert out.astype(int).sum() > 0


# ---------------------------------------------------------------- real data

@pytest.fixture(scope="session")
def real_run(tmp_path_factory):
    if not have_real_data():
        pytest.skip(f"real datasets not found in {REAL_DATA}")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HDR_DATA_DIR", str(REAL_DATA))
        mp.delenv("HDR_NO_VERIFY", raising=False)
        from hdr.engine import config
        from hdr.engine import train

        cfg = config.load(REPO / "configs" / "slp_sgd.yaml", ["training.epochs=1"])
        return train.train(cfg, "slp_sgd", tmp_path_factory.mktemp("realruns"), quiet=True)


@pytest.mark.realdata
@needs_real
def test_real_mnist_evaluation_agrees_with_training(cli_run, real_data, real_run):
    r = cli_run("evaluate", real_run)
    assert r.exit_code == 0, r.output
    m = check_consistent(real_run / "eval", 10000)
    trained = json.loads((real_run / "metrics.json").read_text())
    assert m["test_accuracy"] == pytest.approx(trained["test_accuracy"], abs=1e-6)
    assert m["test_loss"] == pytest.approx(trained["test_loss"], rel=1e-4)
    assert m["test_accuracy"] > 0.8  # one epoch of a linear model on MNIST


@pytest.mark.realdata
@needs_real
def test_real_val_split_is_the_training_one(cli_run, real_data, real_run):
    assert cli_run("evaluate", real_run, "--split", "val", "-q").exit_code == 0
    m = check_consistent(real_run / "eval-val", 12000)
    trained = json.loads((real_run / "metrics.json").read_text())
    assert m["val_accuracy"] == pytest.approx(trained["val_accuracy"], abs=1e-6)


@pytest.mark.realdata
@needs_real
def test_real_transfer_to_usps_beats_a_plain_resize(cli_run, real_data, real_run):
    from hdr.core import data
    from hdr.core.backend import quiet_import

    assert cli_run("evaluate", real_run, "--on", "usps", "-q").exit_code == 0
    m = check_consistent(real_run / "eval-on-usps", 2007)
    # Without re-framing (USPS fills its frame, MNIST keeps a margin), the model does far worse.
    usps = data.load("usps").test
    plain = np.stack([np.asarray(Image.fromarray(i[..., 0]).resize((28, 28), Image.Resampling.BILINEAR))
                      for i in usps.x])[..., None]
    model = quiet_import().models.load_model(real_run / "model.keras")
    plain_acc = float((model.predict(plain, verbose=0).argmax(1) == usps.y).mean())
    assert m["test_accuracy"] > plain_acc + 0.15, (m["test_accuracy"], plain_acc)
    assert m["transfer_gap"] == pytest.approx(m["in_domain_accuracy"] - m["test_accuracy"])


@pytest.mark.realdata
@needs_real
def test_reframing_real_digits(real_data):
    from hdr.core import data

    mnist = data.load("mnist").test.x[:1000, ..., 0]
    # MNIST already follows the MNIST convention: re-framing it to 28x28 changes almost nothing.
    assert np.abs(reframe(mnist, (28, 28)).astype(int) - mnist).mean() < 0.5
    usps = data.load("usps").test.x[..., 0]
    up = reframe(usps, (28, 28))
    for img in up:
        r0, r1, c0, c1 = ink_box(img > 0)
        assert max(r1 - r0, c1 - c0) + 1 <= 21      # inside the 20x20 box (+1 for resampling spill)
        cr, cc = centre_of_mass(img)
        assert abs(cr - 14) <= 1 and abs(cc - 14) <= 1
    down = reframe(mnist, (16, 16))
    for img in down:
        r0, r1, c0, c1 = ink_box(img > 25)
        assert max(r1 - r0, c1 - c0) + 1 >= 15      # fills the 16x16 frame


def test_evaluate_val_of_every_cv_fold_scores_exactly_its_held_out_rows(cli_run, fake_env, tmp_path):
    """hdr cv, then hdr evaluate --split val on each fold run, through the real commands: the rows
    scored are the fold's own held-out rows (the folds partition the training set, each eval's
    rows number the fold's val_size, and its accuracy is the one training measured on them)."""
    from hdr.core import data

    r = cli_run("cv", REPO / "configs" / "slp_sgd.yaml", "--folds", "3", "training.epochs=1",
            "training.batch_size=32", "--runs-dir", tmp_path, "-q")
    assert r.exit_code == 0, r.output
    cv_folder = Path(r.stdout.strip().splitlines()[-1])
    results = json.loads((cv_folder / "cv.json").read_text())["results"]
    assert [f["fold"] for f in results] == [1, 2, 3]
    seen = []
    for fold in results:
        run = cv_folder / fold["run"]
        e = cli_run("evaluate", run, "--split", "val", "-q")
        assert e.exit_code == 0, e.output
        trained = json.loads((run / "metrics.json").read_text())
        m = check_consistent(run / "eval-val", trained["val_size"])
        assert m["val_accuracy"] == pytest.approx(trained["val_accuracy"], abs=1e-6)
        rows = np.loadtxt(run / "eval-val" / "predictions.csv", delimiter=",", skiprows=1, ndmin=2)[:, 0]
        seen.append(set(rows.astype(int)))
    n = len(data.load("mnist").train.y)
    assert sum(len(s) for s in seen) == n and set().union(*seen) == set(range(n))  # disjoint and covering
