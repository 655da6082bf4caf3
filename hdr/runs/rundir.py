"""The run-folder format, in one place: the name of every file and folder inside a run, the
statuses, the history columns and the metric keys, and the writes into a run folder.

Every other module takes these names from here and writes into a run through the functions
below, so this module can also refuse an output path a user gives (--out, --output) that is, or
would overwrite, something a run owns (refuse_run_owned). Every file is written to a temporary
name and renamed into place, so a reader (or a crash) never sees half a file. A run folder is
created with an exclusive mkdir, so concurrent runs never share one and an existing run is never
overwritten.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import math
import os
import shutil
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

# ---------------------------------------------------------------- names inside a run folder
CONFIG = "config.yaml"          # the resolved config
RUN = "run.json"                # status, process, versions, data, how it ended
HISTORY = "history.csv"         # one row per committed epoch
METRICS = "metrics.json"        # the final figures (also the name inside an evaluation folder)
MODEL = "model.keras"           # the trained model
SUMMARY = "summary.txt"         # layers and parameter counts
CURVES = {"accuracy": "accuracy.png", "loss": "loss.png"}  # history column -> its training curve
CHECKPOINTS = "checkpoint"      # the last completed epoch, for --resume
LOCK = ".lock"                  # held by the process that trains the run
TENSORBOARD = "tensorboard"     # TensorBoard event files (hdr.engine.tensorboard_log)
EXPORT = "export"               # hdr export's default place
EVAL = "eval"                   # hdr evaluate: eval/, eval-val/, eval-on-<dataset>/ (eval_name)
ENSEMBLES = "ensembles"         # beside the runs: hdr ensemble's folders
ARCHIVE = "archive"             # beside the runs: hdr runs --archive moves runs here
TRASH = ".hdr-trash"            # beside the runs: hdr runs --delete renames a run here, then removes it
REQUIRED_FILES = (CONFIG, RUN)
# inside an evaluation folder (eval*/, and hdr ensemble's)
EVAL_FILES = {"metrics": METRICS, "confusion_csv": "confusion_matrix.csv", "confusion_png": "confusion_matrix.png",
              "per_class": "per_class.csv", "predictions": "predictions.csv", "report": "report.md",
              "misclassified": "misclassified.png"}
# inside export/: the default file of each format, and the verification beside an export
EXPORT_FILES = {"savedmodel": "savedmodel", "onnx": "model.onnx", "litert": "model.tflite"}
VERIFICATION_SUFFIX = ".verification.json"


def checkpoint_name(epoch: int) -> str:
    return f"epoch-{epoch:04d}.keras"


CHECKPOINT_GLOB = "epoch-*.keras"


def eval_name(split: str = "test", on: str | None = None) -> str:
    """The evaluation folder of hdr evaluate: eval/, eval-val/ or eval-on-<dataset>/."""
    return f"{EVAL}-on-{on}" if on is not None else EVAL if split == "test" else f"{EVAL}-{split}"


def eval_folders(folder: Path) -> list[Path]:
    """A run's evaluation folders (eval/, eval-val/, eval-on-<dataset>/ ...), by name."""
    return sorted(p for p in Path(folder).glob(f"{EVAL}*") if p.is_dir())


# ---------------------------------------------------------------- statuses (run.json "status")
RUNNING, COMPLETED, FAILED, INTERRUPTED, PRUNED = "running", "completed", "failed", "interrupted", "pruned"
CRASHED = "crashed"             # never stored: a RUNNING run whose process is gone (effective_status)
NOT_RUN = "not run"             # a planned run of a sweep, cv or search that never started
# "pruned": ended early by a search's pruner (hdr tune), a decision rather than a failure.
STATUSES = (RUNNING, COMPLETED, FAILED, INTERRUPTED, CRASHED, PRUNED)
RESULTS = (COMPLETED, PRUNED, FAILED)  # a run that ended so is a result: resuming leaves it

# ---------------------------------------------------------------- history.csv columns
EPOCH, LOSS, ACCURACY, VAL_LOSS, VAL_ACCURACY = "epoch", "loss", "accuracy", "val_loss", "val_accuracy"
LEARNING_RATE, SECONDS = "learning_rate", "seconds"
HISTORY_FIELDS = [EPOCH, LOSS, ACCURACY, VAL_LOSS, VAL_ACCURACY, LEARNING_RATE, SECONDS]
HISTORY_METRICS = HISTORY_FIELDS[1:]   # the figures of an epoch (Keras's log names for the first four)
VAL_METRICS = {VAL_ACCURACY: "maximize", VAL_LOSS: "minimize"}  # what a search or early stopping may watch

