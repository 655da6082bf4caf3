"""hdr ensemble: real 1-epoch USPS runs, averaged through the real CLI."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REAL_DATA, realdata, run_cli

pytestmark = realdata
ENV = {"HDR_DATA_DIR": str(REAL_DATA), "HDR_NO_VERIFY": None}


def hdr(*args):
    return run_cli(*args, env=ENV)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """A sweep of 4 runs: learning rates 0.01 and 0.1, seeds 1 and 2 (SLP, USPS, 1 epoch)."""
    runs = tmp_path_factory.mktemp("ensemble_runs")
    r = hdr("sweep", "configs/slp_sgd.yaml", "dataset.name=usps", "training.epochs=1",
            "--grid", "optimizer.learning_rate=0.01,0.1", "--seeds", "2", "--runs-dir", runs, "-q")
    assert r.exit_code == 0, r.output
    return Path(r.stdout.strip().splitlines()[-1])


def member_runs(sweep: Path) -> list[Path]:
    points = json.loads((sweep / "sweep.json").read_text())["points"]
    return [Path(os.path.normpath(sweep / p["run"])) for p in points]


def seed_of(run: Path) -> int:
    import yaml

    return yaml.safe_load((run / "config.yaml").read_text())["training"]["seed"]


def predictions(folder: Path) -> list[dict]:
    with open(folder / "predictions.csv") as f:
        return list(csv.DictReader(f))


def test_sweep_folder_gives_ensemble_of_its_runs(sweep):
    r = hdr("ensemble", sweep)
    assert r.exit_code == 0, r.output
    out = Path(r.stdout.strip().splitlines()[-1])
    runs = member_runs(sweep)
    assert out.parent == runs[0].parent / "ensembles" and "-4runs-" in out.name
    files = {p.name for p in out.iterdir()}
    assert {"metrics.json", "confusion_matrix.csv", "confusion_matrix.png", "per_class.csv", "predictions.csv",
            "report.md", "misclassified.png"} <= files
    m = json.loads((out / "metrics.json").read_text())
    assert [row["run"] for row in m["members"]] == [p.name for p in runs]

    # Each member's accuracy equals its own evaluation's; the ensemble's follows from predictions.csv.
    for row, run in zip(m["members"], runs):
        assert hdr("evaluate", run, "-q").exit_code == 0
        own = json.loads((run / "eval" / "metrics.json").read_text())
        assert row["test_accuracy"] == pytest.approx(own["test_accuracy"], abs=1e-12)
    rows = predictions(out)
    assert len(rows) == m["size"]
    correct = sum(r["label"] == r["predicted"] for r in rows)
    assert m["test_accuracy"] == pytest.approx(correct / len(rows))
    assert m["errors"] == len(rows) - correct

    # The mean of the members' probabilities, from their models.
    from hdr.core import data
    from hdr.runs import rundir

    test = data.load("usps", quiet=True, recorded_dir=str(REAL_DATA)).test
    probs = [np.asarray(rundir.load_model(run).predict(test.x, verbose=0), dtype=np.float64) for run in runs]
    mean = np.mean(probs, axis=0)
    assert [int(r["predicted"]) for r in rows] == list(mean.argmax(axis=1))
    conf = np.array([float(r["confidence"]) for r in rows])
    assert conf == pytest.approx(mean.max(axis=1), abs=2e-6)

    # Agreement counts with the best member.
    best = max(range(len(runs)), key=lambda i: m["members"][i]["test_accuracy"])
    assert m["best_member"] == runs[best].name
    ens_ok, best_ok = mean.argmax(1) == test.y, probs[best].argmax(1) == test.y
    assert m["ensemble_right_best_wrong"] == int(np.sum(ens_ok & ~best_ok))
    assert m["best_right_ensemble_wrong"] == int(np.sum(best_ok & ~ens_ok))
    assert m["test_accuracy"] - m["members"][best]["test_accuracy"] == pytest.approx(
        (m["ensemble_right_best_wrong"] - m["best_right_ensemble_wrong"]) / m["size"])
    report = (out / "report.md").read_text()
    assert all(run.name in report for run in runs) and "ensemble" in report


def test_val_split_of_same_rows(sweep, tmp_path):
    same_seed = [r for r in member_runs(sweep) if seed_of(r) == 1]
    assert len(same_seed) == 2
    out = tmp_path / "ens"
    r = hdr("ensemble", *same_seed, "--split", "val", "--out", out, "-q")
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == str(out)
    m = json.loads((out / "metrics.json").read_text())
    assert m["split"] == "val" and "val_accuracy" in m and "test_accuracy" not in m
    assert {"run", "val_accuracy"} == set(m["members"][0])
    # --out never overwrites
    r = hdr("ensemble", *same_seed, "--out", out)
    assert r.exit_code == 2 and "already exists" in r.stderr


def _refused(args, tmp_path, *words):
    out = tmp_path / "never"
    before = set(tmp_path.rglob("*"))
    r = hdr("ensemble", *args, "--out", out)
    assert r.exit_code == 2, r.output
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    for w in words:
        assert w in r.stderr
    assert not out.exists() and set(tmp_path.rglob("*")) == before


def _copy(run: Path, tmp_path: Path, name: str) -> Path:
    dest = tmp_path / name
    shutil.copytree(run, dest)
    return dest


def test_refusals(sweep, tmp_path):
    runs = member_runs(sweep)
    _refused([runs[0]], tmp_path, "at least two")
    _refused([runs[0], runs[0]], tmp_path, "twice")
    _refused([runs[0], tmp_path], tmp_path, "not a run folder")
    _refused([runs[0], tmp_path / "missing"], tmp_path, "not found")


def test_refusals_of_members(sweep, tmp_path):
    runs = member_runs(sweep)
    keep = tmp_path / "members"
    keep.mkdir()
    other = _copy(runs[1], keep, "mnist-run")
    (other / "config.yaml").write_text((other / "config.yaml").read_text().replace("name: usps", "name: mnist"))
    _refused([runs[0], other], tmp_path, "different datasets")

    for status in ("running", "interrupted", "failed"):
        bad = _copy(runs[1], keep, f"{status}-run")
        info = json.loads((bad / "run.json").read_text())
        info.update(status=status, pid=None)
        (bad / "run.json").write_text(json.dumps(info))
        _refused([runs[0], bad], tmp_path, "not completed")

    nomodel = _copy(runs[1], keep, "nomodel-run")
    (nomodel / "model.keras").unlink()
    _refused([runs[0], nomodel], tmp_path, "model.keras")

    _refused([*runs, "--split", "val"], tmp_path, "--split val", "training.seed")
    cv_like = _copy(runs[1], keep, "fold-run")
    info = json.loads((cv_like / "run.json").read_text())
    info.update(fold=1, folds=3, fold_seed=0)
    (cv_like / "run.json").write_text(json.dumps(info))
    _refused([runs[0], cv_like, "--split", "val"], tmp_path, "cross-validation")
