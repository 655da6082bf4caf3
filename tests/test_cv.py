"""hdr cv: stratified folds (class proportions per fold) and a real tiny cross-validation."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hdr.core.data import stratified_folds
from tests.conftest import REPO, realdata

ROOT = Path(__file__).resolve().parents[1]
SLP = str(ROOT / "configs" / "slp_sgd.yaml")


def check_folds(y: np.ndarray, folds: list[np.ndarray], k: int) -> None:
    assert len(folds) == k
    everything = np.concatenate(folds)
    assert len(everything) == len(y) and len(np.unique(everything)) == len(y)  # disjoint, covering
    sizes = [len(f) for f in folds]
    assert max(sizes) - min(sizes) <= 1
    for label in np.unique(y):
        per_fold = [int(np.sum(y[f] == label)) for f in folds]
        assert max(per_fold) - min(per_fold) <= 1, (label, per_fold)  # each class dealt evenly


def test_folds_are_stratified_disjoint_and_balanced():
    rng = np.random.default_rng(3)
    # Imbalanced classes; the rarest has exactly one example per fold at k=5.
    y = np.concatenate([np.full(n, c) for c, n in enumerate([500, 37, 5, 120, 64])]).astype(np.uint8)
    y = y[rng.permutation(len(y))]
    for k in (2, 3, 5):
        check_folds(y, stratified_folds(y, k, seed=1), k)


def test_folds_are_seeded():
    y = np.repeat(np.arange(10), 50)
    a, b, c = (stratified_folds(y, 5, s) for s in (1, 1, 2))
    assert all(np.array_equal(x, z) for x, z in zip(a, b))
    assert not all(np.array_equal(x, z) for x, z in zip(a, c))


@realdata
def test_mnist_folds_keep_class_proportions(real_data):
    from hdr.core import data

    y = data.load("mnist").train.y
    folds = stratified_folds(y, 5, seed=1)
    check_folds(y, folds, 5)
    overall = np.bincount(y, minlength=10) / len(y)
    for f in folds:
        share = np.bincount(y[f], minlength=10) / len(f)
        assert np.abs(share - overall).max() < 1e-3


def test_fewer_than_two_folds_is_usage_error(cli_run, tmp_path):
    for k in ("1", "0", "-3"):
        result = cli_run("cv", SLP, "--folds", k, "--runs-dir", tmp_path)
        assert result.exit_code == 2
        assert result.stderr.startswith(f"hdr: error: --folds {k}: cross-validation needs at least 2 folds")
    assert not any(tmp_path.iterdir())


def test_bad_override_is_usage_error(cli_run, tmp_path):
    result = cli_run("cv", SLP, "--folds", "2", "training.epochs=zero", "--runs-dir", tmp_path)
    assert result.exit_code == 2 and "training.epochs" in result.stderr
    assert not any(tmp_path.iterdir())


@realdata
def test_more_folds_than_rarest_class_is_usage_error(cli_run, tmp_path, real_data):
    result = cli_run("cv", SLP, "dataset.name=usps", "--folds", "5000", "--runs-dir", tmp_path)
    assert result.exit_code == 2 and "rarest digit" in result.stderr
    assert not (tmp_path / "cv").exists()


@realdata
def test_cv_trains_each_fold_and_summarises(cli_run, tmp_path, real_data):
    result = cli_run("cv", SLP, "--folds", "2", "dataset.name=usps", "training.epochs=1", "training.batch_size=512",
                     "--runs-dir", tmp_path, "-q")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    folder = Path(lines[-1])
    assert folder.parent == tmp_path / "cv"
    match = re.fullmatch(r"accuracy: mean=(\d+\.\d{2})% std=(\d+\.\d{2})% n=2", lines[-3])
    assert match, lines
    info = json.loads((folder / "cv.json").read_text())
    assert info["status"] == "completed" and info["folds"] == 2 and sum(info["fold_sizes"]) == 7291
    results = info["results"]
    assert [r["fold"] for r in results] == [1, 2] and all(r["status"] == "completed" for r in results)
    vals = [r["val_accuracy"] for r in results]
    summary = info["summary"]["val_accuracy"]
    assert summary["mean"] == pytest.approx(np.mean(vals))
    assert summary["std"] == pytest.approx(np.std(vals, ddof=1))
    assert float(match.group(1)) == pytest.approx(100 * summary["mean"], abs=5e-3)
    assert info["summary"]["test_accuracy"]["n"] == 2
    for r, size in zip(results, info["fold_sizes"]):
        run = folder / r["run"]
        run_info = json.loads((run / "run.json").read_text())
        assert run_info["cv_id"] == folder.name and run_info["fold"] == r["fold"]
        assert run_info["status"] == "completed"
        metrics = json.loads((run / "metrics.json").read_text())
        # The fold is exactly the validation set; the rest of the training set is trained on.
        assert metrics["val_size"] == size and metrics["train_size"] == 7291 - size
        assert metrics["val_accuracy"] == r["val_accuracy"]
        assert len((run / "history.csv").read_text().splitlines()) == 2  # header + 1 epoch
    assert (folder / "folds.png").read_bytes()[:4] == b"\x89PNG"
    # The cv folder is a valid argument to hdr compare: one row per fold.
    compared = cli_run("compare", folder)
    assert compared.exit_code == 0, compared.output
    assert compared.stdout.splitlines()[0].split()[:2] == ["run", "fold"]
    assert len([x for x in compared.stdout.splitlines() if "completed" in x]) == 2


def test_a_stopped_fold_points_to_cv_resume_and_train_resume_keeps_its_fold(cli_run, make_tiny_data, tmp_path):
    """A fold stopped part-way says to finish with hdr cv --resume; hdr train --resume on the fold
    itself validates on the fold's rows (not the config's split); hdr cv --resume then keeps that
    completed fold as it is."""
    data = make_tiny_data(mnist=(300, 100), usps=None)
    env = {**os.environ, "HDR_DATA_DIR": str(data), "HDR_NO_VERIFY": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "hdr", "cv", str(SLP), "--folds", "2", "training.epochs=40",
                             "training.batch_size=32", "training.steps_per_execution=1", "--runs-dir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
    try:
        deadline = time.time() + 180
        while time.time() < deadline and not any(
                json.loads(p.read_text()).get("epochs_completed", 0) >= 2 for p in tmp_path.glob("cv/*/*/run.json")):
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-3000:]
    folder = Path(out.strip().splitlines()[-1])
    assert f"finish it with: hdr cv --resume {folder}" in err.strip().splitlines()[-1]
    assert "hdr train --resume" not in err and "stopped after" in err
    info = json.loads((folder / "cv.json").read_text())
    fold_run = next(p.parent for p in folder.glob("*/run.json") if json.loads(p.read_text())["status"] == "interrupted")
    fold = json.loads((fold_run / "run.json").read_text())["fold"]

    r = cli_run("train", "--resume", fold_run, "-q")
    assert r.exit_code == 0, r.output
    metrics = json.loads((fold_run / "metrics.json").read_text())
    assert metrics["val_size"] == info["fold_sizes"][fold - 1]  # the fold's own rows
    assert metrics["train_size"] == 300 - info["fold_sizes"][fold - 1]

    r = cli_run("cv", "--resume", folder, "-q")
    assert r.exit_code == 0, r.output
    done = json.loads((folder / "cv.json").read_text())
    assert [x["status"] for x in done["results"]] == ["completed", "completed"]
    assert done["results"][fold - 1]["run"] == fold_run.name and fold_run.is_dir()  # kept, not trained again
    assert json.loads((fold_run / "metrics.json").read_text()) == metrics
    assert len([p for p in folder.iterdir() if (p / "run.json").is_file()]) == 2
