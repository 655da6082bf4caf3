"""Run folders as data, and `hdr runs`: a table (or JSON) of the runs in a folder.

Reads run.json, config.yaml, metrics.json and history.csv only: never Keras, TensorFlow or
pydantic. A damaged folder is named in one warning line on stderr and left out; the rest are
listed. Folder names are printed with control characters escaped, so a name cannot drive the
terminal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import click

from hdr.errors import UsageError
from hdr.history import best_val
from hdr.rundir import effective_status, read_history

STATUSES = ("running", "completed", "failed", "interrupted", "crashed")


class Damaged(ValueError):
    """A run folder hdr cannot read; the message says which file and why."""


@dataclass(frozen=True, eq=False)
class Run:
    """One run folder as read. Build one in memory to test the analysis without files."""

    folder: Path
    info: dict
    config: dict = field(default_factory=dict)  # flattened: dotted key -> value (lists of scalars as tuples)
    metrics: dict = field(default_factory=dict)
    history: tuple = ()
    status: str = "completed"
    params: int | None = None                   # from metrics.json, else summary.txt

    @property
    def id(self) -> str:
        return Path(self.folder).name

    @property
    def seed(self):
        return self.config.get("training.seed", self.info.get("seed"))

    @cached_property
    def summary(self) -> dict:
        """The figures every listing shows, computed once."""
        hist, m = self.history, self.metrics
        best, best_epoch = best_val(hist)
        seconds = m.get("train_seconds")
        if seconds is None and hist:
            seconds = round(sum(r.get("seconds") or 0 for r in hist), 3)
        return {
            "run": self.id,
            "best_val_accuracy": best,
            "best_epoch": best_epoch,
            "val_accuracy": hist[-1].get("val_accuracy") if hist else None,
            "test_accuracy": m.get("test_accuracy"),
            "test_loss": m.get("test_loss"),
            "epochs": len(hist),
            "epochs_planned": self.info.get("epochs_planned", self.config.get("training.epochs")),
            "train_seconds": seconds,
            "params": self.params,
            "status": self.status,
        }


def shown(text) -> str:
    """Text safe to print on a terminal: control and other unprintable characters escaped as
    Python writes them in a string literal (\\x1b, \\n)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def flatten(obj, prefix: str = "") -> dict:
    """Nested mappings to dotted keys. A list of plain values stays one value (a tuple, shown
    as [a, b]); a list holding mappings (conv blocks) is indexed: model.conv.0.filters."""
    out = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}{k}."))
    elif isinstance(obj, list) and any(isinstance(v, (dict, list)) for v in obj):
        for i, v in enumerate(obj):
            out.update(flatten(v, f"{prefix}{i}."))
    elif isinstance(obj, list):
        out[prefix[:-1]] = tuple(obj)
    elif prefix:
        out[prefix[:-1]] = obj
    return out


def _yaml_load(text: str):
    import yaml

    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # C loader: ~10x faster


def _read_params(folder: Path) -> int | None:
    """Parameter count from summary.txt, for runs that ended before writing metrics.json."""
    try:
        for line in (folder / "summary.txt").read_text().splitlines():
            if "Total params:" in line:
                return int(line.split("Total params:")[1].split()[0].replace(",", ""))
    except (OSError, ValueError, IndexError):
        pass
    return None


def _json_mapping(path: Path, missing_ok: bool) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        if missing_ok:
            return {}
        raise Damaged(f"no {path.name}") from None
    except (OSError, ValueError):
        raise Damaged(f"{path.name} is unreadable or corrupt") from None
    if not isinstance(data, dict):
        raise Damaged(f"{path.name} holds a {type(data).__name__}, not a mapping")
    return data


def load_run(folder: Path, with_config: bool = True) -> Run:
    """The run in folder; Damaged naming the file when it cannot be read. Failed and interrupted
    runs have no metrics.json: that is not damage."""
    folder = Path(folder)
    info = _json_mapping(folder / "run.json", missing_ok=False)
    cfg = {}
    if with_config:
        try:
            cfg = _yaml_load((folder / "config.yaml").read_text())
        except OSError:
            raise Damaged("no config.yaml") from None
        except Exception:  # any YAML error: the folder is damaged
            raise Damaged("config.yaml is corrupt") from None
        if not isinstance(cfg, dict):
            raise Damaged(f"config.yaml holds a {type(cfg).__name__}, not a mapping")
    metrics = _json_mapping(folder / "metrics.json", missing_ok=True)
    try:
        history = tuple(read_history(folder / "history.csv"))
    except (OSError, ValueError):
        raise Damaged("history.csv is damaged (not hdr's columns or not numbers)") from None
    flat = flatten(cfg)
    if "fold" in info:  # cross-validation folds share one config; the fold tells them apart
        flat = {"fold": info["fold"], **flat}
    params = metrics.get("params")
    return Run(folder, info, flat, metrics, history, effective_status(info),
               params if params is not None else _read_params(folder))


def _warn(msg: str) -> None:
    click.echo(f"hdr: warning: {msg}", err=True)


# ------------------------------------------------------------------------------ finding runs

