"""TensorBoard event files in the run folder, written with TensorBoard's own protos and record
writer, never TensorFlow, so every Keras backend writes them the same way.

    RUN/tensorboard/              the run as an HParams session: its config keys (and sweep, cv or
                                  tune fields) as hyperparameters, and the model's conceptual graph
    RUN/tensorboard/train/        epoch_loss, epoch_accuracy, epoch_learning_rate per epoch
    RUN/tensorboard/validation/   epoch_loss, epoch_accuracy per epoch (the tags Keras's own
                                  TensorBoard callback uses, so train and validation share a chart)
    RUN/tensorboard/eval/         after hdr evaluate: the confusion matrix and the misclassified
                                  grid as images, and the evaluation's figures (eval-val/, eval-on-X/)

Each file is a function of the run's committed records: the epoch files of history.csv (each
epoch's time is the run's start plus the epochs' seconds), so they hold exactly the committed
epochs. While a run trains, each committed epoch is appended (a live TensorBoard keeps reading the
same file); when a run starts or resumes, a file that is a prefix of what history.csv says gets
the rest appended, and any other (an epoch that history.csv never committed, a torn write) is
rewritten whole. So a resumed run shows one continuous curve without a step twice.
"""

from __future__ import annotations

import io
import json
from datetime import datetime
from pathlib import Path

from hdr.runs import rundir

LOG_DIR = "tensorboard"
EVENTS = "events.out.tfevents.hdr"   # TensorBoard reads any file whose name holds "tfevents"
# history.csv column -> (subfolder, tag)
SERIES = {
    "train": {"loss": "epoch_loss", "accuracy": "epoch_accuracy", "learning_rate": "epoch_learning_rate"},
    "validation": {"val_loss": "epoch_loss", "val_accuracy": "epoch_accuracy"},
}
# run.json fields that place a run in a group of runs (sweep, cross-validation, tuning study):
# shown as hyperparameters beside the config keys. Matched by prefix, so a new kind of group
# only has to name its fields so.
GROUP_PREFIXES = ("sweep", "cv_", "fold", "study", "trial", "tune")


# ------------------------------------------------------------------------------ events

def _record(event) -> bytes:
    """One event in TFRecord framing (length, CRCs), by TensorBoard's own record writer."""
    from tensorboard.summary.writer.record_writer import RecordWriter

    buf = io.BytesIO()
    RecordWriter(buf).write(event.SerializeToString())
    return buf.getvalue()


def _event(wall_time: float, step: int = 0, **fields):
    from tensorboard.compat.proto import event_pb2

    return event_pb2.Event(wall_time=wall_time, step=step, **fields)


def _header(wall_time: float) -> bytes:
    return _record(_event(wall_time, file_version="brain.Event:2"))


def _summary(values: list):
    from tensorboard.compat.proto import summary_pb2

    return summary_pb2.Summary(value=values)


def _scalar(tag: str, value: float):
    from tensorboard.compat.proto import summary_pb2

    return summary_pb2.Summary.Value(tag=tag, simple_value=float(value))


def _image(tag: str, png: bytes):
    from PIL import Image
    from tensorboard.compat.proto import summary_pb2

    with Image.open(io.BytesIO(png)) as im:
        width, height = im.size
        channels = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}.get(im.mode, 3)
    return summary_pb2.Summary.Value(tag=tag, image=summary_pb2.Summary.Image(
        height=height, width=width, colorspace=channels, encoded_image_string=png))


def _keras_graph(model_json: str):
    """The model's Keras config, which TensorBoard's graph dashboard draws as the conceptual
    graph (what Keras's own TensorBoard callback writes as the tag "keras")."""
    from tensorboard.compat.proto import summary_pb2, tensor_pb2, types_pb2
    from tensorboard.plugins.graph import metadata

    meta = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(
        plugin_name=metadata.PLUGIN_NAME_KERAS_MODEL, content=b"1"))
    tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=[model_json.encode()])
    return summary_pb2.Summary.Value(tag="keras", metadata=meta, tensor=tensor)


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
    return round(t + (row.get("seconds") or 0.0), 3)


