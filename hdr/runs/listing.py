"""Run folders as data, and the table (or JSON) `hdr runs` prints of the runs in a folder.

Reads run.json, config.yaml, metrics.json, history.csv and summary.txt only: never Keras,
TensorFlow or pydantic. In a folder of many runs what was read is kept in an index
(hdr/runs/runindex.py) that is checked against every file's stamp, so that 10,000 runs list in about a
second. A damaged folder is named in one warning line on stderr and left out; the rest are
listed. Folder names are printed with control characters escaped, so a name cannot drive the
terminal.
"""

from __future__ import annotations

import gc
import json
import os
from collections.abc import Sequence
from contextlib import contextmanager
from stat import S_ISDIR, S_ISREG
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import cached_property
from itertools import chain
from pathlib import Path

import click

from hdr.runs import runindex
from hdr.core.errors import HdrError, UsageError
from hdr.core import numbers
from hdr.runs import history as history_mod
from hdr.runs.rundir import DamagedRun, effective_status, read_history
from hdr.runs import rundir

# rundir.PRUNED: ended early by a search's pruner (hdr tune), a decision rather than a failure.
STATUSES = (rundir.RUNNING, rundir.COMPLETED, rundir.FAILED, rundir.INTERRUPTED, rundir.CRASHED, rundir.PRUNED)
# The run.json and metrics.json fields that listings and comparisons use; Run.info and
# Run.metrics hold only these, read from the files or from the index alike.
INFO_KEYS = ("status", "config_name", "dataset", "model", "optimizer", rundir.EPOCHS_PLANNED, rundir.EPOCHS_COMPLETED,
             "seed", "fold", "pid", "host", "pid_started", "reason", "sweep_id", "sweep_point", "sweep_keys",
             "runtime", "data_checksums", rundir.LABEL)
# The user's label (run.json's rundir.LABEL) in a Run's summary, and so in compare's JSON and CSV,
# where "label" already names a run by the config keys that differ.
RUN_LABEL = "run_label"
METRICS_KEYS = (rundir.TEST_ACCURACY, rundir.TEST_LOSS, rundir.VAL_ACCURACY, rundir.TRAIN_SECONDS, rundir.PARAMS)


class Damaged(ValueError):
    """A run folder hdr cannot read; the message says which file and why."""


history_figures = history_mod.figures  # what listings show of a history (hdr/runs/history.py)


class Rows(Sequence):
    """history.csv's rows, read when first used: a listing from the index needs only the figures
    kept there, the curves of hdr compare --out need every row."""

    def __init__(self, folder: Path, limit: int | None = None):
        self.folder, self.limit = folder, limit

    @cached_property
    def _rows(self) -> tuple:
        try:
            return tuple(read_history(Path(self.folder) / rundir.HISTORY, self.limit))
        except (OSError, ValueError):
            return ()  # changed into something unreadable since it was listed: no curve

    def __getitem__(self, i):
        return self._rows[i]

    def __len__(self) -> int:
        return len(self._rows)


@dataclass(frozen=True, eq=False)
class Run:
    """One run folder as read. Build one in memory to test the analysis without files."""

    folder: Path                                # or its text, as the caller named it
    info: dict                                  # run.json's INFO_KEYS
    config: dict = field(default_factory=dict)  # flattened: dotted key -> value (lists of scalars as tuples)
    metrics: dict = field(default_factory=dict)  # metrics.json's METRICS_KEYS
    history: Sequence = ()
    status: str = rundir.COMPLETED
    params: int | None = None                   # from metrics.json, else summary.txt
    figures: tuple | None = None                # history_figures(history), when known without reading it

    @property
    def id(self) -> str:
        return os.fspath(self.folder).rpartition("/")[2]  # os.path.basename, a call less (10,000 runs)

    @property
    def seed(self):
        return self.config.get("training.seed", self.info.get("seed"))

    @property
    def summary(self) -> dict:
        """The figures every listing shows, computed once (kept by hand: cached_property takes
        a lock, a tenth of a second over 10,000 runs)."""
        s = self.__dict__.get("_summary")
        if s is None:
            s = self.__dict__["_summary"] = self._summary()
        return s

    def _summary(self) -> dict:
        m = self.metrics
        best, best_epoch, last_val, epochs, seconds = self.figures or history_figures(self.history)
        if m.get(rundir.TRAIN_SECONDS) is not None:
            seconds = m[rundir.TRAIN_SECONDS]
        return {
            "run": self.id,
            rundir.BEST_VAL_ACCURACY: best,
            rundir.BEST_EPOCH: best_epoch,
            # of the weights the run ended with: the best epoch's where early stopping restored them
            rundir.VAL_ACCURACY: m[rundir.VAL_ACCURACY] if m.get(rundir.VAL_ACCURACY) is not None else last_val,
            rundir.TEST_ACCURACY: m.get(rundir.TEST_ACCURACY),
            rundir.TEST_LOSS: m.get(rundir.TEST_LOSS),
            "epochs": epochs,
            rundir.EPOCHS_PLANNED: self.info.get(rundir.EPOCHS_PLANNED, self.config.get("training.epochs")),
            rundir.TRAIN_SECONDS: seconds,
            rundir.PARAMS: self.params,
            "status": self.status,
            RUN_LABEL: self.info.get(rundir.LABEL),
        }


