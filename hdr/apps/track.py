"""`hdr track RUN...`: run folders into an MLflow tracking store, through MLflow's own client.

Each run becomes one MLflow run: the resolved config as parameters, history.csv as metric steps
(epoch = step, timed as the TensorBoard events are: the run's start plus its epochs' seconds), the
final and evaluation figures as metrics, the status, the files (config, history, plots, eval
folders, model.keras, exports) as artifacts. The MLflow run's id is recorded in run.json under
"mlflow", per tracking URI, with the folder it was tracked from, so tracking a run again (after a
resume, an evaluation, a move) updates that MLflow run instead of making a second one, while a
copy of the folder (cp -a copies run.json, record and all) gets an MLflow run of its own. MLflow
is imported only by this command.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

import click

from hdr.runs import rundir
from hdr.core.errors import HdrError, UsageError

DEFAULT_EXPERIMENT = "hdr"
WRITES = "hdr track records the MLflow run in its run.json"
# run.json status -> MLflow's RunStatus name
STATUS = {rundir.COMPLETED: "FINISHED", rundir.FAILED: "FAILED", rundir.CRASHED: "FAILED", rundir.INTERRUPTED: "KILLED",
          rundir.PRUNED: "KILLED"}
FILES = (rundir.CONFIG, rundir.RUN, rundir.HISTORY, rundir.METRICS, rundir.SUMMARY, *rundir.CURVES.values())
BATCH = 100   # MLflow's log_batch takes at most 100 params (and 1000 metrics) per call


# ------------------------------------------------------------------------------ the run folders

def runs_folder(folder: Path, info: dict) -> Path:
    """The runs folder a run was trained into: its parent, or for a cv fold (runs/cv/<id>/<run>)
    the folder above the cv folder."""
    folder = Path(folder).absolute()
    return folder.parent.parent.parent if info.get("cv_id") and folder.parent.parent.name == "cv" else folder.parent


def default_uri(folder: Path, info: dict) -> str:
    """$MLFLOW_TRACKING_URI (MLflow's own setting), else a SQLite store beside the runs: MLflow 3's
    local store (it deprecates the file store)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{runs_folder(folder, info) / 'mlflow.db'}"


def select(paths) -> list[tuple[Path, dict]]:
    """The run folders to track with their run.json, each checked before anything is logged. A
    folder of runs (a sweep, cv or runs folder) stands for its runs, of which those still
    training or damaged are left out with a note; such a run named itself is a usage error, and
    so is a run folder that cannot be written."""
    from hdr.runs.listing import expand

    def refuse(msg):
        raise UsageError(f"{msg} (give run folders such as runs/<id>, or a sweep, cv or runs folder)")

    out, seen = [], set()
    for arg in paths:
        named = (Path(arg) / rundir.RUN).is_file()
        for folder in expand([arg], refuse):
            folder = Path(os.path.normpath(folder))
            try:
                folder = rundir.open_run(folder)
                info = rundir.read_info(folder)
                for d in rundir.eval_folders(folder):
                    _metrics_of(d)
            except rundir.DamagedRun as e:
                if named:
                    raise
                click.echo(f"hdr: warning: skipping {folder}: {e.name} is damaged ({e.detail})", err=True)
                continue
            if folder.resolve() in seen:
                continue
            seen.add(folder.resolve())
            status = rundir.effective_status(info)
            if status == rundir.RUNNING:
                if named:
                    raise UsageError(f"{folder} is still running (pid {info.get('pid')}); track it once it ends")
                click.echo(f"hdr: note: skipping {folder}: still running", err=True)
                continue
            rundir.check_writable(folder, WRITES)
            out.append((folder, info))
    if not out:
        raise UsageError("no finished run to track in " + ", ".join(map(str, paths)))
    return out


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


def _iso_ms(text) -> int | None:
    try:
        return _ms(datetime.fromisoformat(text).timestamp())
    except (TypeError, ValueError):
        return None


def _param(value) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(list(value) if isinstance(value, tuple) else value)


def params(folder: Path) -> dict[str, str]:
    """The resolved config, flattened to dotted keys (as hdr compare shows them)."""
    from hdr.engine import config as config_mod
    from hdr.runs.listing import flatten

    cfg = config_mod.load_run_config(folder / rundir.CONFIG).resolved()
    return {k: _param(v) for k, v in flatten(cfg).items()}


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def metrics(folder: Path, info: dict) -> list[tuple[str, float, int, int]]:
    """(key, value, step, timestamp in ms): every epoch of history.csv, then the run's final figures
    (metrics.json) and each evaluation's (eval*/metrics.json, as eval/test_accuracy ...) at the
    last epoch's step."""
    from hdr.engine.tensorboard_log import epoch_times, started

    history = rundir.read_history(folder / rundir.HISTORY, rundir.history_limit(info))
    times = epoch_times(started(info), history)
    out = [(k, float(row[k]), int(row[rundir.EPOCH]), _ms(t)) for row, t in zip(history, times)
           for k in rundir.HISTORY_METRICS if row.get(k) is not None]
    step = int(history[-1][rundir.EPOCH]) if history else 0
    end = _iso_ms(info.get("ended")) or (_ms(times[-1]) if times else _ms(started(info)))
    for k, v in _metrics_of(folder).items():
        if _number(v):
            out.append((f"final_{k}" if k in rundir.HISTORY_METRICS else k, float(v), step, end))
    for d in rundir.eval_folders(folder):
        for k, v in _metrics_of(d).items():
            if _number(v):
                out.append((f"{d.name}/{k}", float(v), step, end))
    return out


def _metrics_of(folder: Path) -> dict:
    """The metrics.json of a run or an evaluation folder, checked (every number finite, so MLflow
    takes it); {} when there is none."""
    return rundir.read_metrics(folder) if (folder / rundir.METRICS).is_file() else {}


def tags(folder: Path, info: dict) -> dict[str, str]:
    from hdr.engine.tensorboard_log import GROUP_PREFIXES

    out = {"hdr.run": folder.name, "hdr.folder": str(folder.absolute()), "hdr.status": rundir.effective_status(info),
           "hdr.config_name": str(info.get("config_name", ""))}
    out.update({f"hdr.{k}": str(v) for k, v in info.items() if k.startswith(GROUP_PREFIXES) and v is not None})
    return out


def artifacts(folder: Path) -> list[tuple[Path, str | None]]:
    """(local path, artifact folder) of what is uploaded: the run's files, model.keras under model/,
    each eval folder and the export folder under their own names."""
    out = [(folder / f, None) for f in FILES if (folder / f).is_file()]
    if (folder / rundir.MODEL).is_file():
        out.append((folder / rundir.MODEL, "model"))
    out += [(d, d.name) for d in rundir.eval_folders(folder)]
    if (folder / rundir.EXPORT).is_dir():
        out.append((folder / rundir.EXPORT, rundir.EXPORT))
    return out


# ------------------------------------------------------------------------------ MLflow

def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:300]


