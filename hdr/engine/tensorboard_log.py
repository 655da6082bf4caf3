"""TensorBoard event files in the run folder, written with tensorboardX (its summary builders,
protos and record writer), never TensorFlow, so every Keras backend writes them the same way.

    RUN/tensorboard/              the run as an HParams session: its config keys (and sweep, cv or
                                  tune fields) as hyperparameters, and the model's conceptual graph
    RUN/tensorboard/train/        epoch_loss, epoch_accuracy, epoch_learning_rate per epoch
    RUN/tensorboard/validation/   epoch_loss, epoch_accuracy per epoch (the tags Keras's own
                                  TensorBoard callback uses, so train and validation share a chart)
    RUN/tensorboard/eval/         after hdr evaluate: the confusion matrix and the misclassified
                                  grid as images, and the evaluation's figures (eval-val/, eval-on-X/)

Each folder holds one event file, a function of the run's committed records: the epochs of
history.csv (each epoch's time is the run's start plus the epochs' seconds). While a run trains,
each committed epoch is appended and flushed (a live TensorBoard keeps reading the same file).
When a run starts or resumes, and when hdr evaluate looks, a file that is the start of what
history.csv says gets the rest appended; any other (an epoch history.csv never committed, a torn
write, a second file) is written whole under a later name and the others are removed; it begins
with a SessionLog START, at which a TensorBoard that read the old file drops what it had. So a
resumed run shows one continuous curve with no epoch twice.

tensorboardX's SummaryWriter/FileWriter do not write them: they queue events to a thread (flush()
does not wait for the queue), stamp the file with the current time, name it by the current second
(two in one second truncate each other), and write in place, never whole.
"""

from __future__ import annotations

import io
import json
import socket
import time
from datetime import datetime
from pathlib import Path

from hdr.runs import rundir

LOG_DIR = rundir.TENSORBOARD
EVENTS = "*tfevents*"   # the event files of a folder: TensorBoard reads any file whose name holds "tfevents"
# history.csv column -> (subfolder, tag)
SERIES = {
    "train": {rundir.LOSS: "epoch_loss", rundir.ACCURACY: "epoch_accuracy", rundir.LEARNING_RATE: "epoch_learning_rate"},
    "validation": {rundir.VAL_LOSS: "epoch_loss", rundir.VAL_ACCURACY: "epoch_accuracy"},
}
# run.json fields that place a run in a group of runs (sweep, cross-validation, tuning study):
# shown as hyperparameters beside the config keys. Matched by prefix, so a new kind of group
# only has to name its fields so.
GROUP_PREFIXES = ("sweep", "cv_", "fold", "study", "trial", "tune")


# ------------------------------------------------------------------------------ events (tensorboardX)

def _event(wall_time: float, step: int = 0, summaries=(), **fields):
    """An event of the values of these Summary protos, in order."""
    from tensorboardX.proto.event_pb2 import Event

    event = Event(wall_time=wall_time, step=step, **fields)
    for summary in summaries:
        event.summary.MergeFrom(summary)
    return event


def _opening(wall_time: float, step: int) -> list:
    """The file's header, and a SessionLog START at its first step: a TensorBoard that was reading
    an older file of the folder drops its points from that step on, rather than showing two."""
    from tensorboardX.proto.event_pb2 import SessionLog

    return [_event(wall_time, file_version="brain.Event:2"),
            _event(wall_time, step, session_log=SessionLog(status=SessionLog.START))]


def _scalars(figures: dict) -> list:
    from tensorboardX import summary

    return [summary.scalar(tag, float(value)) for tag, value in figures.items()]


def _image(tag: str, png: bytes):
    """The PNG as it is in the run folder (tensorboardX's image() would decode and re-encode an
    array), in tensorboardX's Summary.Image proto."""
    from PIL import Image
    from tensorboardX.proto.summary_pb2 import Summary

    with Image.open(io.BytesIO(png)) as im:
        channels = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}.get(im.mode, 3)
        image = Summary.Image(height=im.height, width=im.width, colorspace=channels, encoded_image_string=png)
    return Summary(value=[Summary.Value(tag=tag, image=image)])


def _keras_graph(model_json: str):
    """The model's Keras config, which TensorBoard's graph dashboard draws as the conceptual graph
    (the tag "keras" of Keras's own TensorBoard callback). tensorboardX has no builder for it (its
    add_graph is for torch and ONNX), so it is built here from tensorboardX's protos."""
    from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboardX.proto.tensor_pb2 import TensorProto
    from tensorboardX.proto.types_pb2 import DT_STRING

    meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="graph_keras_model", content=b"1"))
    tensor = TensorProto(dtype=DT_STRING, string_val=[model_json.encode()])
    return Summary(value=[Summary.Value(tag="keras", metadata=meta, tensor=tensor)])


