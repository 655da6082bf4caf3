"""hdr sweep trains its points in reused worker processes: each point's history must be the one a
separate `hdr train` process gives, whatever the worker trained before (dtype policy, seeds,
Keras's session state must not leak from point to point)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.conftest import CONFIGS, REPO, realdata


def history(run: Path) -> list[dict]:
    rows = list(csv.DictReader((run / "history.csv").open()))
    for r in rows:
        del r["seconds"]  # wall time, the one column that may differ
    return rows


@realdata
def test_reused_workers_give_each_point_the_history_of_its_own_process(cli_run, real_data, tmp_path):
    fixed = ["dataset.name=usps", "model.hidden=[32]", "training.epochs=2"]
    r = cli_run("sweep", CONFIGS / "mlp_dropout_adam.yaml", *fixed,
                "--grid", "training.precision=mixed_bfloat16,float32", "--jobs", "1",
                "--runs-dir", tmp_path / "sweep", "-q")
    assert r.exit_code == 0, r.output
    sweep = json.loads(next((tmp_path / "sweep" / "sweeps").glob("*/sweep.json")).read_text())
    points = sweep["points"]
    assert [p["status"] for p in points] == ["completed"] * 2
    folder = next((tmp_path / "sweep" / "sweeps").iterdir())
    runs = [(folder / p["run"]).resolve() for p in points]
    pids = {json.loads((run / "run.json").read_text())["pid"] for run in runs}
    assert len(pids) == 1, "one worker trained both points"

    env = {**os.environ, "HDR_DATA_DIR": str(real_data)}
    for point, run in zip(points, runs):
        alone = subprocess.run([sys.executable, "-m", "hdr", "train", str(CONFIGS / "mlp_dropout_adam.yaml"),
                                *fixed, *point["overrides"], "--runs-dir", str(tmp_path / "alone"), "-q"],
                               env=env, capture_output=True, text=True, cwd=REPO, timeout=600)
        assert alone.returncode == 0, alone.stderr[-2000:]
        own = Path(alone.stdout.strip().splitlines()[-1])
        assert history(run) == history(own), point["overrides"]
        trained, separate = (json.loads((x / "metrics.json").read_text()) for x in (run, own))
        assert trained["test_accuracy"] == separate["test_accuracy"]
    # The float32 point came after the bf16 one in the same process, and still equals its own
    # process's float32 history: no dtype policy, seed state or Keras state was carried over.
    assert [p["overrides"][0] for p in points] == ["training.precision=mixed_bfloat16", "training.precision=float32"]


def _kill_the_worker_once_it_trains(runs: Path, done: threading.Event) -> None:
    """SIGKILL (as the out-of-memory killer would) the worker of this process once the first
    point's run folder exists."""
    deadline = time.time() + 120
    while time.time() < deadline and not done.is_set():
        if any(runs.glob("*/run.json")):
            for proc in Path("/proc").iterdir():
                try:
                    cmd = (proc / "cmdline").read_bytes().split(b"\0")
                    ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    continue
                if b"hdr.engine.worker" in cmd and ppid == os.getpid():
                    os.kill(int(proc.name), signal.SIGKILL)
                    return
        time.sleep(0.05)


def test_a_worker_that_dies_loses_only_its_point(cli_run, tiny_data, tmp_path):
    """A point whose training process dies is recorded as failed; the sweep goes on with a
    fresh worker for the next point."""
    done = threading.Event()
    killer = threading.Thread(target=_kill_the_worker_once_it_trains, args=(tmp_path, done), daemon=True)
    killer.start()
    try:
        r = cli_run("sweep", CONFIGS / "slp_sgd.yaml", "dataset.name=usps", "--grid", "training.epochs=300,1",
                    "--runs-dir", tmp_path, "-q")
    finally:
        done.set()
    assert r.exit_code == 1 and "1 of 2 runs failed" in r.stderr, r.output
    points = json.loads(next((tmp_path / "sweeps").glob("*/sweep.json")).read_text())["points"]
    assert [p["status"] for p in points] == ["failed", "completed"]
    assert "exit code -9" in points[0]["error"]
