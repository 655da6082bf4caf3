"""The one rule by which `hdr sweep`, `hdr tune` and `hdr cv` survive whatever stops them.

A command that trains many runs can end in any way: Ctrl-C, SIGTERM, a closed terminal (SIGHUP),
kill -9 or the out-of-memory killer, a reboot. Whatever the way, each of its runs is left in one
of three states, and `--resume` treats them the same in all three commands:

- done: completed, pruned, or failed on its own; a result, kept as it is;
- resume: stopped after a completed epoch (interrupted, or its process died with the command);
  it goes on from that epoch, in place, with the history an undisturbed run has;
- train: never started, or stopped before its first epoch (such a folder holds nothing; it goes).

How the runs get there: a command passes a stop signal on to its workers (hdr/orchestration/
executors.py), and a worker whose command died stops its run as a SIGTERM would
(hdr/engine/worker.py). A run whose process was killed outright still says `running`; the resume
tells it from a live one by its lock (rundir.in_use), never by a pid that may be reused or live
on another host.

One command at a time per folder: `hold` takes the folder's lock for the whole command and hands
it to the local workers too, so that a resume started while the workers of a killed command are
still stopping waits for them, and a second live command of the same folder is refused in one
line that names the process holding it.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import click

from hdr.core.errors import UsageError
from hdr.runs import rundir

ORPHANS_WAIT = 60.0  # seconds a resume waits for the workers of a killed command to stop their runs


@contextmanager
def hold(folder: Path, what: str, wait: float = ORPHANS_WAIT):
    """The lock of a sweep, tune or cv folder for as long as the command runs; yields its file
    descriptor (local workers inherit it: see the module's docstring)."""
    path = Path(folder) / rundir.LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, rundir.plain_mode())
    try:
        deadline = time.monotonic() + wait
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _holder(path)
                pid = holder.get("pid")
                if pid is None:  # taken a moment ago, not yet signed
                    raise UsageError(f"{folder} is in use by another hdr process; wait for it to end, then resume") \
                        from None
                if rundir.pid_alive(pid, holder.get("host"), holder.get("pid_started")):
                    since = f", since {holder['started']}" if holder.get("started") else ""
                    raise UsageError(f"{folder} is in use by process {pid} ({' '.join(holder.get('command') or [])}"
                                     f"{since}); wait for it to end or stop it (kill -INT {pid}), then resume") \
                        from None
                if time.monotonic() > deadline:
                    raise UsageError(f"{folder}: the training processes of the {what} that process {pid} ran are "
                                     "still stopping their runs; try again in a minute") from None
                if not told:
                    click.echo(f"hdr: the {what} that process {pid} ran has ended; waiting for its training "
                               "processes to stop their runs", err=True)
                    told = True
                time.sleep(0.2)
        rundir.drop_partial_writes(folder)  # of a command killed mid-write (sweep.json and the like)
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps({**rundir.this_process(), "command": rundir.command_line(),
                                   "started": rundir.now_iso()}) + "\n").encode(), 0)
        yield fd
    finally:
        os.close(fd)


def _holder(path: Path) -> dict:
    try:
        holder = json.loads(path.read_text() or "{}")
        return holder if isinstance(holder, dict) else {}
    except (OSError, ValueError):
        return {}


def state(run: Path | None) -> tuple[str, Path | None]:
    """("done", run), ("resume", run) or ("train", None): what --resume does with a run (see the
    module's docstring). Called with the command's folder held, so no process of the command
    that stopped is still training."""
    if run is None or not (run / rundir.RUN).is_file():
        return "train", None
    info = rundir.read_json(run / rundir.RUN)
    status = info.get("status")
    if status == rundir.RUNNING:
        if rundir.in_use(run):
            raise UsageError(f"{run} is being trained by another hdr process (pid {info.get('pid')} on "
                             f"{info.get('host')}); wait for it or stop it, then resume")
        # Its process died with the command (kill -9, a reboot, a lost node): say so in its run.json.
        status = rundir.INTERRUPTED
        rundir.RunInfo(run, info).finish(status, reason="its training process ended without stopping the run "
                                                        "(the command that ran it was killed)")
    elif status == rundir.FAILED and str(info.get("reason", "")).startswith("BrokenPipeError"):
        status = rundir.INTERRUPTED  # an earlier hdr's worker whose command died failed its run on the broken pipe
    if status in rundir.RESULTS:
        return "done", run
    history = rundir.read_history(run / rundir.HISTORY)
    if history and rundir.checkpoint(run, len(history)).is_file():
        return "resume", run
    if history:
        raise UsageError(f"{run} has {len(history)} completed epochs but no checkpoint of the last one to go on "
                         "from; move the folder elsewhere to train its point again, then resume")
    shutil.rmtree(run, ignore_errors=True)  # stopped before its first epoch: nothing in it to keep
    return "train", None


def settled(status: str, run: Path | None) -> str:
    """The status of a run that just came back from an executor: its own run.json's when that
    says it ended as a result (a run can complete a moment before its process is stopped or
    dies), else the one the executor reported."""
    if run is None or status in rundir.RESULTS:
        return status
    try:
        own = rundir.read_info(run).get("status")
    except (OSError, ValueError):
        return status
    return own if own in rundir.RESULTS else status


def _carrying(runs_dir: Path, fields: dict):
    """(folder, run.json) of the runs in runs_dir whose run.json carries these fields."""
    if not runs_dir.is_dir():
        return
    for child in sorted(runs_dir.iterdir()):
        try:
            info = rundir.read_json(child / rundir.RUN)
        except (OSError, ValueError):
            continue
        if all(str(info.get(k)) == str(v) for k, v in fields.items()):
            yield child, info


def find_run(runs_dir: Path, fields: dict) -> Path | None:
    """The run folder in runs_dir whose run.json carries these fields (a run whose command was
    stopped before it could record the folder's name)."""
    return next((child for child, _ in _carrying(runs_dir, fields)), None)


def index(runs_dir: Path, fields: dict, key: str) -> dict[str, Path]:
    """find_run for many runs in one pass: {str(run.json[key]): folder} of the runs that carry
    these fields."""
    found: dict[str, Path] = {}
    for child, info in _carrying(runs_dir, fields):
        if key in info:
            found.setdefault(str(info[key]), child)
    return found