def _epoch_event(series: str, row: dict, wall_time: float) -> bytes | None:
    values = [_scalar(tag, row[col]) for col, tag in SERIES[series].items() if row.get(col) is not None]
    if not values:
        return None
    return _record(_event(wall_time, int(row["epoch"]), summary=_summary(values)))


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


def session_bytes(config: dict, info: dict, model_json: str | None) -> bytes:
    from tensorboard.plugins.hparams import summary_v2 as hp

    t0 = started(info)
    session = hp.hparams_pb(hparams(config, info), trial_id=info.get("id") or "run", start_time_secs=int(t0))
    out = _header(t0) + _record(_event(t0, summary=session))
    if model_json is not None:
        out += _record(_event(t0, summary=_summary([_keras_graph(model_json)])))
    return out


def series_bytes(series: str, start: float, history: list[dict]) -> bytes | None:
    """The whole event file of one series for these committed epochs; None when no epoch has a
    figure of it (no validation split)."""
    events = [_epoch_event(series, row, t) for row, t in zip(history, epoch_times(start, history))]
    events = [e for e in events if e is not None]
    return _header(start) + b"".join(events) if events else None


def _sync(path: Path, expected: bytes | None) -> None:
    """Make the file at path hold exactly `expected`, appending in place where the file is the
    start of it (a TensorBoard reading the file follows appends, not a replaced file)."""
    if expected is None:
        return
    try:
        current = path.read_bytes()
    except FileNotFoundError:
        current = None
    if current == expected:
        return
    if current and expected.startswith(current):
        with open(path, "ab") as f:
            f.write(expected[len(current):])
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    rundir.atomic_write(path, expected)


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

    def sync(self) -> None:
        """Bring the run's event files in line with its run.json, config and history.csv."""
        from hdr.core import config as config_mod

        info = rundir.read_json(self.folder / "run.json")
        history = rundir.read_history(self.folder / "history.csv")
        self.start = started(info)
        session = self.folder / LOG_DIR / EVENTS
        if self.model_json is not None or not session.is_file():  # else keep the graph the run began with
            config = config_mod.load_run_config(self.folder / "config.yaml").resolved()
            _sync_whole(session, session_bytes(config, info, self.model_json))
        for series in SERIES:
            _sync(self.folder / LOG_DIR / series / EVENTS, series_bytes(series, self.start, history))
        self.history = history
        self.ended = epoch_times(self.start, history)[-1] if history else self.start

    def __call__(self, epoch: int, row: dict) -> None:
        if self.history is None or (self.history and epoch != self.history[-1]["epoch"] + 1):
            self.sync()  # history.csv already holds this epoch
            return None
        self.ended = _after(self.ended, row)
        self.history.append(row)
        for series in SERIES:
            record = _epoch_event(series, row, self.ended)
            path = self.folder / LOG_DIR / series / EVENTS
            if record is None:
                continue
            if path.exists():
                with open(path, "ab") as f:
                    f.write(record)
            else:
                _sync(path, series_bytes(series, self.start, self.history))
        return None


def _sync_whole(path: Path, expected: bytes) -> None:
    if not (path.is_file() and path.read_bytes() == expected):
        path.parent.mkdir(parents=True, exist_ok=True)
        rundir.atomic_write(path, expected)


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
    images, at the step of the run's last epoch. Rewritten whole by each evaluation. Returns the
    file written."""
    folder = Path(folder)
    log = open_log(folder, model)  # a run trained before TensorBoard logging gets its curves too
    t, step = log.ended, log.history[-1]["epoch"] if log.history else 0
    figures = [_scalar(k, v) for k, v in metrics.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "size"]
    images = [_image(png[:-4], (folder / name / png).read_bytes())
              for png in ("confusion_matrix.png", "misclassified.png") if (folder / name / png).is_file()]
    data = _header(t) + _record(_event(t, step, summary=_summary(figures + images)))
    path = folder / LOG_DIR / name / EVENTS
    path.parent.mkdir(parents=True, exist_ok=True)
    rundir.atomic_write(path, data)
    return path
