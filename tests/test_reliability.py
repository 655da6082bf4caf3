"""Signals, resume, divergence, failures, crashes and concurrent runs: nothing is ever lost.

These tests start real `hdr train` processes on tiny generated data and send them real signals.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from hdr.runs import rundir
from tests.conftest import CONFIGS, REPO


def env_for(data_dir: Path) -> dict:
    env = dict(os.environ)
    env.update(HDR_DATA_DIR=str(data_dir), HDR_NO_VERIFY="1", PYTHONUNBUFFERED="1",
               TF_CPP_MIN_LOG_LEVEL="3")
    return env


def start(tiny_data, runs, *args):
    return subprocess.Popen([sys.executable, "-m", "hdr.cli", "train", *map(str, args), "--runs-dir", str(runs), "-q"],
                            cwd=REPO, env=env_for(tiny_data), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def only_run(runs: Path) -> Path:
    folders = [p for p in runs.iterdir() if p.is_dir()]
    assert len(folders) == 1
    return folders[0]


def wait_for_epochs(runs: Path, n: int, proc, timeout=120) -> Path:
    t0 = time.time()
    while time.time() - t0 < timeout:
        assert proc.poll() is None, proc.stderr.read()
        if runs.exists():
            for folder in runs.iterdir():
                if len(rundir.read_history(folder / "history.csv")) >= n:
                    return folder
        time.sleep(0.05)
    raise AssertionError("training made no progress")


def assert_folder_valid(folder: Path) -> list[dict]:
    """Every file that exists parses, and the history has no gap or duplicate."""
    yaml.safe_load((folder / "config.yaml").read_text())
    json.loads((folder / "run.json").read_text())
    rows = rundir.read_history(folder / "history.csv")
    assert [r["epoch"] for r in rows] == list(range(1, len(rows) + 1))
    if (folder / "metrics.json").exists():
        json.loads((folder / "metrics.json").read_text())
    assert not list(folder.glob(".*.tmp")), "half-written temporary file left"
    return rows


LONG = [CONFIGS / "mlp_adam.yaml", "model.hidden=[64]", "model.dropout=0.3", "training.epochs=400",
        "training.batch_size=16"]
CURVES = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_cleanly_and_resume_finishes(tiny_data, tmp_path, sig, code):
    runs = tmp_path / "runs"
    proc = start(tiny_data, runs, *LONG)
    folder = wait_for_epochs(runs, 2, proc)
    t_signal = time.time()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert time.time() - t_signal < 10, "did not stop within seconds"
    assert proc.returncode == code, err
    assert "resume with: hdr train --resume" in err and "Traceback" not in err
    info = json.loads((folder / "run.json").read_text())
    assert info["status"] == "interrupted" and info["ended"]
    rows = assert_folder_valid(folder)
    done = len(rows)
    assert done >= 2 and info["epochs_completed"] == done
    assert (folder / "checkpoint" / f"epoch-{done:04d}.keras").is_file()

    # resume to the end, with fewer epochs planned so the test stays short
    cfg = yaml.safe_load((folder / "config.yaml").read_text())
    cfg["training"]["epochs"] = done + 3
    rundir.atomic_write(folder / "config.yaml", yaml.safe_dump(cfg))
    r = subprocess.run([sys.executable, "-m", "hdr.cli", "train", "--resume", str(folder), "-q"], cwd=REPO,
                       env=env_for(tiny_data), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == str(folder)
    rows = assert_folder_valid(folder)
    assert len(rows) == done + 3
    info = json.loads((folder / "run.json").read_text())
    assert info["status"] == "completed" and info["resumed"][0]["at_epoch"] == done
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["epochs"] == done + 3

    # the interrupted-and-resumed run is the run left alone: same shuffles, same dropout masks
    alone = subprocess.run([sys.executable, "-m", "hdr.cli", "train", *map(str, LONG[:-2]),
                            f"training.epochs={done + 3}", LONG[-1], "--runs-dir", str(tmp_path / "alone"), "-q"],
                           cwd=REPO, env=env_for(tiny_data), capture_output=True, text=True, timeout=120)
    assert alone.returncode == 0, alone.stderr
    alone_folder = Path(alone.stdout.strip().splitlines()[-1])
    assert [{k: r[k] for k in CURVES} for r in rows] == \
           [{k: r[k] for k in CURVES} for r in rundir.read_history(alone_folder / "history.csv")]
    assert json.loads((alone_folder / "metrics.json").read_text())["test_loss"] == metrics["test_loss"]

    # resuming a completed run says so and changes nothing
    before = (folder / "history.csv").read_bytes()
    r = subprocess.run([sys.executable, "-m", "hdr.cli", "train", "--resume", str(folder)], cwd=REPO,
                       env=env_for(tiny_data), capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "already completed" in r.stderr
    assert (folder / "history.csv").read_bytes() == before


def test_second_ctrl_c_exits_at_once(tiny_data, tmp_path):
    runs = tmp_path / "runs"
    proc = start(tiny_data, runs, *LONG)
    folder = wait_for_epochs(runs, 1, proc)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert json.loads((folder / "run.json").read_text())["status"] == "interrupted"
    assert_folder_valid(folder)


def test_kill_9_leaves_valid_files_shows_crashed_and_resumes(tiny_data, tmp_path, cli_run):
    runs = tmp_path / "runs"
    proc = start(tiny_data, runs, *LONG)
    folder = wait_for_epochs(runs, 3, proc)
    proc.kill()
    proc.communicate(timeout=30)
    rows = assert_folder_valid(folder)
    info = json.loads((folder / "run.json").read_text())
    assert info["status"] == "running"  # nobody could say otherwise
    assert rundir.effective_status(info) == "crashed"
    listing = cli_run("runs", runs)
    assert listing.exit_code == 0 and "crashed" in listing.stdout and folder.name in listing.stdout

    cfg = yaml.safe_load((folder / "config.yaml").read_text())
    cfg["training"]["epochs"] = len(rows) + 1
    rundir.atomic_write(folder / "config.yaml", yaml.safe_dump(cfg))
    r = subprocess.run([sys.executable, "-m", "hdr.cli", "train", "--resume", str(folder), "-q"], cwd=REPO,
                       env=env_for(tiny_data), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert len(assert_folder_valid(folder)) == len(rows) + 1


def test_resume_keeps_optimizer_state_and_does_not_rerun_epochs(cli_run, tiny_data, tmp_path):
    from hdr.engine import train as train_mod
    from hdr.core.backend import quiet_import

    keras = quiet_import()
    # Train 2 of 4 epochs, then stop as a Ctrl-C would (in-process: the handler's flag).
    real_commit = train_mod.Trainer.commit_epoch

    def stop_after_two(self, epoch, logs, model):
        real_commit(self, epoch, logs, model)
        if epoch == 2:
            self.signal_received = signal.SIGINT

    train_mod.Trainer.commit_epoch = stop_after_two
    try:
        r = cli_run("train", CONFIGS / "mlp_adam.yaml", "model.hidden=[16]", "training.epochs=4",
                    "training.batch_size=32", "--runs-dir", tmp_path / "runs", "-q")
    finally:
        train_mod.Trainer.commit_epoch = real_commit
    assert r.exit_code == 130, r.stderr
    folder = next((tmp_path / "runs").iterdir())
    assert rundir.read_json(folder / "run.json")["status"] == "interrupted"
    steps = 8  # ceil(240 / 32)
    ckpt = keras.models.load_model(folder / "checkpoint" / "epoch-0002.keras")
    assert int(ckpt.optimizer.iterations) == 2 * steps
    moments = [v for v in ckpt.optimizer.variables if "momentum" in v.path or "velocity" in v.path]
    assert moments and any(float(abs(keras.ops.convert_to_numpy(v)).sum()) > 0 for v in moments)

    first_two = rundir.read_history(folder / "history.csv")
    seen_epochs = []

    def spy(self, epoch, logs, model):
        seen_epochs.append(epoch)
        if epoch == 3:
            # the optimizer continued from its saved state: iterations did not restart at 0
            assert int(model.optimizer.iterations) == 3 * steps
        return real_commit(self, epoch, logs, model)

    train_mod.Trainer.commit_epoch = spy
    try:
        r = cli_run("train", "--resume", folder, "-q")
    finally:
        train_mod.Trainer.commit_epoch = real_commit
    assert r.exit_code == 0, r.stderr
    assert seen_epochs == [3, 4]  # only the missing epochs ran
    rows = rundir.read_history(folder / "history.csv")
    assert rows[:2] == first_two and [x["epoch"] for x in rows] == [1, 2, 3, 4]
    final = keras.models.load_model(folder / "model.keras")
    assert int(final.optimizer.iterations) == 4 * steps


def test_a_stop_mid_epoch_skips_that_epochs_validation(cli_run, tiny_data, tmp_path):
    # The stopped epoch is never committed, so its validation pass would only delay the exit.
    from hdr.engine import train as train_mod
    from hdr.core.backend import quiet_import

    keras = quiet_import()
    real_batch_end, real_evaluate = train_mod.RunCallback.on_train_batch_end, keras.Model.evaluate
    evaluations = []

    def stop_in_epoch_two(self, batch, logs=None):
        if self.trainer.current_epoch() == 2:
            self.trainer.signal_received = signal.SIGINT  # what Ctrl-C's handler sets
        return real_batch_end(self, batch, logs)

    def counting(self, *args, **kwargs):
        logs = real_evaluate(self, *args, **kwargs)
        evaluations.append(logs)  # a pass that ran to its end
        return logs

    train_mod.RunCallback.on_train_batch_end, keras.Model.evaluate = stop_in_epoch_two, counting
    try:
        r = cli_run("train", CONFIGS / "mlp_adam.yaml", "model.hidden=[16]", "training.epochs=3",
                    "--runs-dir", tmp_path / "runs", "-q")
    finally:
        train_mod.RunCallback.on_train_batch_end, keras.Model.evaluate = real_batch_end, real_evaluate
    assert r.exit_code == 130, r.stderr
    folder = next((tmp_path / "runs").iterdir())
    assert [x["epoch"] for x in rundir.read_history(folder / "history.csv")] == [1]
    assert len(evaluations) == 1  # epoch 1's validation only: none for epoch 2, no test pass


def test_resume_errors(cli_run, tiny_data, tmp_path):
    r = cli_run("train", "--resume", tmp_path / "nope")
    assert r.exit_code == 2 and "run folder not found" in r.stderr
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / "config.yaml").write_text("dataset: {name: mnist}\n")
    r = cli_run("train", "--resume", tmp_path / "partial")
    assert r.exit_code == 2 and "missing run.json" in r.stderr
    # a run interrupted before its first epoch has no checkpoint
    r = cli_run("train", CONFIGS / "slp_sgd.yaml", "training.epochs=1", "--runs-dir", tmp_path / "runs", "-q")
    folder = Path(r.stdout.strip().splitlines()[-1])
    info = rundir.read_json(folder / "run.json")
    info["status"] = "interrupted"
    rundir.write_json(folder / "run.json", info)
    assert not (folder / "checkpoint").exists()  # a completed run keeps no checkpoint
    r = cli_run("train", "--resume", folder)
    assert r.exit_code == 2 and "no checkpoint" in r.stderr
    r = cli_run("train", CONFIGS / "slp_sgd.yaml", "--resume", folder)
    assert r.exit_code == 2 and "--resume takes only the run folder" in r.stderr


def test_divergence_fails_with_epoch_and_advice(cli_run, tiny_data, tmp_path):
    r = cli_run("train", CONFIGS / "mlp_sgd.yaml", "optimizer.learning_rate=1e30", "training.epochs=3",
                "--runs-dir", tmp_path / "runs", "-q")
    assert r.exit_code == 1
    assert "diverged" in r.stderr and "epoch 1" in r.stderr and "smaller optimizer.learning_rate" in r.stderr
    folder = only_run(tmp_path / "runs")
    info = json.loads((folder / "run.json").read_text())
    assert info["status"] == "failed" and info["diverged_epoch"] == 1 and "diverged" in info["reason"]
    assert not (folder / "metrics.json").exists()


def test_unexpected_failure_is_recorded(cli_run, tiny_data, tmp_path, monkeypatch):
    from hdr.engine import train as train_mod

    def boom(self, model):
        raise RuntimeError("simulated backend failure")

    monkeypatch.setattr(train_mod.Trainer, "fit", boom)
    r = cli_run("train", CONFIGS / "slp_sgd.yaml", "training.epochs=1", "--runs-dir", tmp_path / "runs")
    assert r.exit_code == 1 and "simulated backend failure" in r.stderr and "Traceback" not in r.stderr
    info = json.loads((only_run(tmp_path / "runs") / "run.json").read_text())
    assert info["status"] == "failed" and "simulated backend failure" in info["reason"]


def test_debug_shows_traceback(cli_run, tmp_path):
    plain = cli_run("train", tmp_path / "nope.yaml")
    assert plain.exit_code == 2 and "Traceback" not in plain.stderr
    r = cli_run("--debug", "train", tmp_path / "nope.yaml")
    assert r.exit_code == 2
    assert "Traceback (most recent call last)" in r.stderr and "config.py" in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("hdr: error: config file not found")


# One process of test_concurrent_creates_get_distinct_new_folders: THREADS threads wait for
# the go file, then each creates a run folder and claims it with an exclusive file. Every
# creator's first name ends in -0000, which is taken; later names come from only 64, so names
# collide often and create() must skip the taken ones.
CREATOR = r"""
import os, random, sys, threading, time
from pathlib import Path
from hdr.runs import rundir