# ---------------------------------------------------------------- metrics.json keys
TEST_ACCURACY, TEST_LOSS = "test_accuracy", "test_loss"
BEST_VAL_ACCURACY, BEST_EPOCH = "best_val_accuracy", "best_epoch"
TRAIN_SECONDS, PARAMS = "train_seconds", "params"
EPOCHS_COMPLETED, EPOCHS_PLANNED = "epochs_completed", "epochs_planned"  # run.json
LABEL = "label"                 # run.json: the user's label (hdr train --label, hdr runs --set-label)
MAX_LABEL = 80
STEPS_PER_EXECUTION = "steps_per_execution"  # run.json: the batches per call a run used


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
            "status": RUNNING,
            "config_name": config_name,
            "started": now_iso(),
            "ended": None,
            "command": command,
            "cwd": os.getcwd(),
            **this_process(),
            "seed": seed,
            "versions": {"hdr": __version__, "python": platform.python_version()},
            EPOCHS_COMPLETED: 0,
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

    def pruned(self, reason: str) -> None:
        """End the run as pruned: a result, so its checkpoints (kept only to resume) go."""
        self.finish(PRUNED, reason=reason)
        shutil.rmtree(self.folder / CHECKPOINTS, ignore_errors=True)

    def save(self) -> None:
        path = self.folder / RUN
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
    listings that skip unreadable folders skip these. name: the file's name; detail: what is wrong."""

    def __init__(self, path: Path | str, detail: str, message: str | None = None):
        self.name, self.detail = Path(path).name, detail
        super().__init__(message or f"{path} is damaged ({detail}); the run cannot be read")


# ---------------------------------------------------------------- what each field may hold
# One check per field, for every reader (hdr runs, compare, evaluate, ensemble, track): run folders
# are also written by other tools, copies and people, and a value hdr never writes (a 401-digit
# accuracy, "high", NaN) makes the run damaged, named with the field, instead of failing a listing.

def _real(v) -> bool:
    """A finite JSON number, not a bool; an int beyond a float's range is none (it cannot be shown)."""
    if type(v) is float:
        return math.isfinite(v)
    return type(v) is int and -sys.float_info.max <= v <= sys.float_info.max


_FRACTION = (lambda v: _real(v) and 0 <= v <= 1, "a number from 0 to 1")
_NON_NEGATIVE = (lambda v: _real(v) and v >= 0, "a finite number >= 0")
_FINITE = (_real, "a finite number")
_COUNT = (lambda v: type(v) is int and 0 <= v < 2 ** 63, "a whole number >= 0")
_POSITIVE = (lambda v: type(v) is int and 1 <= v < 2 ** 63, "a whole number >= 1")
_WHOLE = (lambda v: type(v) is int and -2 ** 63 <= v < 2 ** 64, "a whole number")
_TEXT = (lambda v: type(v) is str, "text")
_MAPPING = (lambda v: type(v) is dict, "a mapping")
_KEYS = (lambda v: type(v) is str or type(v) is list and all(type(k) is str for k in v), "text or a list of text")
# run.json fields that hdr reads back (others are kept for people and left alone); None: not recorded
INFO_FIELDS = {
    "status": (lambda v: v in STATUSES, f"one of {', '.join(STATUSES)}"), EPOCHS_COMPLETED: _COUNT,
    EPOCHS_PLANNED: _COUNT, "seed": _WHOLE, "fold": _POSITIVE, "folds": _POSITIVE, "fold_seed": _WHOLE,
    "pid": _WHOLE, "pid_started": _WHOLE, "host": _TEXT, "id": _TEXT, "config_name": _TEXT, "dataset": _TEXT,
    "model": _TEXT, "optimizer": _TEXT, "reason": _TEXT, "sweep_id": _TEXT, "sweep_point": _TEXT,
    "sweep_keys": _KEYS, "cv_id": _TEXT, "runtime": _MAPPING, "data_checksums": _MAPPING, "data_dir": _TEXT,
    "started": _TEXT, "ended": _TEXT, "mlflow": _MAPPING, LABEL: _TEXT,
}
REQUIRED_INFO = ("status",)
# metrics.json (also an evaluation's) and history.csv fields; any other number must be finite
FIGURE_FIELDS = {PARAMS: _COUNT, BEST_EPOCH: _POSITIVE, "epochs": _COUNT, EPOCH: _POSITIVE}