def _pct(v) -> str:
    return "" if v is None else numbers.pct(v)


def shown(text) -> str:
    """Text safe to print on a terminal: control and other unprintable characters escaped as
    Python writes them in a string literal (\\x1b, \\n)."""
    text = str(text)
    if text.isprintable():  # the common case, checked in C
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def narrow(s: str) -> bool:
    """Whether each character of s takes one column: ASCII, and the ± of compare's tables."""
    return s.isascii() or s.replace("±", "").isascii()


def _cell_width(s: str) -> int:
    if narrow(s):
        return len(s)
    try:
        from wcwidth import wcswidth  # as tabulate measures: wide characters take two columns
    except ImportError:
        return len(s)
    return max(wcswidth(s), 0)


def simple_table(headers, rows, colalign=None, missingval: str = "") -> str:
    """The text of tabulate(rows, headers, tablefmt="simple", disable_numparse=True, colalign=...,
    missingval=...) for cells that are strings or None and headers that may span lines ("\n"):
    tabulate inspects each cell's type and imports in a tenth of a second what this does in
    a hundredth (tests/test_runs.py checks the two agree)."""
    # without rows tabulate aligns every header left
    align = list(colalign or ()) if rows else []
    align += ["left"] * (len(headers) - len(align))
    if any(None in r for r in rows):
        rows = [[missingval.strip() if c is None else c.strip() for c in r] for r in rows]
    else:  # hdr runs: every cell a string
        rows = [list(map(str.strip, r)) for r in rows]
    columns = list(zip(*rows)) if rows else [()] * len(headers)
    head_lines = [h.split("\n") for h in headers]
    ascii_only = narrow("".join(headers)) and all(narrow("".join(col)) for col in columns)  # or ±
    width = len if ascii_only else _cell_width
    widths = [max([max(map(width, h)) + 2, *map(width, col)]) for h, col in zip(head_lines, columns)]
    if ascii_only and all(a == "left" for a in align):  # hdr runs
        def line(cells):
            return "  ".join(map(str.ljust, cells, widths)).rstrip()
    elif ascii_only:
        pads = [str.ljust if a == "left" else str.rjust for a in align]

        def line(cells):
            return "  ".join([pad(c, w) for pad, c, w in zip(pads, cells, widths)]).rstrip()
    else:
        def line(cells):
            return "  ".join([c + " " * (w - _cell_width(c)) if a == "left" else " " * (w - _cell_width(c)) + c
                              for c, w, a in zip(cells, widths, align)]).rstrip()

    # a header of fewer lines is blank below it, as in tabulate's (top-aligned) multi-line rows
    out = [line([h[i] if i < len(h) else "" for h in head_lines]) for i in range(max(map(len, head_lines)))]
    out.append("  ".join("-" * w for w in widths))
    if len(out) > 2:  # multi-line headers: tabulate's multi-line rows, where a row of empty cells has no line
        rows = [r for r in rows if any(r)]
    out += map(line, rows)
    return "\n".join(out)


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
        for line in (folder / rundir.SUMMARY).read_text().splitlines():
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