def connect(uri: str):
    """An MlflowClient for uri, checked to answer before anything is logged."""
    scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
    if scheme in ("http", "https"):
        try:  # MLflow's client retries a refused connection for minutes; ask once first
            urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=15).close()
        except urllib.error.HTTPError:
            pass  # something answers; MLflow's own calls say whether it is a tracking server
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise HdrError(f"cannot reach the MLflow tracking server at {uri} ({reason}); start it "
                           "(mlflow server) or give another --uri") from None
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # hdr sends nobody its users' usage
    import logging

    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)  # "Creating initial MLflow database tables"
    try:
        client = MlflowClient(tracking_uri=uri)
        client.search_experiments(max_results=1)
    except MlflowException as e:
        if "unsupported URI" in str(e) or "registered tracking store" in str(e):
            raise UsageError(f"--uri {uri}: not a tracking URI MLflow knows; give a server "
                             "(http://127.0.0.1:5000) or a store (sqlite:///runs/mlflow.db)") from None
        raise HdrError(f"MLflow tracking store {uri}: {_first_line(e)}") from None
    except Exception as e:  # a database that cannot be opened, a server that is not MLflow
        raise HdrError(f"MLflow tracking store {uri}: {_first_line(e)}") from None
    return client


def _artifact_root(uri: str) -> str | None:
    """For a SQLite store: artifacts in mlartifacts/ beside the database (MLflow would put them in
    ./mlruns of whatever folder the command runs in). Other stores (a server) choose their own."""
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///"):]).absolute().parent / "mlartifacts").as_uri()
    return None


