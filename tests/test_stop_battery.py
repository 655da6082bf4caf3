"""hdr sweep, hdr tune and hdr cv on local workers, stopped at random moments in every way a
machine stops a command (tests/battery.py), then resumed until they end: every planned point
completed once, with the history of an undisturbed command. The same battery on a Ray cluster
is in tests/test_ray.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.battery import MOMENTS, Command, attack, battery_rng
from tests.conftest import CONFIGS, REPO

SLP = str(CONFIGS / "slp_sgd.yaml")
# Runs of a few seconds on tiny data: long enough that a random moment finds them training,
# short enough for CI.
FIXED = ["training.epochs=30", "training.batch_size=32", "training.steps_per_execution=1"]
COMMANDS = {
    "sweep": [SLP, *FIXED, "--grid", "optimizer.learning_rate=0.05,0.2", "--seeds", "2", "--jobs", "2", "-q"],
    # One trial at a time: which trial a pruner compares with, and what TPE proposes next, then
    # depend on nothing but the trials before it, so the undisturbed search is the reference.
    "tune": [SLP, "optimizer.learning_rate=loguniform(0.01,0.5)", *FIXED[1:], "training.epochs=12", "--trials", "4",
             "--startup-trials", "2", "--jobs", "1", "-q"],
    "cv": [SLP, *FIXED, "--folds", "3", "--jobs", "2", "-q"],
}


def env_for(data) -> dict:
    return {**os.environ, "HDR_DATA_DIR": str(data), "HDR_NO_VERIFY": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}


@pytest.mark.parametrize("kind", list(COMMANDS))
def test_stopped_any_way_at_any_moment_resume_finishes_exactly_the_plan(kind, make_tiny_data, tmp_path):
    env = env_for(make_tiny_data(mnist=(300, 100), usps=None))
    reference = Command(kind, COMMANDS[kind], env, tmp_path / "undisturbed")
    t0 = time.monotonic()
    code = reference.start(None, tmp_path / "undisturbed.log").wait(timeout=600)
    longest = time.monotonic() - t0
    assert code == 0, (tmp_path / "undisturbed.log").read_text()[-3000:]
    expected = reference.final()

    rng, seed = battery_rng()
    for m in range(MOMENTS):
        cmd = Command(kind, COMMANDS[kind], env, tmp_path / f"moment{m}")
        done = attack(cmd, rng, seed, 2 if MOMENTS == 1 else rng.choice([1, 2]), longest, tmp_path / f"moment{m}.log")
        print(f"{kind}: battery seed {seed}, moment {m}: {done}")
        assert cmd.final() == expected, f"battery seed {seed}, moment {m}: {done}"
        if kind != "tune":
            recorded = json.loads(next(cmd.folder().glob("*.json")).read_text())
            assert recorded["options"]["jobs"] == 2, f"a resume forgot --jobs 2: {done}"


def _start(kind: str, args: list[str], env: dict, log) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hdr.cli", kind, *args], cwd=REPO, env=env, stdout=log,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _wait_for_a_run_training(folder, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for p in folder.rglob("run.json"):
            try:
                info = json.loads(p.read_text())
            except (OSError, ValueError):
                continue
            if info.get("status") == "running" and info.get("epochs_completed", 0) >= 1:
                return
        time.sleep(0.1)
    pytest.fail("no run started training")


def _wait_for_the_lock(folder, proc, timeout=120):
    """Until proc holds the folder (its lock file names it)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, "the first resume ended before it held the folder"
        try:
            if json.loads((folder / ".lock").read_text()).get("pid") == proc.pid:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    pytest.fail("the first resume never held the folder")


@pytest.mark.parametrize("kind", ["sweep", "tune"])
def test_a_second_resume_of_one_folder_is_refused_naming_the_first(kind, make_tiny_data, tmp_path):
    """Two terminals: the second --resume while the first trains gets one line naming the
    process that holds the folder, exit 2; the first finishes with nothing trained twice."""
    env = env_for(make_tiny_data(mnist=(300, 100), usps=None))
    cmd = Command(kind, COMMANDS[kind], env, tmp_path / "runs")
    first = cmd.start(None, tmp_path / "first.log")
    _wait_for_a_run_training(cmd.runs)
    first.kill()  # as a dropped ssh session would leave it: to be resumed
    first.wait(timeout=60)
    folder = cmd.folder()
    with (tmp_path / "a.log").open("w") as log:
        a = _start(kind, ["--resume", str(folder)], env, log)
        _wait_for_the_lock(folder, a)
        b = subprocess.run([sys.executable, "-m", "hdr.cli", kind, "--resume", str(folder)], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=120)
        assert b.returncode == 2, b.stderr
        lines = b.stderr.strip().splitlines()
        assert len(lines) == 1 and f"in use by process {a.pid}" in lines[0], b.stderr
        assert "Traceback" not in b.stderr
        assert a.wait(timeout=600) == 0, (tmp_path / "a.log").read_text()[-3000:]
    cmd.final()  # every planned point once


def test_a_sweep_stopped_as_its_last_run_ended_is_completed_by_its_resume(cli_run, make_tiny_data, tmp_path):
    """A stop that lands after the last run completed leaves a sweep `interrupted` with nothing
    left to train; its resume trains nothing and records it completed."""
    make_tiny_data(mnist=(300, 100), usps=None)
    r = cli_run("sweep", SLP, "training.epochs=1", "--grid", "optimizer.learning_rate=0.05,0.2", "--runs-dir",
                tmp_path, "-q")
    assert r.exit_code == 0, r.output
    folder = next((tmp_path / "sweeps").iterdir())
    record = json.loads((folder / "sweep.json").read_text())
    record["status"] = "interrupted"
    (folder / "sweep.json").write_text(json.dumps(record))
    r = cli_run("sweep", "--resume", folder, "-q")
    assert r.exit_code == 0, r.output
    assert "nothing to resume" in r.stderr
    assert json.loads((folder / "sweep.json").read_text())["status"] == "completed"