def _figure_rule(key: str):
    """The rule of a figure hdr knows: by name, or by what it is (any accuracy, loss or time that
    hdr or Keras names so); None for others."""
    if key in FIGURE_FIELDS:
        return FIGURE_FIELDS[key]
    if key.endswith(ACCURACY):
        return _FRACTION
    return _NON_NEGATIVE if key.endswith((LOSS, SECONDS, LEARNING_RATE)) else None


def _shown_value(v) -> str:
    if type(v) is int and abs(v) >= 10 ** 20:
        return f"a {len(str(abs(v)))}-digit number"
    text = json.dumps(v)
    return text if len(text) <= 40 else text[:37] + "..."


def field_problem(key: str, value, rule=None) -> str | None:
    """What is wrong with a field's value: by rule, else as a figure (metrics.json, history.csv),
    where a number hdr has no rule for must still be finite; None when nothing is, or for None
    (not measured, not recorded)."""
    if value is None:
        return None
    if rule is None:
        rule = _figure_rule(key)
        if rule is None:
            if type(value) not in (int, float):
                return None  # a dataset's name, pages, a block of settings: not a figure
            rule = _FINITE
    ok, what = rule
    if ok(value):
        return None
    return f"{key if key.isprintable() else json.dumps(key)} is {_shown_value(value)}, not {what}"  # no terminal codes


def checked_info(info, path: Path) -> dict:
    """run.json's record, every field hdr reads back checked; DamagedRun naming the field."""
    if not isinstance(info, dict):
        what = f"it holds a {type(info).__name__}, not hdr's record of the run"
        raise DamagedRun(path, what, f"{path} is damaged: {what}")
    for key in REQUIRED_INFO:
        if info.get(key) is None:
            raise DamagedRun(path, f"it has no {key}")
    for key, rule in INFO_FIELDS.items():
        problem = field_problem(key, info.get(key), rule)
        if problem:
            raise DamagedRun(path, problem)
    return info


def checked_metrics(metrics, path: Path) -> dict:
    """A metrics.json's figures checked (accuracies from 0 to 1, losses and times finite and >= 0,
    counts whole, any other number finite); DamagedRun naming the field."""
    if not isinstance(metrics, dict):
        raise DamagedRun(path, f"it holds a {type(metrics).__name__}, not a mapping")
    for key, value in metrics.items():
        problem = field_problem(key, value)
        if problem:
            raise DamagedRun(path, problem)
    return metrics


def _json_file(path: Path):
    try:
        return read_json(path)
    except (ValueError, OSError):
        raise DamagedRun(path, "unreadable or corrupt", f"{path} is unreadable or corrupt") from None


def history_limit(info: dict) -> int | None:
    """The most epochs history.csv can hold by run.json: the epochs planned, or completed where a
    run was extended. An epoch is written to history.csv before run.json counts it, so a run that
    did not end cleanly may hold one more. None where run.json says neither."""
    planned, done = info.get(EPOCHS_PLANNED), info.get(EPOCHS_COMPLETED)
    if planned is None and done is None:
        return None
    cut = 0 if info.get("status") in (COMPLETED, PRUNED) else 1  # both counted after the last epoch
    return max(planned or 0, (done or 0) + cut)


def iter_history(path: Path, limit: int | None = None):
    """history.csv's rows one at a time, each value checked as hdr writes it (epochs rising, at most
    limit of them, figures in range), so that a reader keeps only what it needs of a history of
    any length. DamagedRun naming the line and the column."""
    if not Path(path).exists():
        return
    with open(path, newline="") as f:
        reader = csv.reader(f)
        try:
            yield from _history_rows(path, reader, limit)
        except (csv.Error, UnicodeDecodeError) as e:  # not text, or a field past csv's limit
            raise DamagedRun(path, str(e)) from None


