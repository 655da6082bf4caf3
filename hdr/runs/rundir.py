"""The run folder: naming, atomic file writes, and run.json bookkeeping.

Every file is written to a temporary name and renamed into place, so a reader (or a crash)
never sees half a file. A run folder is created with an exclusive mkdir, so concurrent runs
never share one and an existing run is never overwritten.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import platform
import re
import secrets
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from hdr.core.errors import HdrError, UsageError
from hdr.core.files import atomic_write, plain_mode, read_json, replacing, write_json  # noqa: F401  (rundir.write_json ...: for callers)

HISTORY_FIELDS = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds"]
REQUIRED_FILES = ("config.yaml", "run.json")


def now_iso() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "run"


def create(runs_dir: Path, config_name: str) -> Path:
    """A new, empty, uniquely named run folder: <time>-<config name>-<random>."""
    runs_dir = Path(runs_dir)
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create runs folder {runs_dir}: {e.strerror}; choose another with --runs-dir") from None
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for _ in range(100):
        # The random tail keeps names unique across processes starting in the same second.
        path = runs_dir / f"{stamp}-{_slug(config_name)}-{secrets.token_hex(2)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
        except OSError as e:
            raise UsageError(f"cannot create a run folder in {runs_dir}: {e.strerror}; "
                             "choose another with --runs-dir") from None
    raise UsageError(f"could not create a unique run folder in {runs_dir}")


class RunInfo:
    """run.json: what ran, where, with what, and how it ended. Rewritten atomically on change."""

    def __init__(self, folder: Path, info: dict):
        self.folder = Path(folder)
        self.info = info

    @classmethod
    def start(cls, folder: Path, *, config_name: str, seed: int, command: list[str], extra: dict | None = None):
        from hdr import __version__

        info = {
            "id": Path(folder).name,
            "status": "running",
            "config_name": config_name,
            "started": now_iso(),
            "ended": None,
            "command": command,
            "cwd": os.getcwd(),
            **this_process(),
            "seed": seed,
            "versions": {"hdr": __version__, "python": platform.python_version()},
            "epochs_completed": 0,
        }
        info.update(extra or {})
        run = cls(folder, info)
        run.save()
        return run

    def update(self, **fields) -> None:
        self.info.update(fields)
        self.save()

    def finish(self, status: str, **fields) -> None:
        self.update(status=status, ended=now_iso(), **fields)

    def save(self) -> None:
        path = self.folder / "run.json"
        text = json.dumps(self.info, indent=2) + "\n"
        try:
            atomic_write(path, text)
        except OSError as e:
            if e.errno != errno.ENOSPC or not path.is_file():
                raise
            # The disk is full: a second copy does not fit, but the old file's own blocks do,
            # and a run must still be able to say that it failed.
            with open(path, "r+") as f:
                f.write(text)
                f.truncate()
                f.flush()
                os.fsync(f.fileno())


def write_history(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=HISTORY_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in HISTORY_FIELDS})
    atomic_write(path, buf.getvalue())


class DamagedRun(UsageError, ValueError):
    """A file of a run folder that does not hold what hdr wrote there. A ValueError too, so that
    listings that skip unreadable folders skip these."""


def read_history(path: Path) -> list[dict]:
    if not Path(path).exists():
        return []
    rows = []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is not None and reader.fieldnames[:1] != ["epoch"]:
            raise DamagedRun(f"{path} is damaged (its header is not hdr's); the run cannot be read")
        for row in reader:
            parsed = {}
            try:
                for k, v in row.items():
                    if k is None or k not in HISTORY_FIELDS:
                        raise ValueError(f"unexpected column {k!r}")
                    if v in ("", None):
                        parsed[k] = None
                    elif k == "epoch":
                        parsed[k] = int(v)
                    else:
                        parsed[k] = float(v)
            except ValueError as e:
                raise DamagedRun(f"{path} is damaged (line {reader.line_num}: {e}); the run cannot be read") from None
            rows.append(parsed)
    return rows


def open_run(path: str | Path) -> Path:
    """A run folder given by the user, checked to be one."""
    p = Path(path)
    if not p.exists():
        raise UsageError(f"run folder not found: {p} (list runs with: hdr runs)")
    if not p.is_dir():
        raise UsageError(f"{p} is not a run folder (expected a folder such as runs/<id>)")
    missing = [f for f in REQUIRED_FILES if not (p / f).is_file()]
    if missing:
        raise UsageError(f"{p} is not a complete run folder: missing {', '.join(missing)}")
    try:
        info = read_json(p / "run.json")
    except (ValueError, OSError):
        raise DamagedRun(f"{p}/run.json is unreadable or corrupt") from None
    if not isinstance(info, dict):
        raise DamagedRun(f"{p}/run.json is damaged: it holds a {type(info).__name__}, not hdr's record of the run")
    read_history(p / "history.csv")
    return p


def load_model(path: str | Path):
    """The trained model of run folder `path`, loaded without its optimizer. A missing model is
    explained by the run's status (exit 2: the user named a run that cannot be used yet); a
    damaged model.keras is a failure (exit 1) that says to train again."""
    folder = open_run(path)
    model_path = folder / "model.keras"
    if not model_path.is_file():
        status = effective_status(read_json(folder / "run.json"))
        hint = {
            "running": "it is still training; wait for it to finish",
            "interrupted": f"it was interrupted; finish it with: hdr train --resume {folder}",
            "crashed": f"it crashed; finish it with: hdr train --resume {folder}",
            "failed": f"it failed; see {folder}/run.json, then resume it with: hdr train --resume {folder}",
        }.get(status, "train it again")
        raise UsageError(f"{folder} has no model.keras (status: {status}); {hint}")
    from hdr.core.backend import quiet_import

    keras = quiet_import()
    try:
        model = keras.saving.load_model(model_path, compile=False)
    except Exception as e:  # a truncated zip, a foreign file or an incompatible Keras all land here
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise HdrError(f"{model_path} is unreadable or corrupt ({first}); train the run again") from None
    shape = model.input_shape
    if isinstance(shape, list) or len(shape) != 4 or shape[-1] != 1:
        raise HdrError(f"{model_path}: expected a model taking (height, width, 1) images, got input shape {shape}")
    return model


def _start_ticks(pid: int) -> int | None:
    """When process pid started, in clock ticks since boot (Linux); None where it cannot be told."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def this_process() -> dict:
    """The run.json fields that identify the process running a run: a pid alone is reused."""
    return {"pid": os.getpid(), "pid_started": _start_ticks(os.getpid()), "host": platform.node()}