runs, go, ready, threads = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
local, lock, rng = threading.local(), threading.Lock(), random.Random(os.getpid())

def token_hex(nbytes):
    if not getattr(local, "tried", False):
        local.tried = True
        return "0000"
    with lock:
        return f"{rng.randrange(64):04x}"

rundir.secrets.token_hex = token_hex
barrier, made, errors = threading.Barrier(threads), [], []

def create(i):
    barrier.wait()
    try:
        folder = rundir.create(runs, "slp_sgd")
        with open(folder / "owner", "x") as f:  # fails if another creator was given this folder
            f.write(f"{os.getpid()}-{i}")
        made.append(f"{folder}\t{os.getpid()}-{i}")
    except Exception as e:
        errors.append(repr(e))

ready.touch()
while not go.exists():
    time.sleep(0.001)
workers = [threading.Thread(target=create, args=(i,)) for i in range(threads)]
for w in workers:
    w.start()
for w in workers:
    w.join()
print("\n".join(made))
sys.exit("; ".join(errors) or None)
"""


def test_concurrent_creates_get_distinct_new_folders(tmp_path):
    """rundir.create from 4 processes x 4 threads at the same moment: 16 distinct new folders,
    none handed out twice, and the folders that were there before untouched."""
    from datetime import datetime, timedelta

    runs, go, procs_n, threads = tmp_path / "runs", tmp_path / "go", 4, 4
    procs = [subprocess.Popen([sys.executable, "-c", CREATOR, str(runs), str(go), str(tmp_path / f"ready-{p}"),
                               str(threads)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for p in range(procs_n)]
    deadline = time.time() + 60
    while not all((tmp_path / f"ready-{p}").exists() for p in range(procs_n)):
        if time.time() > deadline or any(p.poll() is not None for p in procs):
            for p in procs:
                p.kill()
            pytest.fail(f"creators did not start: {[p.communicate()[1][-1000:] for p in procs]}")
        time.sleep(0.01)
    # Existing runs under the names every creator tries first, for the seconds to come.
    runs.mkdir(exist_ok=True)
    now = datetime.now()
    existing = [runs / f"{(now + timedelta(seconds=s)):%Y%m%d-%H%M%S}-slp_sgd-0000" for s in range(-1, 10)]
    for folder in existing:
        folder.mkdir()
        (folder / "run.json").write_text("earlier run")
    go.touch()
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * procs_n, [o[1] for o in outs]

    made = dict(line.split("\t") for out, _ in outs for line in out.splitlines())
    assert len(made) == procs_n * threads  # distinct paths, one per creator
    assert len(set(made.values())) == procs_n * threads
    assert sorted(runs.iterdir()) == sorted([Path(f) for f in made] + existing)
    for folder, owner in made.items():
        assert re.fullmatch(r"\d{8}-\d{6}-slp_sgd-[0-9a-f]{4}", Path(folder).name), folder
        assert [p.name for p in Path(folder).iterdir()] == ["owner"]  # new and empty when handed out
        assert (Path(folder) / "owner").read_text() == owner
    for folder in existing:
        assert [p.name for p in folder.iterdir()] == ["run.json"]
        assert (folder / "run.json").read_text() == "earlier run"


def test_atomic_write_never_leaves_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    rundir.write_json(target, {"a": 1})

    def fail(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        rundir.write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 1}
    assert list(tmp_path.iterdir()) == [target]


def test_each_epoch_gets_its_own_shuffle_drawn_from_seed_and_epoch():
    """What exact resume rests on: an epoch's order depends on (seed, epoch) alone, every example
    comes once per epoch, and the order changes from epoch to epoch (plain Keras on TensorFlow
    with a global seed repeats the first epoch's order). That fit follows this order, across a
    resume, is tests/test_perf_paths.py's feed test. Dropout masks move on with the epoch."""
    from hdr.core.backend import quiet_import
    from hdr.engine.train import epoch_order, seed_epoch

    keras = quiet_import()
    orders = [epoch_order(1, e, 503).tolist() for e in range(3)]
    assert all(sorted(o) == list(range(503)) for o in orders)       # each example once an epoch
    assert len({tuple(o) for o in orders}) == 3                     # a new order every epoch
    assert epoch_order(1, 2, 503).tolist() == orders[2]             # asked again (a resume): the same order
    assert epoch_order(2, 2, 503).tolist() != orders[2]             # another seed: another order

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dropout(0.5), keras.layers.Dense(2)])
    state = model.layers[0].seed_generator.state
    seed_epoch(model, 1, 1)
    before = keras.ops.convert_to_numpy(state.value).tolist()
    seed_epoch(model, 1, 2)
    assert keras.ops.convert_to_numpy(state.value).tolist() != before
    seed_epoch(model, 1, 1)
    assert keras.ops.convert_to_numpy(state.value).tolist() == before