def _history_rows(path: Path, reader, limit: int | None):
    header = next(reader, None)
    if header is None:
        return
    if header[:1] != [EPOCH]:
        raise DamagedRun(path, "its header is not hdr's")
    unknown = [k for k in header if k not in HISTORY_FIELDS]
    if unknown:
        raise DamagedRun(path, f"line 1: unexpected column {unknown[0]!r}")
    columns = [(k, int if k == EPOCH else float, *_figure_rule(k)) for k in header]
    last = 0
    for values in reader:
        if not values:
            continue  # a blank line
        try:
            if len(values) > len(columns):
                raise ValueError(f"{len(values)} values under {len(columns)} columns")
            row = dict.fromkeys(header)  # a short row: its missing values are not measured
            for (k, kind, ok, what), v in zip(columns, values):
                if v:
                    row[k] = value = kind(v)
                    if not ok(value):
                        raise ValueError(f"{k} is {_shown_value(value)}, not {what}")
            epoch = row[EPOCH]
            if epoch is None or epoch <= last:
                raise ValueError("no epoch" if epoch is None else f"epoch {epoch} after epoch {last}")
            if limit is not None and epoch > limit:
                raise ValueError(f"epoch {epoch} is beyond the {limit} epochs {RUN} plans or counts")
        except ValueError as e:
            raise DamagedRun(path, f"line {reader.line_num}: {e}") from None
        last = epoch
        yield row


def read_history(path: Path, limit: int | None = None) -> list[dict]:
    return list(iter_history(path, limit))


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
    info = read_info(p)
    if (p / METRICS).is_file():
        read_metrics(p)
    for _ in iter_history(p / HISTORY, history_limit(info)):
        pass  # checked, never held: a history may be long
    return p


_UNWRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)


@contextmanager
def writing_into(folder: Path, what: str):
    """Check that this process can write into run folder `folder` (a read-only file system, a
    folder of another user), before the block computes what it will write; within the block, a
    write into the folder that the file system refuses is the same one line. what: what the
    command writes there ("hdr evaluate writes eval/ into it")."""
    folder = Path(folder)
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-check.", suffix=".tmp")  # .tmp: a resume drops it
        os.close(fd)
        os.unlink(probe)
        yield
    except OSError as e:
        inside = e.filename is not None and Path(os.path.abspath(e.filename)).is_relative_to(os.path.abspath(folder))
        if e.errno not in _UNWRITABLE or not inside:
            raise
        raise UsageError(f"{folder} cannot be written ({e.strerror}), and {what}; make the folder writable, or "
                         f"work on a copy (cp -a {folder} COPY)") from None


def check_writable(folder: Path, what: str) -> None:
    """writing_into's check alone, for a command that checks every folder before writing any."""
    with writing_into(folder, what):
        pass


def load_model(path: str | Path):
    """The trained model of run folder `path`, loaded without its optimizer. A missing model is
    explained by the run's status (exit 2: the user named a run that cannot be used yet); a
    damaged model.keras is a failure (exit 1) that says to train again."""
    folder = open_run(path)
    model_path = folder / MODEL
    if not model_path.is_file():
        status = effective_status(read_info(folder))
        hint = {
            RUNNING: "it is still training; wait for it to finish",
            INTERRUPTED: f"it was interrupted; finish it with: hdr train --resume {folder}",
            CRASHED: f"it crashed; finish it with: hdr train --resume {folder}",
            FAILED: f"it failed; see {folder}/{RUN}, then resume it with: hdr train --resume {folder}",
        }.get(status, "train it again")
        raise UsageError(f"{folder} has no {MODEL} (status: {status}); {hint}")
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
    if status == RUNNING and not pid_alive(info.get("pid"), info.get("host"), info.get("pid_started")):
        return CRASHED
    return status


@contextmanager
def owned(folder: Path):
    """Hold the run folder for this process: a second hdr process that tries gets a one-line
    UsageError. An flock, so a process that dies (even by SIGKILL) releases it."""
    import fcntl

    path = Path(folder) / LOCK
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


def drop_partial_writes(folder: Path) -> None:
    """Remove the temporary files of writes cut short (a kill, a full disk): the real files are
    still the old ones. Only for the process that holds the run."""
    folder = Path(folder)
    for tmp in [*folder.glob(".*.tmp*"), *folder.glob(f"{CHECKPOINTS}/.*.tmp*")]:
        tmp.unlink(missing_ok=True)


