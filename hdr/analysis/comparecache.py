"""`.hdr-compare`: the last `hdr compare`'s result over a folder of runs, kept beside its index
(hdr/runs/runindex.py), so that comparing the same 10,000 runs again renders it instead of building
and analysing every run again (most of a second).

The result is used only when everything it was computed from is as it was: the same arguments,
the same folders found for them (named alike, in the same order), the same --sort, the same hdr
source files (their stamps) and Python, each folder's runindex token the same (the inode, size,
mtime and ctime of the five files a comparison reads, taken before they were read), and every
status that depends on a live process (rundir.RUNNING or rundir.CRASHED) decided the same now. Anything
else (a run added, deleted, resumed, finished or edited, a file damaged or deleted) and the runs
are read (through the index) and analysed afresh, and the file is rewritten. It is written only
when every token is settled (runindex.MARGIN_NS), whole, by rename, each part with its CRC; a
file that is damaged, half-written, of another version or gone is ignored. The warnings that
reading the folders gave (a damaged run) are kept with the result and given again. Like the
index it is off under HDR_RUNS_INDEX=0 and below runindex.MIN_RUNS folders.

The file: three lines of JSON. 1: the header (format, version, CRC-32 of lines 2 and 3). 2: the
key: a digest of the inputs, every folder's token, the live runs' processes and statuses. 3: the
result and the warnings, parsed only when the key matches.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from hdr.runs import runindex
from hdr.analysis import compare
from hdr.analysis.compare import Group, Result, Row
from hdr.analysis.stats import Stat
from hdr.runs.rundir import effective_status
from hdr.runs.listing import Rows, Run, _warn, find, load_found, split_folder
from hdr.runs import rundir

NAME = ".hdr-compare"
VERSION = 1
HEADER = {"format": "hdr-compare", "version": VERSION}


class Key:
    """What a kept result must have been computed from, taken before any run is read."""

    def __init__(self, place: str, inputs: str, settled: bool):
        self.place, self.inputs, self.settled = place, inputs, settled


def key(paths, found, sort_key) -> Key | None:
    """The key of comparing found (hdr.runs.find(paths)) with --sort sort_key; None when no
    result is kept for it (switched off, few folders, folders of more than one parent)."""
    if not runindex.enabled() or len(found) < runindex.MIN_RUNS:
        return None
    parents = {split_folder(f)[0] for f, _, _ in found}
    if len(parents) != 1:
        return None
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the hdr package: every layer
    names = sorted(os.path.relpath(os.path.join(d, n), here) for d, _, files in os.walk(here)
                   for n in files if n.endswith(".py"))
    code = runindex._stamps(here, names)  # an edited hdr computes the result afresh
    text = json.dumps([VERSION, runindex._PYTHON, sort_key, [str(p) for p in paths],
                       [[str(f), arg, checked] for f, arg, checked in found], names, code])
    return Key(parents.pop(), hashlib.sha256(text.encode()).hexdigest(),
               runindex._settled(code, time.time_ns() - runindex.MARGIN_NS))


def load(k: Key | None, found) -> tuple[Result, list[str]] | None:
    """(the result, the warnings reading gave) kept for exactly k and found as they are now;
    None when there is none."""
    if k is None:
        return None
    try:
        with open(f"{k.place}/{NAME}", "rb") as f:
            data = f.read()
    except OSError:
        return None
    lines = runindex.unframe(data, HEADER)
    if lines is None:
        return None
    try:
        head = json.loads(lines[0])
        tokens = head["tokens"]
        if head["inputs"] != k.inputs or len(tokens) != len(found):
            return None
        stamps, digest, files = runindex._stamps, runindex._digest, runindex._ALL
        for (folder, _, _), token in zip(found, tokens):
            if digest(stamps(str(folder), files)) != token:
                return None
        for pid, host, started, status in head["live"]:
            if effective_status({"status": rundir.RUNNING, "pid": pid, "host": host, "pid_started": started}) != status:
                return None
        doc = json.loads(lines[1])
        return _decode(doc["result"], found), list(doc["warnings"])
    except (ValueError, KeyError, TypeError, IndexError):
        return None  # not one this version wrote: computed afresh


def save(k: Key | None, found, tokens: list, runs: list[Run], result: Result, warnings: list[str]) -> None:
    """Keep result, computed from runs (read from found, whose tokens are given) with these
    warnings, for load(k, found); not when any input changed too recently to be told apart."""
    if k is None or not k.settled or len(tokens) != len(found) or None in tokens:
        return
    try:
        live = [[r.info.get("pid"), r.info.get("host"), r.info.get("pid_started"), r.status]
                for r in runs if r.info.get("status") == rundir.RUNNING]
        line2 = json.dumps({"inputs": k.inputs, "tokens": tokens, "live": live}, separators=(",", ":")).encode()
        line3 = json.dumps({"result": _encode(result, runs, found), "warnings": list(warnings)},
                           separators=(",", ":")).encode()
    except (TypeError, ValueError):
        return  # a value JSON cannot hold (a YAML date): not kept
    from hdr.runs.rundir import replacing

    try:
        with replacing(Path(k.place) / NAME) as tmp:
            tmp.write_bytes(runindex.frame(HEADER, line2, line3))
    except OSError:
        pass  # a read-only or full folder: comparisons work without it


# ------------------------------------------------------------------------------ the result as JSON

def _encode(result: Result, runs: list[Run], found) -> dict:
    """The result as plain data; each run as what the views read of it (its folder by its place
    in found, seed, differing keys' values, summary). ValueError when it cannot be."""
    where = {id(f): i for i, (f, _, _) in enumerate(found)}
    number = {id(r): n for n, r in enumerate(runs)}
    keys = result.keys
    summary_keys = list(runs[0].summary) if runs else []
    schemas: dict[tuple, int] = {}
    enc_runs = []
    for r in runs:
        s = r.summary
        if list(s) != summary_keys:
            raise ValueError("runs of different summaries")
        cfg = r.config
        present = tuple(k for k in keys if k in cfg)
        sid = schemas.setdefault(present, len(schemas))
        enc_runs.append([where[id(r.folder)], r.seed, sid, [cfg[k] for k in present], list(s.values())])
    if any(row.keys != keys for row in result.rows):
        raise ValueError("rows of other keys")
    return {
        "summary_keys": summary_keys, "schemas": [list(s) for s in schemas], "runs": enc_runs,
        "rows": [[number[id(row.run)], row.delta, row.best] for row in result.rows],
        "keys": list(keys), "group_keys": list(result.group_keys),
        "groups": None if result.groups is None else [
            [g.label, g.values, [number[id(r)] for r in g.runs], g.seeds, {m: list(st) for m, st in g.stats.items()},
             g.params, g.status, g.delta, g.noise, g.best] for g in result.groups],
        "notes": list(result.notes), "sort_keys": list(result.sort_keys), "ranked_by": result.ranked_by,
        "sort_key": result.sort_key,
    }


def _value(v):
    """A config value as flatten() gives it: JSON's lists were tuples."""
    return tuple(v) if type(v) is list else v


def _decode(doc: dict, found) -> Result:
    summary_keys = doc["summary_keys"]
    schemas = [tuple(s) for s in doc["schemas"]]
    runs = []
    for place, seed, sid, values, summary in doc["runs"]:
        folder = found[place][0]
        s = dict(zip(summary_keys, summary))
        run = object.__new__(Run)  # as hdr.runs._run builds them
        run.__dict__.update(folder=folder, info={"seed": _value(seed)},
                            config=dict(zip(schemas[sid], map(_value, values))), metrics={},
                            history=Rows(folder), status=s["status"], params=s[rundir.PARAMS], figures=None,
                            _summary=s)
        runs.append(run)
    keys = tuple(doc["keys"])
    rows = []
    for n, delta, best in doc["rows"]:
        row = object.__new__(Row)
        row.__dict__.update(run=runs[n], keys=keys, delta=delta, best=best)
        rows.append(row)
    groups = None
    if doc["groups"] is not None:
        groups = tuple(Group(label, {k: _value(v) for k, v in values.items()}, tuple(runs[n] for n in members),
                             seeds, {m: Stat(*st) for m, st in stats.items()}, params, status, delta, noise, best)
                       for label, values, members, seeds, stats, params, status, delta, noise, best in doc["groups"])
    return Result(tuple(rows), keys, tuple(doc["group_keys"]), groups, tuple(doc["notes"]),
                  tuple(doc["sort_keys"]), ranked_by=doc["ranked_by"], sort_key=doc["sort_key"])


# ------------------------------------------------------------------------------ comparing

def compared(paths, sort_key: str | None = None, warn=None) -> Result:
    """analyse() of the runs that paths name, each damaged one named in a warning; or the result
    kept for exactly these inputs in a folder of many runs."""
    warn, paths = warn or _warn, list(paths)
    found = find(paths, warn)
    k = key(paths, found, sort_key)
    kept = load(k, found)
    if kept is not None:
        result, said = kept
        for msg in said:
            warn(msg)
        return result
    said, tokens = [], []

    def note(msg):
        said.append(msg)
        warn(msg)

    runs = load_found(paths, found, note, tokens)
    result = compare.analyse(runs, sort_key)
    save(k, found, tokens, runs, result, said)
    return result