def experiment_id(client, name: str, uri: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is None:
        return client.create_experiment(name, artifact_location=_artifact_root(uri))
    if exp.lifecycle_stage != "active":
        raise UsageError(f"experiment {name!r} is deleted in {uri}; restore it (mlflow experiments restore) "
                         "or give another --experiment")
    return exp.experiment_id


def _record(info: dict, uri: str) -> dict:
    """run.json's record of the MLflow run at uri; {} when there is none (or not one hdr wrote)."""
    rec = (info.get("mlflow") or {}).get(uri)
    return rec if isinstance(rec, dict) and isinstance(rec.get("run_id"), str) else {}


def _copied_from(existing, record: dict, folder: Path, uri: str) -> Path | None:
    """The run folder that the recorded MLflow run belongs to, when that is another folder that
    still records it: this one is a copy (cp -a copies run.json, and so the record). None when
    the record is this folder's own, or its folder is gone (the run was moved)."""
    recorded = record.get("folder") or existing.data.tags.get("hdr.folder")  # the tag: records of before
    if not isinstance(recorded, str):
        return None
    other = Path(recorded)
    try:
        if other.resolve() == folder.resolve():
            return None
        theirs = _record(rundir.read_info(other), uri)
    except (OSError, ValueError):
        return None
    return other if theirs.get("run_id") == existing.info.run_id else None


def _existing(client, run_id: str | None):
    """The MLflow run recorded earlier, if the store still has it (not deleted)."""
    from mlflow.exceptions import MlflowException

    if not run_id:
        return None
    try:
        run = client.get_run(run_id)
    except MlflowException:
        return None
    return run if run.info.lifecycle_stage == "active" else None


def track(client, uri: str, exp_id: str, folder: Path, info: dict) -> tuple[str, bool, list[str]]:
    """Log one run folder; returns (MLflow run id, whether it was created, notes). A run created
    here and not logged whole is deleted again, so a failure leaves no half run behind."""
    from mlflow.entities import Metric, Param, RunTag

    record = _record(info, uri)
    existing = _existing(client, record.get("run_id"))
    run_params, notes = params(folder), []
    original = _copied_from(existing, record, folder, uri) if existing is not None else None
    if original is not None:
        notes.append(f"its run.json names MLflow run {existing.info.run_id} of {original}, of which this folder is "
                     "a copy: tracked as a new MLflow run")
        existing = None
    run_metrics, run_tags = metrics(folder, info), tags(folder, info)
    start = _iso_ms(info.get("started"))
    if existing is None:
        run_id = client.create_run(exp_id, start_time=start, run_name=folder.name).info.run_id
    else:
        run_id = existing.info.run_id
        if existing.info.experiment_id != exp_id:  # MLflow cannot move a run between experiments
            notes.append(f"stays in experiment {existing.info.experiment_id}, where it was first tracked")
        logged = existing.data.params
        for k in [k for k in run_params if k in logged]:
            if logged[k] != run_params[k]:  # MLflow keeps a parameter's first value
                notes.append(f"{k} is {run_params[k]} now, {logged[k]} in MLflow (which keeps a parameter's first value)")
            del run_params[k]
    try:
        items = [Param(k, v) for k, v in run_params.items()]
        for i in range(0, len(items), BATCH):
            client.log_batch(run_id, params=items[i:i + BATCH])
        tag_items = [RunTag(k, v) for k, v in run_tags.items()]
        for i in range(0, len(tag_items), BATCH):
            client.log_batch(run_id, tags=tag_items[i:i + BATCH])
        # Same key, value, step and time as before: MLflow's store keeps one (a second track adds nothing)
        ms = [Metric(k, v, t, s) for k, v, s, t in run_metrics]
        for i in range(0, len(ms), 1000):
            client.log_batch(run_id, metrics=ms[i:i + 1000])
        for path, where in artifacts(folder):
            if path.is_dir():
                client.log_artifacts(run_id, str(path), where)
            else:
                client.log_artifact(run_id, str(path), where)
        status = STATUS.get(rundir.effective_status(info), "FAILED")
        client.set_terminated(run_id, status, end_time=_iso_ms(info.get("ended")))
    except BaseException:
        if existing is None:
            try:
                client.delete_run(run_id)
            except Exception:
                pass
        raise
    return run_id, existing is None, notes


def record(folder: Path, uri: str, exp_id: str, experiment: str, run_id: str) -> None:
    """The MLflow run in run.json, per tracking URI, with the folder it was tracked from (a copy's
    is another), read fresh and rewritten atomically."""
    info = rundir.read_info(folder)
    runs = dict(info.get("mlflow") or {})
    runs[uri] = {"run_id": run_id, "experiment_id": exp_id, "experiment": experiment, "tracked": rundir.now_iso(),
                 "folder": str(folder.resolve())}
    rundir.RunInfo(folder, info).update(mlflow=runs)


def track_runs(paths, uri: str | None, experiment: str):
    """Track every finished run that paths name (hdr track), saying a line for each as it goes."""
    chosen = select(paths)
    uri = uri or default_uri(*chosen[0])
    client = connect(uri)
    exp_id = experiment_id(client, experiment, uri)
    for folder, info in chosen:
        with rundir.writing_into(folder, WRITES), rundir.owned(folder):  # no resume rewrites run.json meanwhile
            info = rundir.read_info(folder)
            try:
                run_id, created, notes = track(client, uri, exp_id, folder, info)
            except HdrError:
                raise
            except Exception as e:
                raise HdrError(f"{folder}: logging to MLflow at {uri} failed: {_first_line(e)}") from None
            record(folder, uri, exp_id, experiment, run_id)
        for note in notes:
            click.echo(f"hdr: note: {folder}: {note}", err=True)
        yield f"{folder}: MLflow run {run_id} ({'new' if created else 'updated'})"
    yield f"tracked {len(chosen)} run{'s' if len(chosen) != 1 else ''} in experiment {experiment!r} at {uri}"