def in_use(folder: Path) -> bool:
    """Whether a process (on this machine, or one sharing its filesystem's locks) holds the run
    folder: the one test of "still training" that neither a reused pid nor another host fools."""
    import fcntl

    try:
        fd = os.open(Path(folder) / LOCK, os.O_RDWR | os.O_CREAT, plain_mode())
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing also lets go of the lock just taken
    return False


def command_line() -> list[str]:
    return [Path(sys.argv[0]).name] + sys.argv[1:]


def elapsed(t0: float) -> float:
    return round(time.perf_counter() - t0, 3)


# A fold's run records which fold it held out; hdr evaluate --split val and the worker read it
# back. Both go through these two functions, so the numbering (1-based, as printed) is decided here only.

def fold_fields(cv_id: str, fold: int, folds: int, seed: int) -> dict:
    """The run.json fields of the run that holds out fold number `fold` (1..folds)."""
    return {"cv_id": cv_id, "fold": fold, "folds": folds, "fold_seed": seed}


def held_out_rows(info: dict, labels):
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


# ---------------------------------------------------------------- writing into a run folder

def write(folder: Path, name: str, data: str | bytes) -> None:
    """A file of the run folder (one of the names above), written whole."""
    atomic_write(Path(folder) / name, data)


def write_metrics(folder: Path, metrics: dict) -> None:
    write_json(Path(folder) / METRICS, metrics)


def read_metrics(folder: Path) -> dict:
    """A run's (or an evaluation folder's) metrics.json, checked (checked_metrics)."""
    path = Path(folder) / METRICS
    return checked_metrics(_json_file(path), path)


def read_info(folder: Path) -> dict:
    """A run's run.json, checked (checked_info)."""
    path = Path(folder) / RUN
    return checked_info(_json_file(path), path)


def history(folder: Path) -> list[dict]:
    """The committed epochs of the run in folder (history.csv's rows)."""
    return read_history(Path(folder) / HISTORY)


def checkpoint(folder: Path, epoch: int) -> Path:
    return Path(folder) / CHECKPOINTS / checkpoint_name(epoch)


def training_curves(folder: Path, rows: list[dict], name: str = "") -> None:
    """accuracy.png and loss.png: each metric per epoch, train against validation."""
    from hdr.core.plots import curve_png

    suffix = f" ({name})" if name else ""
    epochs = [r[EPOCH] for r in rows]
    for metric, filename in CURVES.items():
        png = curve_png(epochs, [r.get(metric) for r in rows], [r.get(f"val_{metric}") for r in rows], metric,
                        f"{metric}{suffix}")
        write(folder, filename, png)


def _clean_stale(folder: Path, name: str) -> None:
    """Remove temporary folders that an evaluation killed mid-way left behind."""
    import shutil

    for p in folder.glob(f".{name}.*-*"):
        try:
            pid = int(p.name.split("-")[-2])
        except (ValueError, IndexError):
            continue
        if p.is_dir() and not pid_alive(pid, None):
            shutil.rmtree(p, ignore_errors=True)