def _read_core(folder) -> tuple:
    """(info, metrics, history figures, params, whether params came from summary.txt) of a run
    folder: what every listing needs, each field checked (rundir.checked_info ...); the history
    is streamed, so a long one costs time, never memory. Damaged naming the file and field."""
    folder = Path(folder)
    raw = _json_mapping(folder / rundir.RUN, missing_ok=False)
    metrics = _json_mapping(folder / rundir.METRICS, missing_ok=True)
    try:
        rundir.checked_info(raw, folder / rundir.RUN)
        rundir.checked_metrics(metrics, folder / rundir.METRICS)
        figures = history_figures(rundir.iter_history(folder / rundir.HISTORY, rundir.history_limit(raw)))
    except DamagedRun as e:
        raise Damaged(f"{e.name} is damaged ({e.detail})") from None
    except OSError:
        raise Damaged(f"{rundir.HISTORY} is unreadable") from None
    params = metrics.get(rundir.PARAMS)
    used = params is None
    if used:
        params = _read_params(folder)
    return ({k: raw[k] for k in INFO_KEYS if k in raw}, {k: metrics[k] for k in METRICS_KEYS if k in metrics},
            figures, params, used)


def _read_config(folder) -> dict:
    """config.yaml flattened; Damaged when it cannot be read."""
    try:
        cfg = _yaml_load((Path(folder) / rundir.CONFIG).read_text())
    except OSError:
        raise Damaged(f"no {rundir.CONFIG}") from None
    except Exception:  # any YAML error: the folder is damaged
        raise Damaged(f"{rundir.CONFIG} is corrupt") from None
    if not isinstance(cfg, dict):
        raise Damaged(f"{rundir.CONFIG} holds a {type(cfg).__name__}, not a mapping")
    return flatten(cfg)


def _run(folder: Path, core: tuple, flat: dict | None, history=None) -> Run:
    info, metrics, figures, params = core[:4]
    flat = flat or {}
    if "fold" in info:  # cross-validation folds share one config; the fold tells them apart
        flat = {"fold": info["fold"], **flat}
    # The status is decided now, never stored: rundir.RUNNING turns rundir.CRASHED when its process is gone.
    # Run(...) without the frozen dataclass's __init__, which sets each field through
    # object.__setattr__ (a twentieth of a second over 10,000 runs).
    run = object.__new__(Run)
    run.__dict__.update(folder=folder, info=info, config=flat, metrics=metrics,
                        history=Rows(folder, rundir.history_limit(info)) if history is None else history,
                        status=effective_status(info),
                        params=params, figures=figures)
    return run


def load_run(folder: Path, with_config: bool = True) -> Run:
    """The run in folder, read from its files (no index); Damaged naming the file when it cannot
    be read. Failed and interrupted runs have no metrics.json: that is not damage."""
    folder = Path(folder)
    core = _read_core(folder)
    flat = _read_config(folder) if with_config else None
    try:
        history = tuple(read_history(folder / rundir.HISTORY, rundir.history_limit(core[0])))
    except (OSError, ValueError):  # changed since _read_core checked it
        raise Damaged(f"{rundir.HISTORY} is damaged") from None
    return _run(folder, core, flat, history)


def split_folder(folder) -> tuple[str, str]:
    """(parent, name) of a run folder as text: os.path.split's answer, but where it trims slashes;
    the parent "." when none is given."""
    parent, sep, name = str(folder).rpartition("/")
    if parent.endswith("/") or sep and not parent:
        parent, name = os.path.split(str(folder))
    return parent or ".", name


def read_folders(folders, with_config: bool = True, tokens: list | None = None) -> list:
    """Per folder (a Path, or text), its Run or the error reading it (Damaged; runindex.Absent
    without run.json), through the index of each parent folder. Each Run's folder is as given.
    With with_config and a list as tokens, it gets each folder's runindex token, in order."""
    by_parent: dict[str, list[int]] = {}
    names = []
    for i, f in enumerate(folders):
        parent, name = split_folder(f)
        names.append(name)
        by_parent.setdefault(parent, []).append(i)
    out: list = [None] * len(folders)
    got_tokens: list = [None] * len(folders)
    for parent, idx in by_parent.items():
        names_here = [names[i] for i in idx]
        here: list = []
        got = runindex.read(parent, names_here, with_config, _read_core, _read_config, here)
        for i, (core, flat), tok in zip(idx, got, here or [None] * len(idx)):
            out[i] = core if isinstance(core, Exception) else _run(folders[i], core, flat)
            got_tokens[i] = tok
    if tokens is not None:
        tokens += got_tokens
    return out