def framed(events: list) -> bytes:
    """The events as an event file's bytes, in TFRecord framing (lengths, CRCs) by tensorboardX's
    RecordWriter. Its constructor opens a path "wb", so it is given a buffer as its file instead
    (its write() only calls that file's write), to compare with, append to, or write whole."""
    from tensorboardX.record_writer import RecordWriter

    writer = RecordWriter.__new__(RecordWriter)
    writer._writer = buf = io.BytesIO()
    for event in events:
        writer.write(event.SerializeToString())
    return buf.getvalue()


# ------------------------------------------------------------------------------ what a run says

def started(info: dict) -> float:
    """The run's start as seconds since the epoch (0 when run.json does not say)."""
    try:
        return datetime.fromisoformat(info["started"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return 0.0


def epoch_times(start: float, history: list[dict]) -> list[float]:
    """When each epoch ended, on a clock that runs only while the run trains: the start plus the
    seconds of the epochs so far. A function of the committed records alone, so the events of a
    resumed run come out the same whichever process writes them (MLflow's steps use it too)."""
    times, t = [], start
    for row in history:
        t = _after(t, row)
        times.append(t)
    return times


def _after(t: float, row: dict) -> float:
    return round(t + (row.get(rundir.SECONDS) or 0.0), 3)


def _epoch_event(series: str, row: dict, wall_time: float):
    figures = {tag: row[col] for col, tag in SERIES[series].items() if row.get(col) is not None}
    return _event(wall_time, int(row[rundir.EPOCH]), _scalars(figures)) if figures else None


def hparams(config: dict, info: dict) -> dict:
    """The hyperparameters of a run: every key of its resolved config, dotted (lists as their
    YAML text), and the run.json fields that say which sweep, cv or tune it belongs to. Unset
    values (null) are left out: the HParams view shows them blank."""
    from hdr.runs.listing import flatten

    out = {}
    for key, value in {**flatten(config), **{k: v for k, v in info.items() if k.startswith(GROUP_PREFIXES)}}.items():
        if value is None or key == "training.tensorboard":
            continue
        if isinstance(value, tuple):
            value = json.dumps(list(value))
        elif not isinstance(value, (bool, int, float, str)):
            value = json.dumps(value)
        out[key] = value
    return out


def session_events(config: dict, info: dict, model_json: str | None) -> list:
    """The run as an HParams session: tensorboardX's session-start summary only. Its experiment
    summary is left out (TensorBoard would take one run's keys, and no metrics, as every run's
    columns; without it, it gathers both from all the runs), and so is its session end (SUCCESS)."""
    from tensorboardX import summary

    t0 = started(info)
    _, session_start, _ = summary.hparams(hparams(config, info), {})
    graph = [_keras_graph(model_json)] if model_json is not None else []
    return [*_opening(t0, 0), _event(t0, 0, [session_start, *graph])]


def series_events(series: str, start: float, history: list[dict]) -> list | None:
    """The whole event file of one series for these committed epochs; None when no epoch has a
    figure of it (no validation split)."""
    events = [_epoch_event(series, row, t) for row, t in zip(history, epoch_times(start, history))]
    events = [e for e in events if e is not None]
    return [*_opening(start, events[0].step), *events] if events else None


# ------------------------------------------------------------------------------ files

def _own_folder(run: Path, *parts: str) -> Path:
    """RUN/tensorboard/<parts> as the run's own folder: a symlink on the way (to a folder elsewhere)
    is removed, and the folder made afresh by the writes, as a run's other files and folders are
    replaced rather than written through (rundir.atomic_write, rundir.swap_in); so files outside
    the run are never written or removed."""
    path = Path(run)
    for part in (LOG_DIR, *parts):
        path = path / part
        if path.is_symlink():
            path.unlink()
    return path


def event_files(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).glob(EVENTS) if p.is_file())


def _sync(folder: Path, events: list | None) -> Path | None:
    """Make `folder` hold one event file of exactly these events, and return it. A file that is
    the start of them gets the rest appended in place (a TensorBoard reading it follows appends);
    else they are written whole (atomically) under a name later than the folder's other event
    files, which are then removed (so a TensorBoard reading one moves on to it)."""
    old = event_files(folder)
    if events is None:   # no epoch has a figure of it: nothing to show
        for p in old:
            p.unlink(missing_ok=True)
        return None
    expected = framed(events)
    if len(old) == 1 and not old[0].is_symlink():  # a link's file is not the run's: written whole instead
        current = old[0].read_bytes()
        if current and expected.startswith(current):
            if len(current) < len(expected):
                with open(old[0], "ab") as f:
                    f.write(expected[len(current):])
            return old[0]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / _later_name(old)
    rundir.atomic_write(path, expected)
    for p in old:
        p.unlink(missing_ok=True)
    return path


def _later_name(old: list[Path]) -> str:
    """tensorboardX's file name, events.out.tfevents.<seconds>.<host>, at a second later than the
    other files' of that form (a TensorBoard reading one moves on to the next name in order)."""
    secs = [int(time.time())] + [int(p.name.split(".")[3]) + 1 for p in old
                                 if p.name.startswith("events.out.tfevents.") and p.name.split(".")[3].isdigit()]
    return f"events.out.tfevents.{max(secs):010d}.{socket.gethostname()}"


def _model_json(model) -> str | None:
    try:
        return model.to_json()
    except Exception:  # a model Keras cannot describe as JSON still trains; it has no graph then
        return None


# ------------------------------------------------------------------------------ writing

class EpochLog:
    """The per-epoch hook of hdr.train.Trainer: appends each committed epoch to the train and
    validation event files. Returns None (a hook's returned text would prune the run)."""

    def __init__(self, folder: Path, model=None):
        self.folder = Path(folder)
        self.model_json = _model_json(model) if model is not None else None
        self.history: list[dict] | None = None   # the epochs the files hold; None: not synced yet
        self.files: dict[str, Path | None] = {}

    def sync(self) -> None:
        """Bring the run's event files in line with its run.json, config and history.csv."""
        from hdr.engine import config as config_mod

        info = rundir.read_info(self.folder)
        history = rundir.history(self.folder)
        self.start = started(info)
        root = _own_folder(self.folder)
        if self.model_json is not None or not event_files(root):  # else keep the graph the run began with
            config = config_mod.load_run_config(self.folder / rundir.CONFIG).resolved()
            _sync(root, session_events(config, info, self.model_json))
        for series in SERIES:
            self.files[series] = _sync(_own_folder(self.folder, series), series_events(series, self.start, history))
        self.history = history
        self.ended = epoch_times(self.start, history)[-1] if history else self.start

    def __call__(self, epoch: int, row: dict) -> None:
        if self.history is None or (self.history and epoch != self.history[-1][rundir.EPOCH] + 1):
            self.sync()  # history.csv already holds this epoch
            return None
        self.ended = _after(self.ended, row)
        self.history.append(dict(row))   # its own copy: a caller may reuse the dict
        for series in SERIES:
            event, path = _epoch_event(series, row, self.ended), self.files.get(series)
            if event is None:
                continue
            if path is not None and path.exists():
                with open(path, "ab") as f:   # closed, so flushed: a live TensorBoard sees the epoch now
                    f.write(framed([event]))
            else:
                self.files[series] = _sync(_own_folder(self.folder, series),
                                           series_events(series, self.start, self.history))
        return None


def open_log(folder: Path, model=None, retry_at_epoch_end: bool = False) -> EpochLog:
    """The epoch log of a run, its files brought in line with the run's records (the session,
    with the model's graph when a model is given, and the epochs of history.csv). Called when a
    run starts or resumes, and by hdr evaluate. retry_at_epoch_end: a file that cannot be written
    now (a full disk) is written by the first epoch's call instead, where training reports it."""
    log = EpochLog(folder, model)
    try:
        log.sync()
    except OSError:
        if not retry_at_epoch_end:
            raise
        log.history = None
    return log


def log_evaluation(folder: Path, name: str, metrics: dict, model=None) -> Path:
    """hdr evaluate's results in RUN/tensorboard/<name>/ (name: eval, eval-val, eval-on-X): its
    figures as scalars and confusion_matrix.png and misclassified.png (the worst 100 mistakes) as
    images, at the step of the run's last epoch. Replaced by each evaluation. Returns the file."""
    folder = Path(folder)
    log = open_log(folder, model)  # a run trained before TensorBoard logging gets its curves too
    t, step = log.ended, log.history[-1][rundir.EPOCH] if log.history else 0
    figures = _scalars({k: v for k, v in metrics.items()
                        if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "size"})
    images = [_image(png[:-4], (folder / name / png).read_bytes())
              for png in (rundir.EVAL_FILES["confusion_png"], rundir.EVAL_FILES["misclassified"]) if (folder / name / png).is_file()]
    return _sync(_own_folder(folder, name), [*_opening(t, step), _event(t, step, figures + images)])
