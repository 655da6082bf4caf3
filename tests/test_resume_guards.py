"""What `hdr train --resume` must refuse or survive: a second resume of the same run, an edited
config, a full disk; and where later commands on a run find its data. Real processes and signals."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from hdr.runs import rundir
from tests.conftest import CONFIGS, REAL_DATA, REPO, realdata, use_data_dir, write_tiny_data
from tests.test_reliability import LONG, env_for, start, wait_for_epochs


def interrupted_run(tiny_data, runs: Path, *args) -> Path:
    proc = start(tiny_data, runs, *args)
    folder = wait_for_epochs(runs, 2, proc)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert rundir.read_json(folder / "run.json")["status"] == "interrupted"
    return folder


def resume(tiny_data, folder: Path, **kw):
    return subprocess.Popen([sys.executable, "-m", "hdr.cli", "train", "--resume", str(folder), "-q"], cwd=REPO,
                            env=env_for(tiny_data), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_two_resumes_of_one_run_the_second_is_refused(tiny_data, tmp_path):
    folder = interrupted_run(tiny_data, tmp_path / "runs", *LONG)
    done = len(rundir.read_history(folder / "history.csv"))
    first = resume(tiny_data, folder)
    try:
        wait_for_epochs(tmp_path / "runs", done + 1, first)  # the first resume is training
        second = resume(tiny_data, folder)
        out, err = second.communicate(timeout=120)
        assert second.returncode == 2 and err.strip().splitlines() == [
            f"hdr: error: {folder} is in use by another hdr process; wait for it to end (hdr runs shows its status)"]
    finally:
        first.kill()  # SIGKILL: the lock must not outlive its process
        first.communicate()
    assert rundir.effective_status(rundir.read_json(folder / "run.json")) == "crashed"
    cfg = yaml.safe_load((folder / "config.yaml").read_text())
    third = resume(tiny_data, folder)
    time.sleep(0.5)
    third.send_signal(signal.SIGINT)  # it got the folder (and is stopped again, to keep the test short)
    _, err = third.communicate(timeout=120)
    assert "in use" not in err and third.returncode in (0, 130), err
    assert cfg == yaml.safe_load((folder / "config.yaml").read_text())


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory) -> tuple[Path, Path]:
    """(data dir, an interrupted run): made once, copied by each test that edits it."""
    data = write_tiny_data(tmp_path_factory.mktemp("data"))
    with pytest.MonkeyPatch.context() as mp:
        use_data_dir(mp, data)
        return data, interrupted_run(data, tmp_path_factory.mktemp("runs"), *LONG)


@pytest.mark.parametrize("edit,allowed", [
    ({"model": {"hidden": [32]}}, False),
    ({"optimizer": {"learning_rate": 0.01}}, False),
    ({"dataset": {"name": "usps"}}, False),
    ({"training": {"epochs": 4}}, True),  # extending or shortening a run is allowed
])
def test_an_edited_config_is_refused_on_resume(stopped_run, tmp_path, edit, allowed):
    tiny_data, original = stopped_run
    folder = tmp_path / "runs" / original.name
    shutil.copytree(original, folder)
    cfg = yaml.safe_load((folder / "config.yaml").read_text())
    for section, values in edit.items():
        cfg[section].update(values)
    rundir.atomic_write(folder / "config.yaml", yaml.safe_dump(cfg))
    out, err = resume(tiny_data, folder).communicate(timeout=300)
    if allowed:
        assert rundir.read_json(folder / "run.json")["status"] == "completed", err
    else:
        assert err.strip().splitlines() == [
            f"hdr: error: {folder}/config.yaml was changed after the run started, and a run goes on only with the "
            "config it began with (training.epochs aside); to train the changed config, start a new run: "
            f"hdr train {folder}/config.yaml"]
        assert rundir.read_json(folder / "run.json")["status"] == "interrupted"  # untouched


def test_epochs_of_a_cosine_run_cannot_change(tiny_data, tmp_path):
    """A cosine schedule spans the planned run: a new length would bend the curve mid-run."""
    folder = interrupted_run(tiny_data, tmp_path / "runs", *LONG, "optimizer.schedule=cosine")
    cfg = yaml.safe_load((folder / "config.yaml").read_text())
    cfg["training"]["epochs"] = 5
    rundir.atomic_write(folder / "config.yaml", yaml.safe_dump(cfg))
    _, err = resume(tiny_data, folder).communicate(timeout=120)
    assert "was changed after the run started" in err


@realdata
def test_a_full_disk_fails_the_run_in_one_line_and_resume_works_once_space_is_freed(real_data, small_disk):
    """Write-up 001's USPS CNN into a 2 MB disk: its checkpoints do not fit for long."""
    disk = small_disk("2m")
    env = {**os.environ, "HDR_DATA_DIR": str(real_data)}
    cmd = [sys.executable, "-m", "hdr", "train", str(CONFIGS / "usps_cnn.yaml"), "training.epochs=6",
           "--runs-dir", str(disk), "-q"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO, timeout=600)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 1 and len(lines) == 1 and "disk full" in lines[0] and "MB" in lines[0], p.stderr[-2000:]
    (folder,) = disk.iterdir()
    info = json.loads((folder / "run.json").read_text())
    assert info["status"] == "failed" and info["reason"].startswith("disk full")
    assert not [p for p in folder.rglob(".*") if ".tmp" in p.name], "temporary files left on the full disk"
    subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
    r = subprocess.run([sys.executable, "-m", "hdr", "train", "--resume", str(folder), "-q"], env=env,
                       capture_output=True, text=True, cwd=REPO, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads((folder / "run.json").read_text())["status"] == "completed"
    assert len(rundir.read_history(folder / "history.csv")) == 6


@realdata
def test_later_commands_find_the_data_the_run_was_trained_on(cli_run, tmp_path, monkeypatch):
    """HDR_DATA_DIR given for `hdr train` only: evaluate and resume read run.json's data_dir
    instead of trying to download into an empty cache (and leaving an empty folder there)."""
    monkeypatch.setenv("HDR_DATA_DIR", str(REAL_DATA))
    monkeypatch.setenv("HDR_CACHE_DIR", str(tmp_path / "arrays"))
    r = cli_run("train", CONFIGS / "slp_sgd.yaml", "dataset.name=usps", "training.epochs=1",
                "--runs-dir", tmp_path / "runs", "-q")
    assert r.exit_code == 0, r.output
    folder = Path(r.stdout.strip().splitlines()[-1])
    assert rundir.read_json(folder / "run.json")["data_dir"] == str(REAL_DATA.resolve())
    monkeypatch.delenv("HDR_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))  # where a download would go
    e = cli_run("evaluate", folder, "--split", "val", "-q")
    assert e.exit_code == 0, e.output
    assert not (tmp_path / "empty-cache").exists()


def completed_run(cli_run, runs: Path, *overrides) -> Path:
    r = cli_run("train", CONFIGS / "mlp_adam.yaml", "model.hidden=[32]", "model.dropout=0.3", "training.batch_size=32",
                *overrides, "--runs-dir", runs, "-q")
    assert r.exit_code == 0, r.stderr
    return Path(r.stdout.strip().splitlines()[-1])


def set_epochs(folder: Path, epochs: int) -> None:
    cfg = yaml.safe_load((folder / "config.yaml").read_text())
    cfg["training"]["epochs"] = epochs
    rundir.atomic_write(folder / "config.yaml", yaml.safe_dump(cfg))


def test_a_completed_run_extended_equals_the_longer_run_from_the_start(cli_run, tiny_data, tmp_path):
    """README: training.epochs may be raised to extend a completed run. model.keras holds the last
    epoch's weights and optimizer state, so 2 epochs then 3 more are exactly 5 from the start."""
    folder = completed_run(cli_run, tmp_path / "a", "training.epochs=2")
    set_epochs(folder, 5)
    r = cli_run("train", "--resume", folder, "-q")
    assert r.exit_code == 0, r.stderr
    whole = completed_run(cli_run, tmp_path / "b", "training.epochs=5")
    drop = lambda rows: [{k: v for k, v in row.items() if k != "seconds"} for row in rows]  # noqa: E731
    assert drop(rundir.read_history(folder / "history.csv")) == drop(rundir.read_history(whole / "history.csv"))
    info = rundir.read_json(folder / "run.json")
    assert (info["status"], info["epochs_planned"], info["epochs_completed"]) == ("completed", 5, 5)  # not "5/2"
    m, w = rundir.read_metrics(folder), rundir.read_metrics(whole)
    assert (m["epochs"], m["test_accuracy"]) == (5, w["test_accuracy"])
    assert not (folder / "checkpoint").exists()


@pytest.mark.parametrize("overrides,why", [
    ([], "nothing to resume; to extend it, raise training.epochs in {folder}/config.yaml above 2"),
    (["optimizer.schedule=cosine"], "cannot be extended exactly: its cosine schedule spans the 2 epochs"),
    (["optimizer.ema_momentum=0.9"], "cannot be extended exactly: its model.keras holds the averaged weights"),
])
def test_a_completed_run_that_cannot_be_extended_exactly_is_refused_in_one_line(cli_run, tiny_data, tmp_path,
                                                                                 overrides, why):
    folder = completed_run(cli_run, tmp_path, "training.epochs=2", *overrides)
    if overrides:
        set_epochs(folder, 4)
    before = (folder / "history.csv").read_text()
    r = cli_run("train", "--resume", folder, "-q")
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert why.format(folder=folder) in r.stderr
    assert (folder / "history.csv").read_text() == before
    assert rundir.read_json(folder / "run.json")["status"] == "completed"