def pid_alive(pid: int | None, host: str | None, started: int | None = None) -> bool:
    """Whether the process that wrote a run is still running. A live process with the same pid
    but another start time is an unrelated one that reused the pid."""
    if not pid or (host and host != platform.node()):
        return True  # cannot tell from here: assume it lives
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if started is not None:
        now = _start_ticks(pid)
        if now is not None and now != started:
            return False
    return True


def effective_status(info: dict) -> str:
    """run.json's status, except that a 'running' run whose process is gone is 'crashed'."""
    status = info.get("status", "unknown")
    if status == "running" and not pid_alive(info.get("pid"), info.get("host"), info.get("pid_started")):
        return "crashed"
    return status


@contextmanager
def owned(folder: Path):
    """Hold the run folder for this process: a second hdr process that tries gets a one-line
    UsageError. An flock, so a process that dies (even by SIGKILL) releases it."""
    import fcntl

    path = Path(folder) / ".lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, plain_mode())
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"{folder} is in use by another hdr process; wait for it to end "
                             "(hdr runs shows its status)") from None
        yield
    finally:
        os.close(fd)


def command_line() -> list[str]:
    return [Path(sys.argv[0]).name] + sys.argv[1:]


def elapsed(t0: float) -> float:
    return round(time.perf_counter() - t0, 3)


# A fold's run records which fold it held out; hdr evaluate --split val and the worker read it
# back. Both go through these two functions, so the numbering (1-based, as printed) is decided here only.

def fold_fields(cv_id: str, fold: int, folds: int, seed: int) -> dict:
    """The run.json fields of the run that holds out fold number `fold` (1..folds)."""
    return {"cv_id": cv_id, "fold": fold, "folds": folds, "fold_seed": seed}


def held_out_rows(info: dict, labels: np.ndarray) -> np.ndarray | None:
    """The training-set rows a cross-validation run held out, from its run.json; None for a run
    that is not a fold."""
    if info.get("fold") is None:
        return None
    try:
        fold, folds, seed = int(info["fold"]), int(info["folds"]), int(info["fold_seed"])
    except (KeyError, TypeError, ValueError):
        raise UsageError("run.json names a cross-validation fold without a valid fold, folds and fold_seed; "
                         "run hdr cv again") from None
    if not 1 <= fold <= folds:
        raise UsageError(f"run.json names fold {fold} of {folds}; run hdr cv again")
    from hdr.core.data import stratified_folds

    return stratified_folds(labels, folds, seed)[fold - 1]
