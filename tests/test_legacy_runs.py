"""Run folders written before the layered redesign (tests/data/legacy: made by commit c69265c, the
last main with flat modules: a completed run, one interrupted at epoch 14 of 60, a sweep of two
points and a 2-fold cv, USPS perceptrons) are read, compared, evaluated and resumed by today's hdr."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hdr.runs import rundir
from tests.conftest import REAL_DATA, REPO, realdata

LEGACY = REPO / "tests" / "data" / "legacy" / "runs"


@pytest.fixture
def runs(tmp_path) -> Path:
    dest = tmp_path / "runs"
    shutil.copytree(LEGACY, dest)
    return dest


def hdr(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "HDR_DATA_DIR": str(REAL_DATA)}
    return subprocess.run([sys.executable, "-m", "hdr.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, env=env)


def one(folder: Path, pattern: str) -> Path:
    (found,) = folder.glob(pattern)
    return found


def test_legacy_runs_are_listed_and_compared(runs):
    r = hdr("runs", runs, "--json")
    assert r.returncode == 0, r.stderr
    listed = {x["id"]: x for x in json.loads(r.stdout)}
    assert sorted(x["status"] for x in listed.values()) == [rundir.COMPLETED] * 3 + [rundir.INTERRUPTED]
    stopped = next(x for x in listed.values() if x["status"] == rundir.INTERRUPTED)
    assert stopped["epochs_completed"] == 14 and stopped["epochs_planned"] == 60
    sweep, cv = one(runs / "sweeps", "*"), one(runs / "cv", "*")
    for folder, n in ((sweep, 2), (cv, 2), (runs, 4)):
        r = hdr("compare", folder, "--json")
        assert r.returncode == 0, r.stderr
        assert len(json.loads(r.stdout)["runs"]) == n


@realdata
def test_legacy_runs_evaluate_and_resume(runs):
    done = next(f for f in runs.iterdir() if (f / rundir.RUN).is_file()
                and rundir.read_info(f)["status"] == rundir.COMPLETED)
    r = hdr("evaluate", done, "-q")
    assert r.returncode == 0, r.stderr
    evaluated = rundir.read_json(done / rundir.EVAL / rundir.METRICS)[rundir.TEST_ACCURACY]
    assert evaluated == pytest.approx(rundir.read_metrics(done)[rundir.TEST_ACCURACY], abs=1e-6)
    stopped = next(f for f in runs.iterdir() if (f / rundir.RUN).is_file()
                   and rundir.read_info(f)["status"] == rundir.INTERRUPTED)
    r = hdr("train", "--resume", stopped, "-q")
    assert r.returncode == 0, r.stderr
    assert [row["epoch"] for row in rundir.history(stopped)] == list(range(1, 61))
    assert rundir.read_info(stopped)["status"] == rundir.COMPLETED
    r = hdr("sweep", "--resume", one(runs / "sweeps", "*"), "-q")
    assert r.returncode == 0 and "nothing to resume" in r.stderr, r.stderr
    r = hdr("cv", "--resume", one(runs / "cv", "*"), "-q")
    assert r.returncode == 0, r.stderr