def swap_in(tmp: Path, dest: Path) -> None:
    """Replace dest by the complete folder tmp: the old one goes only once the new one is in place."""
    import shutil

    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}-{os.urandom(3).hex()}")
        os.rename(dest, old)
    try:
        os.rename(tmp, dest)
    except OSError:
        if old is not None:
            os.rename(old, dest)
        raise
    if old is not None and old.is_symlink():
        old.unlink()  # a link to a folder elsewhere: only the link was the run's
    elif old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def evaluation_folder(folder: Path, name: str):
    """A fresh folder to write an evaluation into; once the block is done it replaces
    RUN/<name> whole (the old one stays until then), on any error it is removed."""
    import shutil

    folder = Path(folder)
    _clean_stale(folder, name)
    tmp = Path(tempfile.mkdtemp(dir=folder, prefix=f".{name}.tmp-{os.getpid()}-"))
    try:
        yield tmp
        os.chmod(tmp, plain_mode(folder=True))  # mkdtemp makes it private
        swap_in(tmp, folder / name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# ---------------------------------------------------------------- labels, archiving, deleting

def checked_label(text: str, option: str = "--label") -> str:
    """A label as given, stripped; UsageError when it is not one printable line of at most MAX_LABEL
    characters. Read back, a label is only checked to be text (a hand edit does not lose the run)."""
    label = text.strip()
    if not label.isprintable():  # newlines, tabs, terminal codes
        raise UsageError(f"{option}: a label is one line of printable characters; remove the control characters")
    if len(label) > MAX_LABEL:
        raise UsageError(f"{option}: the label has {len(label)} characters, at most {MAX_LABEL}; shorten it")
    return label


def set_label(folder: Path, label: str) -> None:
    """Write label into run.json (an empty one removes it), holding the run: never while it trains,
    which rewrites run.json itself."""
    with owned(folder):
        info = read_info(folder)
        if label:
            info[LABEL] = label
        else:
            info.pop(LABEL, None)
        RunInfo(folder, info).save()


def removable(path: str | Path) -> str | None:
    """Why the folder that path names may not be archived or deleted (a one-line reason); None
    when it may: a real folder (not a link, whose target lies elsewhere) holding run.json, whose
    lock no process holds."""
    p = Path(path)
    if p.is_symlink():
        return "it is a symbolic link; hdr removes only run folders themselves (remove the link with rm)"
    if not p.is_dir():
        return "no such folder" if not p.exists() else "not a folder"
    if not (p / RUN).is_file() or (p / RUN).is_symlink():
        return f"not a run folder (it holds no {RUN})"
    if in_use(p):
        return "it is training (another process holds it); stop it first, or wait for it to end"
    return None


def archive(folder: Path) -> Path:
    """Move a run folder into ARCHIVE beside it (one rename: the run is whole in one place or the
    other); the new place."""
    folder = Path(folder)
    dest_dir = folder.parent / ARCHIVE
    dest_dir.mkdir(exist_ok=True)
    dest = dest_dir / folder.name
    with owned(folder):  # held across the move, so no training starts in between
        if dest.exists() or dest.is_symlink():
            raise UsageError(f"{dest} already exists; rename or delete one of the two runs first")
        os.rename(folder, dest)
    return dest


def delete(folder: Path) -> None:
    """Remove a run folder: first renamed into TRASH beside it (one step: from then on no command
    sees a half-deleted run), then removed. What a failed removal leaves in TRASH goes at the next
    delete. rmtree removes symbolic links inside the run, never what they point to."""
    folder = Path(folder)
    trash = folder.parent / TRASH
    trash.mkdir(exist_ok=True)
    gone = trash / f"{folder.name}-{os.getpid()}-{secrets.token_hex(3)}"
    with owned(folder):
        os.rename(folder, gone)
    for leftover in sorted(trash.iterdir()):
        shutil.rmtree(leftover, ignore_errors=True)  # a link placed here is not followed: rmtree refuses links
    try:
        trash.rmdir()
    except OSError:
        pass  # something is still in it (another delete running): it goes next time


# ---------------------------------------------------------------- what a run owns

def run_folder_of(path: Path) -> Path | None:
    """The run folder that path is, or lies inside (through symlinks too); None when none."""
    p = Path(os.path.abspath(path))
    candidates = [p, *p.parents]
    try:
        real = Path(os.path.realpath(path))
        candidates += [real, *real.parents]
    except OSError:
        pass
    for c in candidates:
        if (c / RUN).is_file() and (c / CONFIG).is_file():
            return c
    return None


def refuse_run_owned(path: Path | str, option: str = "--out", allowed: str | None = None) -> None:
    """A UsageError when an output path the user gave is a run folder or lies inside one (it would
    write over what the run owns: run.json, config.yaml, history.csv, metrics.json, model.keras,
    the checkpoints, the eval folders, ...). allowed: the one subfolder of a run that the command
    itself writes (hdr export: export/). Checked before anything is written."""
    run = run_folder_of(path)
    if run is None:
        return
    p = Path(os.path.realpath(path))
    inside = p.relative_to(run).parts if p.is_relative_to(run) else Path(os.path.abspath(path)).relative_to(run).parts
    if allowed is not None and inside and inside[0] == allowed and len(inside) > 1:
        return
    what = f"the run folder {run}" if not inside else f"{run / inside[0]}, which belongs to the run in {run}"
    raise UsageError(f"{option} {path}: that is {what}; hdr never writes over a run's files, so give a path "
                     "outside the run folder")
