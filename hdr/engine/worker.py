"""A training process that is reused: it imports Keras once, then trains run after run.

The local executor (hdr/orchestration/executors.py) starts `python -m hdr.engine.worker` processes and hands each one
job at a time, as one JSON line on stdin; the worker answers with one JSON line on stdout when
the run has ended. After every committed epoch it also writes an epoch line and reads one reply,
so that the command that started it can prune the run (hdr tune) and show progress. A fresh
`hdr train` process costs several seconds of imports and data loading before the first batch,
which dominates sweeps of short runs; here that is paid once per worker.

Between runs the worker clears Keras's session; every run seeds itself from its config and
sets its own dtype policy, so a run trained here has the history it would have in its own
process (tests/test_sweep_workers.py). A crash of the worker loses only the run it was training.

    job:     {"action": "train", "config": YAML TEXT (resolved), "config_name": NAME,
              "runs_dir": DIR, "info": {...run.json fields; a cv fold's name its held-out rows},
              "log": PATH}
             {"action": "resume", "run": DIR, "log": PATH}
    epoch:   {"epoch": N, "row": {...history row...}}   reply: {"prune": REASON | null}
    answer:  {"status": rundir.COMPLETED | rundir.FAILED | rundir.INTERRUPTED | rundir.PRUNED, "run": DIR | null,
              "exit_code": N, "error": TEXT | null}

run_job() is the one place that turns a job into a run; the Ray executor calls it too.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

from hdr.runs import rundir


def config_from_text(text: str, where: str = "config"):
    from hdr.engine import config as config_mod

    return config_mod.validate(config_mod.parse_yaml(text, where), source=where)


def run_job(job: dict, runs_dir: Path, hooks=()) -> dict:
    """Train or resume one run as the job says; the answer (see the module's docstring). Every
    hdr error becomes an answer; anything else is a bug and propagates."""
    from hdr.engine import train
    from hdr.core.errors import HdrError, Stopped

    folder = None
    try:
        if job["action"] == "resume":
            folder = train.resume(Path(job["run"]), quiet=True, hooks=hooks)
        else:
            cfg = config_from_text(job["config"])
            folder = train.train(cfg, job["config_name"], Path(runs_dir), quiet=True,
                                 extra_info=job.get("info") or {}, hooks=hooks)
        return {"status": rundir.COMPLETED, "run": str(folder), "exit_code": 0, "error": None}
    except train.Pruned as e:
        return {"status": rundir.PRUNED, "run": str(e.folder), "exit_code": 0, "error": None}
    except Stopped as e:
        return {"status": rundir.INTERRUPTED, "run": str(getattr(e, "folder", "")) or None, "exit_code": e.exit_code,
                "error": e.format_message()}
    except HdrError as e:
        return {"status": rundir.FAILED, "run": None, "exit_code": e.exit_code, "error": e.format_message()}


def watch_parent(parent: int) -> None:
    """A worker whose command died (kill -9, an OOM kill, a closed terminal) stops its run as
    `interrupted` at the next step, exactly as if the command had passed on a SIGTERM: the run
    is resumable and the resume of the command finishes it. Polled: Linux's parent-death signal
    follows the thread that started the worker, and the executor starts workers from threads."""

    def watch():
        while os.getppid() == parent:
            time.sleep(PARENT_POLL)
        parent_lost()

    threading.Thread(target=watch, daemon=True, name="hdr-parent-watch").start()


def parent_lost() -> None:
    """Stop as a SIGTERM would (a run in training stops at its next step; a worker waiting for
    work ends), once."""
    global _lost
    if not _lost:
        _lost = True
        os.kill(os.getpid(), signal.SIGTERM)


_lost = False
PARENT_POLL = 0.2  # seconds


def main() -> None:
    from hdr.core.backend import quiet_import

    parent = os.getppid()
    watch_parent(parent)
    keras = quiet_import()
    channel = os.fdopen(os.dup(1), "w", buffering=1)  # the protocol's channel; stdout itself goes to the log

    def send(message: dict) -> bool:
        try:
            channel.write(json.dumps(message) + "\n")
            return True
        except (BrokenPipeError, OSError):  # the command is gone
            parent_lost()
            return False

    def report(epoch: int, row: dict):
        reply = sys.stdin.readline() if send({"epoch": epoch, "row": row}) else ""
        if not reply:  # no reply: the command is gone
            parent_lost()
            return None
        return json.loads(reply).get("prune")

    for line in sys.stdin:
        job = json.loads(line)
        log = os.open(job.get("log") or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
        saved = os.dup(1), os.dup(2)
        os.dup2(log, 1)
        os.dup2(log, 2)
        try:
            answer = run_job(job, Path(job.get("runs_dir") or "."), hooks=[report])
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in (*saved, log):
                os.close(fd)
        keras.backend.clear_session()
        if _lost and answer["status"] == rundir.INTERRUPTED and answer.get("run"):
            run = rundir.RunInfo(Path(answer["run"]), rundir.read_info(answer["run"]))
            run.update(reason=f"{run.info.get('reason')}: the command that ran it (pid {parent}) ended")
        if not send(answer) or answer["status"] == rundir.INTERRUPTED:
            break  # a stop was asked for, or nobody is listening: this worker takes no more runs


if __name__ == "__main__":
    from hdr.core.errors import EXIT_SIGNAL

    try:
        main()
    except KeyboardInterrupt:  # stopped while waiting for work
        sys.exit(EXIT_SIGNAL[signal.SIGINT])