@contextmanager
def gc_paused():
    """Python's cyclic garbage collector paused: a listing of 10,000 runs makes about a million
    objects and no cycles, and the collector would walk them over and over (0.15 CPU-s)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _warn(msg: str) -> None:
    click.echo(f"hdr: warning: {msg}", err=True)


# ------------------------------------------------------------------------------ finding runs

def _is_file(path: str) -> bool:
    try:
        return S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


# What only a run folder holds: a folder with one of these and no run.json is a damaged run, not
# some other folder (sweeps/, ensembles/, a sweep's logs/).
RUN_ONLY = (rundir.CONFIG, rundir.HISTORY, rundir.MODEL, rundir.SUMMARY)


def unrecorded(folder) -> str | None:
    """Why a folder without run.json is named as a damaged run ("no run.json (it holds ...)");
    None for a folder that holds none of a run's own files."""
    held = [n for n in RUN_ONLY if _is_file(f"{folder}/{n}")]
    return f"no {rundir.RUN} (it holds {', '.join(held)})" if held else None


def _sweep_runs(folder: Path, warn) -> list[Path]:
    """The run folders a sweep folder's sweep.json names (input discovery, not analysis)."""
    try:
        sweep = json.loads((folder / "sweep.json").read_text())
        points = sweep.get("points", [])
        if not isinstance(points, list):
            raise ValueError("not a list")
    except (OSError, ValueError, AttributeError):
        warn(f"skipping {shown(folder)}: sweep.json is unreadable")
        return []
    out = []
    for point in points:
        if isinstance(point, dict) and isinstance(point.get("run"), str) and point["run"]:
            p = folder / point["run"]
            if (p / rundir.RUN).is_file():
                out.append(p)
            else:
                warn(f"{shown(folder)}: run {shown(point['run'])} of point {shown(point.get('label', '?'))} is missing")
    return out


def _prefix(folder) -> str:
    """What str(folder / name) puts before name: children are named as text, as 10,000 Paths
    cost a tenth of a second."""
    base = str(folder)
    return "" if base == "." else base if base.endswith("/") else base + "/"


def _children(folder: Path, verify: bool) -> list[tuple]:
    """(identity, path as text) of the folders in folder holding a run.json (all its folders,
    unchecked, unless verify), by name. Identity is (device, inode), which tells folders apart as
    resolve() would, here read off the listing itself."""
    dev = None
    out = []
    with os.scandir(folder) as entries:
        for e in entries:
            if not e.is_dir() or verify and not _is_file(f"{e.path}/{rundir.RUN}"):
                continue
            if e.is_symlink():
                st = os.stat(e.path)
                key = (st.st_dev, st.st_ino)
            else:
                dev = os.stat(folder).st_dev if dev is None else dev
                key = (dev, e.inode())
            out.append((e.name, key))
    out.sort()
    prefix = _prefix(folder)
    return [(key, prefix + name) for name, key in out]


def _expand(paths, warn, verify: bool) -> list[tuple]:
    """(folder, the number of the argument it came from, whether it was seen to hold a run.json)."""
    out, seen = [], set()
    for i, arg in enumerate(paths):
        p = Path(arg)
        try:
            st = os.stat(p)
        except OSError:
            raise UsageError(f"not found: {shown(p)} (give run folders such as runs/<id>, "
                             "or a sweep or cv folder)") from None
        is_dir, checked = S_ISDIR(st.st_mode), True
        if is_dir and _is_file(f"{p}/{rundir.RUN}"):
            found = [((st.st_dev, st.st_ino), p)]
        elif is_dir and _is_file(f"{p}/sweep.json"):
            found = []
            for f in _sweep_runs(p, warn):
                fst = os.stat(f)
                found.append(((fst.st_dev, fst.st_ino), f))
        elif is_dir:
            found, checked = _children(p, verify), verify
            if not found:
                warn(f"skipping {shown(p)}: not a run folder")
        else:
            warn(f"skipping {shown(p)}: not a run folder")
            found = []
        for key, f in found:
            if key not in seen:
                seen.add(key)
                out.append((f, i, checked))
    return out


def expand(paths, warn) -> list[Path]:
    """Run folders named by the arguments. A sweep folder gives its runs, any other folder of
    run folders (a cv folder, a runs folder) gives its children; anything else is skipped. A
    folder named twice (by another path too) is listed once."""
    return [Path(f) for f, _, _ in _expand(paths, warn, verify=True)]


def load_runs(paths, warn=None) -> list[Run]:
    """The readable runs of the folders named; each damaged one is named in a warning."""
    warn, paths = warn or _warn, list(paths)
    # The children of a folder of runs are not checked for run.json first: reading them does.
    return load_found(paths, find(paths, warn), warn)


