"""hdr sweep: grid parsing and expansion, validation before launch, and real tiny parallel sweeps."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hdr.orchestration import executors
from hdr.engine.config import split_values
from hdr.orchestration import sweep
from hdr.core.errors import UsageError
from tests.conftest import realdata

ROOT = Path(__file__).resolve().parents[1]
SLP = str(ROOT / "configs" / "slp_sgd.yaml")
# USPS is small: a one-epoch single-layer perceptron trains in about a second.
TINY = ["dataset.name=usps", "training.epochs=1", "training.batch_size=512"]


def test_split_values_keeps_lists_whole():
    assert split_values("adam,sgd") == ["adam", "sgd"]
    assert split_values("[256],[512, 512]") == ["[256]", "[512, 512]"]
    assert split_values("'a,b',c") == ["'a,b'", "c"]
    assert split_values("0.1") == ["0.1"]


@pytest.mark.parametrize("item, message", [
    ("optimizer.name", "expected KEY=V1,V2"),
    ("=adam", "expected KEY=V1,V2"),
    ("optimizer.name=adam,,sgd", "empty value"),
    ("optimizer.name=adam,adam", "listed twice"),
])
def test_parse_grid_rejects_malformed_items(item, message):
    with pytest.raises(UsageError, match=message):
        sweep.parse_grid([item])


def test_parse_grid_rejects_repeated_key():
    with pytest.raises(UsageError, match="given twice"):
        sweep.parse_grid(["optimizer.name=adam", "optimizer.name=sgd"])


def test_plan_is_the_cartesian_product_with_overrides_and_seeds():
    grid = sweep.parse_grid(["optimizer.name=sgd,adam", "model.hidden=[64],[32,32]"])
    points = sweep.plan(str(ROOT / "configs" / "mlp_adam.yaml"), ["training.seed=7"], grid, seeds=2)
    assert len(points) == 2 * 2 * 2
    assert [p.index for p in points] == list(range(8))
    assert points[0].overrides == ["optimizer.name=sgd", "model.hidden=[64]", "training.seed=7"]
    assert points[1].overrides == ["optimizer.name=sgd", "model.hidden=[64]", "training.seed=8"]
    assert points[3].label == "optimizer.name=sgd,model.hidden=[32,32]" and points[3].seed == 8
    assert {p.label for p in points} == {f"optimizer.name={o},model.hidden={h}"
                                         for o in ("sgd", "adam") for h in ("[64]", "[32,32]")}


def test_plan_rejects_key_in_grid_and_overrides_and_double_seed():
    with pytest.raises(UsageError, match="both a --grid key and a KEY=VALUE"):
        sweep.plan(SLP, ["optimizer.name=adam"], {"optimizer.name": ["sgd", "adam"]}, 1)
    with pytest.raises(UsageError, match="both set the seed"):
        sweep.plan(SLP, [], {"training.seed": ["1", "2"]}, 3)


def test_bad_grid_value_is_usage_error_and_creates_nothing(cli_run, tmp_path):
    runs = tmp_path / "runs"
    result = cli_run("sweep", SLP, "--grid", "optimizer.name=adam,adamm", "--runs-dir", runs)
    assert result.exit_code == 2
    assert result.stderr.startswith("hdr: error: grid point optimizer.name=adamm:")
    assert "allowed:" in result.stderr and "Traceback" not in result.output
    assert not runs.exists()
    result = cli_run("sweep", SLP, "--grid", "training.epochs=1,0", "--runs-dir", runs)
    assert result.exit_code == 2 and "training.epochs" in result.stderr and not runs.exists()


def test_dry_run_lists_points_and_runs_nothing(cli_run, tmp_path):
    result = cli_run("sweep", SLP, "--grid", "optimizer.learning_rate=0.1,0.01", "--seeds", "3", "--dry-run",
                     "--runs-dir", tmp_path / "r")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 7 and "6 runs (2 points x 3 seeds)" in lines[-1]
    assert lines[0].split() == ["0", "optimizer.learning_rate=0.1", "training.seed=1"]
    assert lines[5].split() == ["5", "optimizer.learning_rate=0.01", "training.seed=3"]
    assert not (tmp_path / "r").exists()


def test_thread_budget_split_between_jobs(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert executors.threads_per_job(3) == 2 and executors.threads_per_job(16) == 1
    env = executors.thread_env(executors.threads_per_job(4), {})
    assert all(env[v] == "2" for v in executors.THREAD_VARS)
    # the user's own setting is kept
    assert executors.thread_env(2, {"OMP_NUM_THREADS": "5"})["OMP_NUM_THREADS"] == "5"


def test_executor_options_are_checked_before_anything_is_made(cli_run, tmp_path):
    runs = tmp_path / "runs"
    r = cli_run("sweep", SLP, "--grid", "optimizer.learning_rate=0.1,0.01", "--address", "127.0.0.1:1",
                "--runs-dir", runs)
    assert r.exit_code == 2 and "--address is for --executor ray" in r.stderr and not runs.exists()
    r = cli_run("sweep", SLP, "--grid", "optimizer.learning_rate=0.1,0.01", "--executor", "ray", "--jobs", "2",
                "--runs-dir", runs)
    assert r.exit_code == 2 and "--jobs is for --executor local" in r.stderr and not runs.exists()
    r = cli_run("sweep", "--resume", tmp_path, "--runs-dir", runs)
    assert r.exit_code == 2 and "not a sweep folder" in r.stderr and not runs.exists()


@realdata
def test_parallel_sweep_one_folder_per_point_and_failures_reported(cli_run, tmp_path, real_data):
    runs = tmp_path / "runs"
    # lr=1e39 overflows float32: that point diverges at run time (after validation passed).
    result = cli_run("sweep", SLP, "--grid", "optimizer.learning_rate=0.01,1e39", "--seeds", "2", "--jobs", "2",
                     "--runs-dir", runs, *TINY)
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines()[-1].startswith("hdr: error: 2 of 4 runs failed:")
    assert "diverged" in result.stderr
    sweep_dir = Path(result.stdout.splitlines()[-1])
    assert sweep_dir.parent == runs / "sweeps"
    info = json.loads((sweep_dir / "sweep.json").read_text())
    assert info["status"] == "failed" and info["grid"] == {"optimizer.learning_rate": ["0.01", "1e39"]}
    assert info["seeds"] == [1, 2] and info["threads_per_job"] >= 1
    points = info["points"]
    assert [(p["label"], p["seed"]) for p in points] == [
        ("optimizer.learning_rate=0.01", 1), ("optimizer.learning_rate=0.01", 2),
        ("optimizer.learning_rate=1e39", 1), ("optimizer.learning_rate=1e39", 2)]
    assert [p["exit_code"] for p in points] == [0, 0, 1, 1]
    folders = [(sweep_dir / p["run"]).resolve() for p in points]
    assert len(set(folders)) == 4 and all(f.parent == runs.resolve() for f in folders)
    for p, folder in zip(points, folders):
        run = json.loads((folder / "run.json").read_text())
        assert run["sweep_id"] == sweep_dir.name and run["sweep_point"] == p["label"]
        assert run["seed"] == p["seed"]
        if p["exit_code"] == 0:
            assert run["status"] == "completed"
            for name in ("config.yaml", "history.csv", "metrics.json", "model.keras", "accuracy.png"):
                assert (folder / name).is_file(), name
            assert json.loads((folder / "metrics.json").read_text())["test_accuracy"] == p["test_accuracy"]
        else:
            assert run["status"] == "failed" and "diverged" in p["error"]
        assert (sweep_dir / "logs" / f"point-{p['index']:03d}.log").is_file()
    # The compare table of the sweep: grouped by setting, two seeds each.
    assert "seeds" in result.stdout and "2 completed" in result.stdout and "2 failed" in result.stdout
    assert (sweep_dir / "compare.md").is_file() and (sweep_dir / "compare.csv").is_file()
    assert (sweep_dir / "val_accuracy.png").read_bytes()[:4] == b"\x89PNG"


@realdata
def test_sigint_stops_sweep_and_marks_points(tmp_path, real_data):
    runs = tmp_path / "runs"
    env = dict(os.environ)  # real_data has pointed HDR_DATA_DIR at the real files
    proc = subprocess.Popen([sys.executable, "-m", "hdr.cli", "sweep", SLP, "--grid", "optimizer.learning_rate=0.01,0.02",
                             "--runs-dir", str(runs), "dataset.name=usps", "training.epochs=200",
                             "training.batch_size=512"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until the first point has committed an epoch
        done = [json.loads(p.read_text()).get("epochs_completed", 0) for p in runs.glob("*/run.json")]
        if done and max(done) >= 1:
            break
        time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("the first point never finished an epoch")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("hdr: sweep stopped by SIGINT: 0 of 2 runs completed"), err  # not an error: what was kept
    info = json.loads(next(runs.glob("sweeps/*/sweep.json")).read_text())
    assert info["status"] == "interrupted"
    assert [p["status"] for p in info["points"]] == ["interrupted", "not run"]
    run = json.loads((runs / "sweeps" / info["id"] / info["points"][0]["run"] / "run.json").read_text())
    assert run["status"] == "interrupted"  # resumable: hdr train --resume


def test_a_resume_keeps_the_executor_options_it_was_started_with_unless_given_again():
    from hdr.orchestration.executors import Options

    recorded = Options(executor="local", jobs=3).record()
    assert Options().resumed(recorded) == Options(executor="local", jobs=3)
    assert Options(jobs=1, given=frozenset({"jobs"})).resumed(recorded).jobs == 1  # given again: it wins
    ray = Options(executor="ray", address="head:6379", cpus_per_run=2.0).record()
    assert Options().resumed(ray) == Options(executor="ray", address="head:6379", cpus_per_run=2.0)
    # Another executor starts from its own defaults, not the recorded executor's settings.
    moved = Options(executor="local", given=frozenset({"executor"})).resumed(ray)
    assert moved == Options(executor="local", given=frozenset({"executor"}))
    moved.check()
    # A folder of an earlier hdr recorded the settings at its top level.
    assert Options().resumed({"executor": "local", "jobs": 2, "threads_per_job": 1}).jobs == 2
