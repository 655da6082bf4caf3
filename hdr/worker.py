"""A training process that is reused: it imports Keras once, then trains run after run.

`hdr sweep` starts `python -m hdr.worker` processes and hands each one point at a time, as one
JSON line on stdin; the worker answers with one JSON line on stdout when the run has ended. A
fresh `hdr train` process costs several seconds of imports and data loading before the first
batch, which dominates sweeps of short runs; here that is paid once per worker.

Between runs the worker clears Keras's session; every run seeds itself from its config and
sets its own dtype policy, so a run trained here has the history it would have in its own
process (tests/test_sweep_workers.py). A crash of the worker loses only the run it was training.

    request:  {"config": PATH, "overrides": [...], "runs_dir": DIR, "info": {...}, "log": PATH}
    answer:   {"status": "completed" | "failed" | "interrupted", "run": DIR | null,
               "exit_code": N, "error": TEXT | null}
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def _serve_one(request: dict) -> dict:
    from hdr import config as config_mod
    from hdr import train
    from hdr.errors import HdrError, Stopped

    try:
        cfg = config_mod.load(request["config"], request["overrides"])
        folder = train.train(cfg, Path(request["config"]).stem, Path(request["runs_dir"]), quiet=True,
                             extra_info=request.get("info") or {})
        return {"status": "completed", "run": str(folder), "exit_code": 0, "error": None}
    except Stopped as e:
        return {"status": "interrupted", "run": str(getattr(e, "folder", "")) or None, "exit_code": e.exit_code,
                "error": e.format_message()}
    except HdrError as e:
        return {"status": "failed", "run": None, "exit_code": e.exit_code, "error": e.format_message()}


def main() -> None:
    from hdr.backend import quiet_import

    keras = quiet_import()
    answers = os.fdopen(os.dup(1), "w", buffering=1)  # the protocol's channel; stdout itself goes to the log
    for line in sys.stdin:
        request = json.loads(line)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
        saved = os.dup(1), os.dup(2)
        os.dup2(log, 1)
        os.dup2(log, 2)
        try:
            answer = _serve_one(request)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in (*saved, log):
                os.close(fd)
        keras.backend.clear_session()
        answers.write(json.dumps(answer) + "\n")
        if answer["status"] == "interrupted":
            break  # a stop was asked for: this worker takes no more runs


if __name__ == "__main__":
    import signal

    from hdr.errors import EXIT_SIGNAL

    try:
        main()
    except KeyboardInterrupt:  # stopped while waiting for work
        sys.exit(EXIT_SIGNAL[signal.SIGINT])
