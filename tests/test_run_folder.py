"""The run folder's own promises, tested directly on hdr.runs.rundir: permissions, ownership by one
process, process identity, unwritable places."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import stat
from pathlib import Path

import pytest

from hdr.runs import rundir
from hdr.core.errors import UsageError


def test_written_files_follow_the_umask(tmp_path):
    old = os.umask(0o002)
    try:
        rundir.atomic_write(tmp_path / "a.json", "{}")
        rundir.write_json(tmp_path / "b.json", {"x": 1})
        with rundir.replacing(tmp_path / "c.bin") as tmp:
            tmp.write_bytes(b"x")
    finally:
        os.umask(old)
    for name in ("a.json", "b.json", "c.bin"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o664, name  # not mkstemp's 0600
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_a_failed_replace_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with rundir.replacing(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk full, say")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def _hold(folder: str, ready, release) -> None:
    with rundir.owned(Path(folder)):
        ready.set()
        release.wait(30)


def test_a_run_folder_is_owned_by_one_process_and_a_killed_owner_frees_it(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    owner = ctx.Process(target=_hold, args=(str(tmp_path), ready, release))
    owner.start()
    try:
        assert ready.wait(60)
        with pytest.raises(UsageError, match="in use by another hdr process"):
            with rundir.owned(tmp_path):
                pass
    finally:
        owner.kill()  # SIGKILL: no clean-up runs, the kernel drops the lock
        owner.join()
    with rundir.owned(tmp_path):  # free again
        pass


def test_a_reused_pid_is_not_the_run_still_running():
    me = rundir.this_process()
    running = {"status": "running", **me}
    assert rundir.effective_status(running) == "running"
    # The same pid, alive, but started at another time: an unrelated process reusing a dead run's pid.
    assert rundir.effective_status({**running, "pid_started": me["pid_started"] + 1}) == "crashed"
    # A run.json written before start times were recorded still counts on the pid alone.
    assert rundir.effective_status({k: v for k, v in running.items() if k != "pid_started"}) == "running"


def test_a_runs_folder_that_cannot_take_a_run_is_one_usage_error(tmp_path):
    (tmp_path / "file").write_text("")
    for runs_dir in (tmp_path / "file", tmp_path / "file" / "runs", Path("/sys/kernel")):
        if runs_dir == Path("/sys/kernel") and not runs_dir.is_dir():
            continue
        with pytest.raises(UsageError, match="--runs-dir"):
            rundir.create(runs_dir, "cfg")


def test_run_json_records_the_process_identity(tmp_path):
    run = rundir.RunInfo.start(tmp_path, config_name="c", seed=1, command=["hdr"])
    info = json.loads((tmp_path / "run.json").read_text())
    assert info["pid"] == os.getpid() and info["pid_started"] == rundir.this_process()["pid_started"]
    assert run.info["status"] == "running"


def fill(folder: Path) -> None:
    with open(folder / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass


def test_a_run_can_say_it_failed_on_a_full_disk(small_disk):
    disk = small_disk("256k")
    run = rundir.RunInfo.start(disk, config_name="c", seed=1, command=["hdr"])
    fill(disk)
    with pytest.raises(OSError):
        rundir.atomic_write(disk / "other.json", "x" * 100_000)
    run.finish("failed", reason="disk full; free space and resume with hdr train --resume")
    info = json.loads((disk / "run.json").read_text())
    assert info["status"] == "failed" and info["reason"].startswith("disk full")
    assert sorted(p.name for p in disk.iterdir()) == ["filler", "run.json"]  # no temporary left


@pytest.mark.parametrize("damage", [
    ("history.csv", "abc,def\n1,2\n", "history.csv is damaged"),
    ("history.csv", "epoch,loss\n1,abc\n", "history.csv is damaged (line 2"),
    ("run.json", "[1, 2]", "run.json is damaged: it holds a list"),
    ("run.json", "{", "run.json is unreadable or corrupt"),
])
def test_a_damaged_run_folder_is_one_usage_error(cli_run, tmp_path, damage):
    name, content, words = damage
    folder = tmp_path / "run"
    folder.mkdir()
    rundir.atomic_write(folder / "config.yaml", "dataset: {name: mnist}\n")
    rundir.write_json(folder / "run.json", {"status": "interrupted", "epochs_completed": 1})
    (folder / name).write_text(content)
    with pytest.raises(UsageError, match=re.escape(words)):
        rundir.open_run(folder)
    for args in (("train", "--resume", folder), ("evaluate", folder)):
        r = cli_run(*args)
        assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1 and words in r.stderr, r.output