def _sweep_runs(folder: Path, warn) -> list[Path]:
    """The run folders a sweep folder's sweep.json names (input discovery, not analysis)."""
    try:
        sweep = json.loads((folder / "sweep.json").read_text())
        points = sweep.get("points", [])
    except (OSError, ValueError, AttributeError):
        warn(f"skipping {shown(folder)}: sweep.json is unreadable")
        return []
    out = []
    for point in points:
        if isinstance(point, dict) and point.get("run"):
            p = folder / point["run"]
            if (p / "run.json").is_file():
                out.append(p)
            else:
                warn(f"{shown(folder)}: run {shown(point['run'])} of point {shown(point.get('label', '?'))} is missing")
    return out


def expand(paths, warn) -> list[Path]:
    """Run folders named by the arguments. A sweep folder gives its runs, any other folder of
    run folders (a cv folder, a runs folder) gives its children; anything else is skipped."""
    out, seen = [], set()
    for arg in paths:
        p = Path(arg)
        if not p.exists():
            raise UsageError(f"not found: {shown(p)} (give run folders such as runs/<id>, or a sweep or cv folder)")
        if p.is_dir() and (p / "run.json").is_file():
            found = [p]
        elif p.is_dir() and (p / "sweep.json").is_file():
            found = _sweep_runs(p, warn)
        elif p.is_dir():
            found = sorted(c for c in p.iterdir() if (c / "run.json").is_file())
            if not found:
                warn(f"skipping {shown(p)}: not a run folder")
        else:
            warn(f"skipping {shown(p)}: not a run folder")
            found = []
        for f in found:
            key = f.resolve()
            if key not in seen:
                seen.add(key)
                out.append(f)
    return out


def load_runs(paths, warn=None) -> list[Run]:
    """The readable runs of the folders named; each damaged one is named in a warning."""
    warn = warn or _warn
    runs = []
    for folder in expand(paths, warn):
        try:
            runs.append(load_run(folder))
        except Damaged as e:
            warn(f"skipping {shown(folder)}: {e}")
    return runs


# ------------------------------------------------------------------------------ hdr runs

def _record(run: Run) -> dict:
    s, info = run.summary, run.info
    return {
        "id": run.id, "folder": str(run.folder), "status": run.status,
        "config": info.get("config_name", ""), "dataset": info.get("dataset", ""),
        "model": info.get("model", ""), "optimizer": info.get("optimizer", ""),
        "epochs_completed": s["epochs"], "epochs_planned": info.get("epochs_planned"),
        "best_val_accuracy": s["best_val_accuracy"], "best_epoch": s["best_epoch"],
        "test_accuracy": s["test_accuracy"],
    }


def parse_statuses(items) -> set[str] | None:
    """--status values, repeated or comma-separated; None when none was given."""
    wanted = {s.strip() for item in items or () for s in item.split(",") if s.strip()}
    bad = sorted(wanted - set(STATUSES))
    if bad:
        raise UsageError(f"--status {bad[0]}: unknown status; allowed: {', '.join(STATUSES)}")
    return wanted or None


def list_runs(runs_dir: Path, show_all: bool = False, statuses=None, as_json: bool = False, warn=None) -> str:
    """The runs in runs_dir as a table (or JSON). show_all also lists folders that are not
    runs; statuses keeps only runs whose status is one of them."""
    warn = warn or _warn
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise UsageError(f"runs folder not found: {shown(runs_dir)} (train something first, or give the folder)")
    records, others = [], []
    for folder in sorted(p for p in runs_dir.iterdir() if p.is_dir()):
        if not (folder / "run.json").is_file():
            others.append({"id": folder.name, "status": "not a run"})
            continue
        try:
            run = load_run(folder, with_config=False)
        except Damaged as e:
            warn(f"skipping {shown(folder)}: {e}")
            others.append({"id": folder.name, "status": "damaged"})
            continue
        if statuses is None or run.status in statuses:
            records.append(_record(run))
    if show_all and statuses is None:
        records += others
    if as_json:
        return json.dumps(records, indent=2)
    if not records:
        return f"no runs in {shown(runs_dir)}" + (f" with status {', '.join(sorted(statuses))}" if statuses else "")
    from tabulate import tabulate

    def pct(v):
        return "" if v is None else f"{v:.4f}"

    rows = [[shown(r["id"]), r["status"], shown(r.get("config", "")), shown(r.get("dataset", "")),
             shown(r.get("model", "")), shown(r.get("optimizer", "")),
             f"{r['epochs_completed']}/{r['epochs_planned'] if r['epochs_planned'] is not None else '?'}"
             if "epochs_completed" in r else "", pct(r.get("best_val_accuracy")), pct(r.get("test_accuracy"))]
            for r in records]
    headers = ["id", "status", "config", "dataset", "model", "optimizer", "epochs", "best val acc", "test acc"]
    return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)


@click.command()
@click.argument("runs_dir", default="runs", type=click.Path(path_type=str))
@click.option("--all", "show_all", is_flag=True, help="Also list folders that are not complete runs.")
@click.option("--status", "statuses", multiple=True, metavar="STATUS[,STATUS]",
              help=f"Only runs with this status ({', '.join(STATUSES)}); repeat it or give a comma list.")
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON, for scripts.")
def command(runs_dir, show_all, statuses, as_json):
    """List the runs in RUNS_DIR (default: runs): status, progress, best validation accuracy
    (the epoch that reached it is in --json) and test accuracy.

    \b
      hdr runs runs/ --status completed
      hdr runs runs/ --status failed,crashed --json
    """
    click.echo(list_runs(Path(runs_dir), show_all=show_all, statuses=parse_statuses(statuses), as_json=as_json))