def find(paths, warn) -> list[tuple]:
    """The folders load_runs reads for paths: (folder, the number of the argument it came from,
    whether it was seen to hold a run.json); sweep folders and folders of runs are expanded."""
    return _expand(paths, warn, verify=False)


def load_found(paths, found, warn, tokens: list | None = None) -> list[Run]:
    """The readable runs of found (find(paths)); damaged ones are named in warnings. tokens: as
    read_folders."""
    runs = []
    unchecked: dict[int, bool] = {}  # argument -> whether any of its folders holds a run.json
    for (folder, arg, checked), got in zip(found, read_folders([f for f, _, _ in found], tokens=tokens)):
        if not checked:
            unchecked[arg] = unchecked.get(arg, False) or not isinstance(got, runindex.Absent)
        if isinstance(got, Run):
            runs.append(got)
        elif isinstance(got, runindex.Absent):
            if checked:
                warn(f"skipping {shown(folder)}: it no longer holds a {rundir.RUN}")
            elif why := unrecorded(folder):
                warn(f"skipping {shown(folder)}: {why}")
        elif isinstance(got, Damaged):
            warn(f"skipping {shown(folder)}: {got}")
        else:
            raise got
    for arg, any_run in unchecked.items():
        if not any_run:
            warn(f"skipping {shown(Path(paths[arg]))}: not a run folder")
    return runs


# ------------------------------------------------------------------------------ hdr runs

def _record(run: Run) -> dict:
    s, info = run.summary, run.info
    return {
        "id": s["run"], "folder": str(run.folder), "status": run.status,
        "config": info.get("config_name", ""), "dataset": info.get("dataset", ""),
        "model": info.get("model", ""), "optimizer": info.get("optimizer", ""),
        rundir.EPOCHS_COMPLETED: s["epochs"], rundir.EPOCHS_PLANNED: info.get(rundir.EPOCHS_PLANNED),
        rundir.BEST_VAL_ACCURACY: s[rundir.BEST_VAL_ACCURACY], rundir.BEST_EPOCH: s[rundir.BEST_EPOCH],
        rundir.TEST_ACCURACY: s[rundir.TEST_ACCURACY], rundir.LABEL: info.get(rundir.LABEL),
    }


def has_label(run: Run, patterns) -> bool:
    """Whether the run's label matches one of patterns: exactly, or as a shell pattern where one
    holds * ? or [ (--label 'baseline*'). A run without a label matches none."""
    label = run.info.get(rundir.LABEL)
    return bool(label) and any(fnmatchcase(label, p) for p in patterns)


def parse_statuses(items) -> set[str] | None:
    """--status values, repeated or comma-separated; None when none was given."""
    wanted = {s.strip() for item in items or () for s in item.split(",") if s.strip()}
    bad = sorted(wanted - set(STATUSES))
    if bad:
        raise UsageError(f"--status {bad[0]}: unknown status; allowed: {', '.join(STATUSES)}")
    return wanted or None


def list_runs(runs_dir: Path, show_all: bool = False, statuses=None, as_json: bool = False, warn=None,
              labels=()) -> str:
    """The runs in runs_dir as a table (or JSON). show_all also lists folders that are not
    runs; statuses keeps only runs whose status is one of them, labels those whose label matches
    one of them (has_label). The archive (rundir.ARCHIVE) is listed only when named as runs_dir."""
    warn = warn or _warn
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise UsageError(f"runs folder not found: {shown(runs_dir)} (train something first, or give the folder)")
    records, others = [], []
    with os.scandir(runs_dir) as entries:
        names = sorted(e.name for e in entries if e.is_dir() and e.name not in (rundir.ARCHIVE, rundir.TRASH))
    prefix = _prefix(runs_dir)
    folders = [prefix + n for n in names]
    for name, folder, run in zip(names, folders, read_folders(folders, with_config=False)):
        if isinstance(run, runindex.Absent):
            why = unrecorded(folder)
            if why:
                warn(f"skipping {shown(folder)}: {why}")
            others.append({"id": name, "status": "damaged" if why else "not a run"})
            continue
        if isinstance(run, Damaged):
            warn(f"skipping {shown(folder)}: {run}")
            others.append({"id": name, "status": "damaged"})
            continue
        if isinstance(run, Exception):
            raise run
        if (statuses is None or run.status in statuses) and (not labels or has_label(run, labels)):
            records.append(_record(run))
    if show_all and statuses is None and not labels:
        records += others
    if as_json:
        return json.dumps(records, indent=2)
    if not records:
        return (f"no runs in {shown(runs_dir)}" + (f" with status {', '.join(sorted(statuses))}" if statuses else "")
                + (f" labelled {' or '.join(labels)}" if labels else ""))

    rows = [[str(r["id"]), str(r["status"]), str(r.get("config", "")), str(r.get("dataset", "")),
             str(r.get("model", "")), str(r.get("optimizer", "")),
             f"{r[rundir.EPOCHS_COMPLETED]}/{r[rundir.EPOCHS_PLANNED] if r[rundir.EPOCHS_PLANNED] is not None else '?'}"
             if rundir.EPOCHS_COMPLETED in r else "", _pct(r.get(rundir.BEST_VAL_ACCURACY)), _pct(r.get(rundir.TEST_ACCURACY))]
            for r in records]
    if not "".join(chain.from_iterable(rows)).isprintable():  # checked once, not per cell
        rows = [list(map(shown, r)) for r in rows]
    headers = ["id", "status", "config", "dataset", "model", "optimizer", "epochs", "best val %", "test acc %"]
    if any(r.get(rundir.LABEL) for r in records):  # a column only where some run has a label
        headers.append(rundir.LABEL)
        for row, r in zip(rows, records):
            row.append(shown(r.get(rundir.LABEL) or ""))
    return simple_table(headers, rows)


# ------------------------------------------------------------------------------ hdr runs --set-label, --archive, --delete

def _checked_runs(paths, why_not) -> list[Path]:
    """The run folders named, each named once; UsageError naming the first that why_not refuses,
    before anything is changed."""
    out, seen = [], set()
    for p in map(Path, paths):
        why = why_not(p)
        if why:
            raise UsageError(f"{shown(p)}: {why}; nothing was changed")
        key = os.path.realpath(p)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def _labellable(p: Path) -> str | None:
    if not p.is_dir() or not (p / rundir.RUN).is_file():
        return f"not a run folder (it holds no {rundir.RUN})"
    return "it is training; set its label once it has ended" if rundir.in_use(p) else None


def label_runs(paths, text: str) -> list[str]:
    """Set (or, with "", remove) the label of each run; a line per run."""
    label = rundir.checked_label(text, "--set-label")
    folders = _checked_runs(paths, _labellable)
    for f in folders:
        rundir.set_label(f, label)
    return [f"{shown(f)}: label {label!r}" if label else f"{shown(f)}: label removed" for f in folders]


def _line(folder: Path) -> str:
    """A run as the confirmation prompt lists it: folder, status, label."""
    try:
        info = rundir.read_info(folder)
        status, label = effective_status(info), info.get(rundir.LABEL)
    except UsageError:  # a damaged run.json: it may still go
        status, label = "damaged", None
    return "  " + "  ".join(shown(x) for x in (folder, status, label) if x)


def remove_runs(paths, how: str, confirm) -> list[str]:
    """Archive (how="archive") or delete (how="delete") the run folders paths name, once
    confirm(prompt) says yes; a line per run. Every folder is checked first (rundir.removable):
    a link, a folder that is not a run, a run in training, a run archived already (to archive)
    stops the whole command with nothing changed."""
    def why_not(p):
        why = rundir.removable(p)
        if why is None and how == "archive" and Path(os.path.abspath(p)).parent.name == rundir.ARCHIVE:
            why = f"it is archived already (to bring it back: mv {shown(p)} {shown(Path(p).parent.parent)}/)"
        return why

    folders = _checked_runs(paths, why_not)
    verb = {"archive": f"Archive (move into {rundir.ARCHIVE}/ beside it)", "delete": "Delete for good"}[how]
    n = f"{len(folders)} run{'s' if len(folders) > 1 else ''}"
    if not confirm("\n".join([f"{verb}: {n}", *map(_line, folders), "Go ahead?"])):
        return []
    done = []
    for f in folders:
        try:
            if how == "archive":
                done.append(f"archived {shown(f)} -> {shown(rundir.archive(f))}")
            else:
                rundir.delete(f)
                done.append(f"deleted {shown(f)}")
        except OSError as e:
            gone = f" ({len(done)} of {n} done)" if done else ""
            raise HdrError(f"{shown(f)}: cannot {how} it: {e.strerror}{gone}") from None
    return done
