"""`hdr compare`: one table over many run folders, and a warning when the comparison is unfair.

`analyse(runs)` is the comparison as data: runs in (hdr.runs.Run, read from run folders or
built in memory), a `Result` out, no file touched. Text, markdown, CSV and JSON below, and the
curves in hdr/core/plots.py, are views of that result. Nothing here imports Keras, TensorFlow or
pydantic, and matplotlib only for --out, so it starts at once and stays fast over hundreds of runs.

The columns that tell runs apart are found, not given: every config.yaml is flattened to dotted
keys and the keys whose values are not all equal become columns (as Guild's --skip-unchanged
does). Runs that repeat a setting are grouped: mean ± std across distinct seeds (runs repeating
a seed are one sample), and gaps smaller than the seed noise are flagged. Settings are ranked by
validation accuracy at each run's best epoch, never by test accuracy, which is shown beside it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import textwrap
from dataclasses import dataclass, replace
from itertools import chain, repeat
from pathlib import Path
from typing import NamedTuple

from hdr.analysis.stats import Stat, sample_of, seed_means, seeds_text, stat, within_noise
from hdr.core import numbers
from hdr.core.errors import UsageError
from hdr.runs.rundir import atomic_write
from hdr.runs.listing import RUN_LABEL, Run, load_runs, narrow, shown, simple_table  # noqa: F401  (load_runs: for callers)
from hdr.runs import rundir

SEED_KEY = "training.seed"
# What settings are ranked by: the validation accuracy at each run's best epoch. Never the test
# accuracy, which would make the test set a validation set.
RANK_METRIC = rundir.BEST_VAL_ACCURACY
# Config keys that change what a number means; a difference in them is flagged unless it is
# the thing being compared.
CONFOUNDING_KEYS = ("training.batch_size", "training.epochs", "dataset.validation_split")
# Descending: larger is better. Every other column sorts ascending.
DESCENDING = {rundir.BEST_VAL_ACCURACY, rundir.VAL_ACCURACY, rundir.TEST_ACCURACY}
METRIC_KEYS = [rundir.BEST_VAL_ACCURACY, rundir.BEST_EPOCH, rundir.VAL_ACCURACY, rundir.TEST_ACCURACY, rundir.TEST_LOSS,
               "epochs", rundir.TRAIN_SECONDS, rundir.PARAMS, "status"]
GROUP_METRICS = (rundir.BEST_VAL_ACCURACY, rundir.VAL_ACCURACY, rundir.TEST_ACCURACY, rundir.TEST_LOSS, rundir.TRAIN_SECONDS,
                 "epochs", rundir.BEST_EPOCH)
MAX_LABEL = 60  # characters: longer legend entries push the curves out of the picture
WIDTH = 120     # terminal columns the text table is fitted to, unless --wide
TOP = 50        # rows of each text table, unless --top: a sweep fits; a year of runs shows its best
MAX_LISTED = 10  # names in one note before "and N more"

# ------------------------------------------------------------------------------ keys

def _key(value) -> str:
    return json.dumps(value, sort_keys=True, default=str)


_SCALARS = {str: "s", int: "i", bool: "b", type(None): "n"}
_PLAIN = {str, int, bool, type(None), float}


def _same(value):
    """A hashable stand-in for value, equal exactly when _key(value)'s JSON texts are equal, at a
    fraction of the cost (differing keys and seed groups compare 10,000 runs' configs)."""
    tag = _SCALARS.get(type(value))
    if tag is not None:
        return (tag, value)
    if type(value) is float:
        return ("f", repr(value))  # 0.0 and -0.0 differ, as in JSON; 1.0 is not 1
    if type(value) in (tuple, list):
        return ("l", tuple(map(_same, value)))
    return ("j", _key(value))


_REPR_EXACT = {str, int, float, bool, type(None)}


def _codes(values: list) -> list:
    """Per value, a stand-in equal exactly when the JSON texts are: repr, for these plain types
    (quotes, dots and words keep the types apart, as JSON's texts do), also beside tuples of
    them or lists of them (not both: JSON writes both as a list); else _same."""
    types = set(map(type, values))
    lists = types - _REPR_EXACT
    if not lists or (len(lists) == 1 and lists <= {tuple, list} and set(
            map(type, chain.from_iterable(v for v in values if type(v) in lists))) <= _REPR_EXACT):
        return list(map(repr, values))
    return list(map(_same, values))


def _differ(values: list) -> bool:
    """Whether the values hold two JSON-distinct ones. Values of two scalar types always differ
    in JSON (1, 1.0, true, "1"); within str, int or None Python's == is JSON's; floats unequal
    by == differ unless NaN, and equal ones only as 0.0 and -0.0; anything else by _codes."""
    types = set(map(type, values))
    if len(types) > 1 and types <= _PLAIN:
        return True
    if types <= {str, int, bool, type(None)}:
        return len(set(values)) > 1
    if types == {float}:  # repr of each float costs more than the rest of differing_keys
        distinct = set(values)
        if len(distinct) == 1:
            return distinct.pop() == 0 and len(set(map(math.copysign, repeat(1.0, len(values)), values))) > 1
        if all(v == v for v in distinct):  # no NaN
            return True
        return len(set(map(float.__repr__, values))) > 1
    return len(set(_codes(values))) > 1


def fmt_value(v) -> str:
    if type(v) is str:
        return v
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(fmt_value(x) for x in v) + "]"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _list_prefix(key: str) -> str | None:
    """model.conv for model.conv.2.filters: the list a key is an item of, if any."""
    parts = key.split(".")
    for i, p in enumerate(parts[1:], start=1):
        if p.isdigit():
            return ".".join(parts[:i])
    return None


def differing_keys(configs: list[dict]) -> list[str]:
    """Keys with at least two distinct values among the runs that have them. A key only some
    runs have, always with one value (beta_1 exists for adam, not for sgd), follows from
    another key that differs, so it is not a column of its own; except an item of a list the
    other runs hold fewer items of (a third conv block), which is a difference in that list."""
    shapes: dict[tuple, list] = {}  # the configs by their keys: a column of values per key and shape
    for c in configs:
        shapes.setdefault(tuple(c), []).append(c)
    order: dict[str, None] = {}
    columns = []  # (key -> values, the lists the shape holds items of)
    for shape, members in shapes.items():
        order.update(dict.fromkeys(shape))
        columns.append((dict(zip(shape, zip(*(c.values() for c in members)))),
                        {p for p in map(_list_prefix, shape) if p}))
    out = []
    for k in order:
        prefix = _list_prefix(k)
        if (_differ(list(chain.from_iterable(cols[k] for cols, _ in columns if k in cols)))
                or prefix and any(k not in cols and prefix in held for cols, held in columns)):
            out.append(k)
    return out


def _sweep_keys(info: dict) -> list[str]:
    """The grid keys of the sweep a run came from, as its run.json says: `sweep_keys` (a list
    or a comma list) if recorded, else read off its point's label (KEY=VALUE,KEY=VALUE)."""
    given = info.get("sweep_keys")
    if isinstance(given, list):
        return [str(k) for k in given]
    if isinstance(given, str):
        return [k.strip() for k in given.split(",") if k.strip()]
    from hdr.engine.config import split_values

    return [item.partition("=")[0].strip() for item in split_values(str(info.get("sweep_point") or ""))
            if "=" in item]


def swept_keys(runs) -> set[str] | None:
    """The keys varied on purpose when every run came from a sweep that recorded its point;
    None otherwise."""
    keys: set[str] = set()
    for r in runs:
        if not r.info.get("sweep_id") or not (r.info.get("sweep_keys") or r.info.get("sweep_point")):
            return None
        keys |= set(_sweep_keys(r.info))
    return keys


# ------------------------------------------------------------------------------ the result

@dataclass(frozen=True, eq=False)
class Row:
    """One run as the comparison shows it."""
    run: Run
    keys: tuple                   # the keys that differ between the runs compared
    delta: float | None = None    # gap in best validation accuracy to the best run (ungrouped only)
    best: bool = False

    @property
    def label(self) -> str:
        """The differing keys and values, or the folder name; made when asked (the text view of
        10,000 runs shows 50)."""
        return _label(self.run, self.keys)


@dataclass(frozen=True, eq=False)
class Group:
    """Runs of one setting: the same config apart from the seed."""
    label: str
    values: dict                  # group key -> value
    runs: tuple
    seeds: int                    # distinct seeds among the runs
    stats: dict                   # metric -> Stat over distinct seeds
    params: int | None
    status: str                   # "2 completed, 1 failed"
    delta: float | None = None    # gap in mean best validation accuracy to the best setting
    noise: bool | None = None     # the gap is within seed noise (Welch); None: cannot tell
    best: bool = False


@dataclass(frozen=True, eq=False)
class Result:
    rows: tuple                   # Row per run, in display order
    keys: tuple                   # config keys that differ between runs
    group_keys: tuple             # keys minus the seed
    groups: tuple | None          # Group per setting, when some setting ran more than once
    notes: tuple                  # fairness, incomplete runs, repeated seeds, ranking caveats
    sort_keys: tuple              # what --sort accepts
    ranked_by: str = RANK_METRIC
    sort_key: str | None = None   # the --sort the rows and groups are in; None: as given (runs) or found

    @property
    def grouped(self) -> bool:
        return self.groups is not None and len(self.groups) > 1


def analyse(runs, sort_key: str | None = None) -> Result:
    """The comparison of runs: differing keys, labels, seed groups with Welch's noise test,
    ranking by best-epoch validation accuracy, sorting and notes. Pure: reads no file and
    changes none of its inputs."""
    runs = list(runs)
    if not runs:
        raise UsageError("no run folders to compare (give run folders such as runs/<id>, or a sweep folder)")
    keys = differing_keys([r.config for r in runs])
    group_keys = [k for k in keys if k != SEED_KEY]
    rows = [Row(r, tuple(keys)) for r in runs]
    groups = _groups(runs, group_keys)
    if groups is not None:
        groups = _rank_groups(groups)
    elif "fold" not in keys:  # cross-validation folds differ in data, not in setting: not ranked
        rows = _rank_rows(rows)
    sort_keys = ("run", *METRIC_KEYS, *keys)
    if sort_key is not None:
        if sort_key not in sort_keys:
            raise UsageError(f"--sort {sort_key}: unknown column; allowed: {', '.join(sort_keys)}")
        rows = sorted(rows, key=lambda row: _order(_run_value(row.run, sort_key, keys), sort_key))
        if groups and sort_key not in ("run", SEED_KEY):
            groups = sorted(groups, key=lambda g: _order(_group_value(g, sort_key), sort_key))
    notes = (_ranking_notes(runs) + _repeat_notes(groups) + _fairness(runs, keys)
             + _incomplete(runs))
    return Result(tuple(rows), tuple(keys), tuple(group_keys), tuple(groups) if groups else None,
                  tuple(notes), sort_keys, sort_key=sort_key)


def _label(run: Run, keys) -> str:
    """The differing keys and their values; the run's folder name (time and config name) when
    that is empty or too long to read, as for runs of unrelated configs."""
    text = ", ".join(f"{k}={fmt_value(run.config[k])}" for k in keys if k in run.config)
    return text if text and len(text) <= MAX_LABEL else run.id


def _groups(runs, group_keys) -> list[Group] | None:
    buckets: dict[tuple, list[Run]] = {}
    configs = [r.config for r in runs]
    codes = [_codes([c.get(k) for c in configs]) for k in group_keys]
    for key, r in zip(zip(*codes) if codes else [()] * len(runs), runs):
        buckets.setdefault(key, []).append(r)
    if all(len(b) < 2 for b in buckets.values()):
        return None  # every setting ran once: nothing repeats
    groups = []
    for members in buckets.values():
        first = members[0]
        label = ", ".join(f"{k}={fmt_value(first.config[k])}" for k in group_keys if k in first.config)
        samples = [sample_of(r) for r in members]
        seeds = set(samples)
        summaries = [r.summary for r in members]
        if len(seeds) == len(samples):  # no seed repeats: seed_stat's per-seed means are the values
            stats = {m: stat([x for s in summaries if (x := s[m]) is not None]) for m in GROUP_METRICS}
        else:  # seed_stat's, with the runs split by seed once for every metric (fsum: in any order)
            by_seed: dict = {}
            for sample, s in zip(samples, summaries):
                by_seed.setdefault(sample, []).append(s)
            parts = list(by_seed.values())
            stats = {m: stat(seed_means(parts, m)) for m in GROUP_METRICS}
        params = {r.params for r in members if r.params is not None}
        counts: dict[str, int] = {}
        for r in members:
            counts[r.status] = counts.get(r.status, 0) + 1
        groups.append(Group(label or "all runs", {k: first.config.get(k) for k in group_keys}, tuple(members),
                            len(seeds), stats, params.pop() if len(params) == 1 else None,
                            ", ".join(f"{n} {s}" for s, n in counts.items())))
    return groups


def _rank_groups(groups: list[Group]) -> list[Group]:
    """Each group's gap to the best setting by mean best validation accuracy, and whether it is
    within seed noise."""
    scored = [g for g in groups if g.stats[RANK_METRIC].mean is not None]
    if not scored:
        return groups
    best = max(scored, key=lambda g: g.stats[RANK_METRIC].mean)
    top = best.stats[RANK_METRIC]
    out = []
    for g in groups:
        s = g.stats[RANK_METRIC]
        if s.mean is None:
            out.append(g)
        elif g is best:
            out.append(replace(g, delta=0.0, best=True))
        else:
            out.append(replace(g, delta=s.mean - top.mean, noise=within_noise(s, top)))
    return out


def _rank_rows(rows: list[Row]) -> list[Row]:
    scored = [r for r in rows if r.run.summary[RANK_METRIC] is not None]
    if len(scored) < 2:
        return rows
    best = max(scored, key=lambda r: r.run.summary[RANK_METRIC])
    top = best.run.summary[RANK_METRIC]
    return [r if r.run.summary[RANK_METRIC] is None
            else replace(r, delta=r.run.summary[RANK_METRIC] - top, best=r is best) for r in rows]


def _run_value(run: Run, key: str, keys):
    return run.config.get(key) if key in keys else run.summary.get(key)


def _group_value(g: Group, key: str):
    if key in g.values:
        return g.values[key]
    if key in g.stats:
        return g.stats[key].mean
    return {rundir.PARAMS: g.params, "status": g.status}.get(key)


def _order(v, key: str):
    if v is None:
        return (2, 0, "")  # missing values last, either direction
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return (0, -v if key in DESCENDING else v, "")
    return (1, 0, fmt_value(v))


# --- notes ---------------------------------------------------------------------------------

def _ranking_notes(runs) -> list[str]:
    if len(runs) > 1 and all(r.summary[RANK_METRIC] is None for r in runs):
        return ["not ranked: no run has validation accuracy, and test accuracy is not used to choose "
                "between runs (set dataset.validation_split)"]
    return []


def _listed(names: list) -> str:
    """Names joined by '; ', the first MAX_LISTED of them and how many more."""
    more = f"; and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else ""
    return "; ".join(names[:MAX_LISTED]) + more


def _repeat_notes(groups) -> list[str]:
    repeated = [f"{g.label} ({len(g.runs)} runs, {g.seeds} distinct seed{'s' if g.seeds != 1 else ''})"
                for g in groups or () if len(g.runs) > g.seeds]
    if not repeated:
        return []
    return ["repeated seeds: runs with the same config and seed are one sample, averaged before the "
            "mean, std and noise test: " + _listed(repeated)]


def _values(get, runs) -> str:
    """The distinct values, formatted, in order of first appearance (formatted once each)."""
    first: dict = {}
    values = list(map(get, runs))
    for code, v in zip(_codes(values), values):
        first.setdefault(code, v)
    return ", ".join(dict.fromkeys(map(fmt_value, first.values())))


def _fairness(runs, keys) -> list[str]:
    """What differs beyond the keys being compared: environment, data, and confounders."""
    compared = swept_keys(runs)
    if compared is None:
        varied = [k for k in keys if k != SEED_KEY]
        # One differing key is the subject of the comparison; with several, the confounders
        # among them are flagged.
        compared = set(varied) if len(varied) == 1 else set(varied) - set(CONFOUNDING_KEYS)
    found = [f"{k} ({_values(lambda r: r.config.get(k), runs)})"
             for k in CONFOUNDING_KEYS if k in keys and k not in compared]
    # Runs read from the index share one runtime (and checksums) object per distinct value: each
    # is looked at once.
    runtimes = {id(rt): rt for rt in (r.info.get("runtime") or {} for r in runs)}.values()
    for name in ("keras", "backend", "tensorflow", "jax", "torch", "device"):
        vals = {str(rt[name]) for rt in runtimes if rt.get(name) is not None}  # any JSON, hashable or not
        if len(vals) > 1:
            found.append(f"{name} ({', '.join(sorted(vals))})")
    by_dataset: dict[str, set] = {}
    texts: dict[int, str] = {}
    for r in runs:
        sums = r.info.get("data_checksums")
        if sums:
            text = texts.get(id(sums))
            if text is None:
                text = texts[id(sums)] = _key(sums)
            by_dataset.setdefault(str(r.config.get("dataset.name")), set()).add(text)
    found += [f"{name} dataset checksum ({len(sums)} different files)"
              for name, sums in sorted(by_dataset.items()) if len(sums) > 1]
    done = [r for r in runs if r.status == rundir.COMPLETED]
    if "training.epochs" not in keys and len({r.summary["epochs"] for r in done}) > 1:
        found.append(f"epochs run ({_values(lambda r: r.summary['epochs'], done)})")
    if not found:
        return []
    return ["fairness: the runs also differ in " + "; ".join(found)
            + " - differences in results may come from these, not from the compared keys"]


def _incomplete(runs) -> list[str]:
    """Runs that did not complete, named; pruned runs apart: a search ended them on purpose."""
    notes = []
    for what, bad in (("not completed, numbers partial", [r for r in runs if r.status not in (rundir.COMPLETED, rundir.PRUNED)]),
                      ("pruned by a search (ended early on purpose), numbers partial",
                       [r for r in runs if r.status == rundir.PRUNED])):
        if not bad:
            continue
        parts = []
        for r in bad[:5]:
            reason = str(r.info.get("reason") or "").strip().split("\n")[0]
            reason = reason if len(reason) <= 100 else reason[:97] + "..."
            status = "" if r.status == rundir.PRUNED else r.status
            detail = ": ".join(x for x in (status, reason) if x)
            parts.append(f"{r.id} ({detail + ', ' if detail else ''}"
                         f"{r.summary['epochs']}/{r.summary[rundir.EPOCHS_PLANNED]} epochs)")
        more = f"; and {len(bad) - 5} more" if len(bad) > 5 else ""
        notes.append(f"{what}: {'; '.join(parts)}{more}")
    return notes


# ------------------------------------------------------------------------------ views

def noise_lines(result: Result) -> list[str]:
    groups = result.groups
    if not groups:
        return []
    if len(groups) == 1:  # one setting repeated: its spread is the whole story
        g = groups[0]
        return [f"{seeds_text(len(g.runs), g.seeds)} of one setting: test accuracy {_pm(g.stats[rundir.TEST_ACCURACY])} %, "
                f"best validation accuracy {_pm(g.stats[rundir.BEST_VAL_ACCURACY])} % (mean ± sample std)"]
    lines = [f"seeds: {len(groups)} settings, mean ± std over distinct seeds (sample std). Settings are "
             "ranked by validation accuracy at each run's best epoch, never by test accuracy (shown beside "
             "it); 'vs best' is the gap in that mean to the best setting, in percentage points; '~noise' "
             "marks a gap within seed noise: smaller than Welch's 95% threshold t·sqrt(s1²/n1 + s2²/n2), "
             "so more seeds are needed to tell the settings apart."]
    best = next((g for g in groups if g.best), None)
    tied = [g.label for g in groups if g.noise]
    if best is not None and tied:
        lines.append(f"within seed noise of the best ({best.label}): " + _listed(tied))
    if any(g.noise is None and not g.best and g.delta is not None for g in groups):
        lines.append("settings with a single seed have no noise estimate; run with --seeds 3 or more")
    return lines


def _pct(v) -> str | None:
    return None if v is None else numbers.pct(v)


def _num(v, digits: int) -> str | None:
    return None if v is None else f"{v:.{digits}f}"


def _pm(s: Stat) -> str | None:
    if s.mean is None:
        return None
    return f"{numbers.pct(s.mean)} ± {numbers.pct(s.std)}" if s.std is not None else numbers.pct(s.mean)


def _vs(delta, best: bool, noise=None) -> str | None:
    if best:
        return "best"
    if delta is None:
        return None
    return numbers.points(delta) + (" ~noise" if noise else "")


def _epochs_cell(s: Stat) -> str | None:
    if s.mean is None:
        return None
    return str(round(s.mean)) if not s.std else f"{s.mean:.1f}"  # whole unless they vary


class Column(NamedTuple):
    header: str
    cells: list
    align: str = "right"
    drop: int | None = None   # order in which columns go to fit the width (lowest first); None: kept


def _run_columns(result: Result, rows=None) -> list[Column]:
    rows = result.rows if rows is None else rows
    s = [r.run.summary for r in rows]
    ranked = not result.groups and any(r.delta is not None for r in rows)
    n_keys = len(result.keys)
    cols = [Column("run", [r.run.id for r in rows], "left")]
    cols += [Column(k, [fmt_value(r.run.config[k]) if k in r.run.config else None for r in rows], "left",
                    100 + n_keys - i) for i, k in enumerate(result.keys)]
    cols += [Column("best val %", [_pct(x[rundir.BEST_VAL_ACCURACY]) for x in s]),
             Column("@epoch", [x[rundir.BEST_EPOCH] for x in s], drop=5)]
    if ranked:
        cols.append(Column("vs best", [_vs(r.delta, r.best) for r in rows]))
    cols += [Column("final val %", [_pct(x[rundir.VAL_ACCURACY]) for x in s], drop=4),
             Column("test acc %", [_pct(x[rundir.TEST_ACCURACY]) for x in s]),
             Column("test loss", [_num(x[rundir.TEST_LOSS], 4) for x in s], drop=3),
             Column("epochs", [f"{x['epochs']}/{x[rundir.EPOCHS_PLANNED] if x[rundir.EPOCHS_PLANNED] is not None else '?'}"
                               for x in s], drop=6),
             Column("train s", [_num(x[rundir.TRAIN_SECONDS], 1) for x in s], drop=2),
             Column(rundir.PARAMS, [x[rundir.PARAMS] for x in s], drop=1),
             Column("status", [x["status"] for x in s], "left")]
    if any(x.get(RUN_LABEL) for x in s):  # the user's labels (hdr train --label), where a run has one
        cols.append(Column(rundir.LABEL, [x.get(RUN_LABEL) for x in s], "left", drop=7))
    return cols


def _group_columns(result: Result, groups=None) -> list[Column]:
    gs = result.groups if groups is None else groups
    n_keys = len(result.group_keys)
    cols = [Column(k, [fmt_value(g.values[k]) for g in gs], "left", 100 + n_keys - i)
            for i, k in enumerate(result.group_keys)]
    return cols + [
        Column("seeds", [str(g.seeds) if len(g.runs) == g.seeds else f"{g.seeds} ({len(g.runs)} runs)"
                         for g in gs]),
        Column("best val %", [_pm(g.stats[rundir.BEST_VAL_ACCURACY]) for g in gs]),
        Column("vs best", [_vs(g.delta, g.best, g.noise) for g in gs]),
        Column("test acc %", [_pm(g.stats[rundir.TEST_ACCURACY]) for g in gs]),
        Column("test loss", [_num(g.stats[rundir.TEST_LOSS].mean, 4) for g in gs], drop=3),
        Column("epochs", [_epochs_cell(g.stats["epochs"]) for g in gs], drop=4),
        Column("train s", [_num(g.stats[rundir.TRAIN_SECONDS].mean, 1) for g in gs], drop=2),
        Column(rundir.PARAMS, [g.params for g in gs], drop=1),
        Column("status", [g.status for g in gs], "left")]


def _width(cols: list[Column]) -> int:
    def w(c):  # as tabulate lays it out: a header gets two spaces of padding
        return max([len(x) + 2 for x in c.header.split("\n")] + [len(shown("-" if v is None else v)) for v in c.cells])
    return sum(w(c) for c in cols) + 2 * (len(cols) - 1)


def _fit(cols: list[Column], width: int) -> tuple[list[Column], list[str]]:
    """Columns that fit width: parameters, time and loss left out first, then dotted headers broken at
    their last dot, then the other columns by their `drop` order (the names left out are returned)."""
    dropped = []
    for c in sorted((c for c in cols if c.drop is not None), key=lambda c: c.drop):
        if _width(cols) <= width:
            break
        if c.drop > 3 and not any("\n" in x.header for x in cols):
            cols = [x._replace(header=".\n".join(x.header.rsplit(".", 1))) if "." in x.header else x for x in cols]
            if _width(cols) <= width:
                break
        cols = [x for x in cols if x.header.replace("\n", "") != c.header]
        dropped.append(c.header)
    return cols, dropped


def _plain(headers: list[str], rows: list[list]) -> bool:
    """Whether every header and cell is printable ASCII (or ±): text whose width is its length,
    which simple_table lays out as tabulate does."""
    text = "".join(headers) + "".join(c for r in rows for c in r if c is not None)
    return text.isprintable() and narrow(text)


def _tabulate(cols: list[Column], fmt: str, escape: bool = True) -> str:
    """Cells are pre-formatted strings (so 98.40 keeps its zero); numbers align right."""
    rows = [[None if v is None else (shown(v) if escape else str(v)) for v in row]
            for row in zip(*(c.cells for c in cols))]
    if fmt == "simple" and _plain([c.header.replace("\n", "") for c in cols], rows):
        # the same text without importing tabulate (a tenth of a second); tests/test_compare.py
        return simple_table([c.header for c in cols], rows, [c.align for c in cols], missingval="-")
    from tabulate import tabulate

    return tabulate(rows, headers=[c.header for c in cols], tablefmt=fmt, missingval="-",
                    disable_numparse=True, colalign=[c.align for c in cols])


def _table(cols: list[Column], wide: bool) -> str:
    if wide:
        return _tabulate(cols, "simple")
    cols, dropped = _fit(cols, WIDTH)
    table = _tabulate(cols, "simple")
    if dropped:
        keys = [d for d in dropped if "." in d]
        names = [d for d in dropped if "." not in d] + (keys if len(keys) <= 3 else [f"{len(keys)} config keys"])
        table += "\n" + textwrap.fill(f"(left out to fit {WIDTH} columns: {', '.join(names)}; --wide shows all, "
                                      "--json and --out have everything)", WIDTH, break_on_hyphens=False)
    return table


def _best_first(items: tuple, n: int, sorted_: bool, value) -> tuple[tuple, str | None]:
    """At most n of the items (all when n is 0): the first n when the user sorted them, else the
    n best by the ranking metric (value(item); missing last), and words for the note, or None."""
    if not n or len(items) <= n:
        return items, None
    if sorted_:
        return items[:n], "first"
    return tuple(sorted(items, key=lambda x: _order(value(x), RANK_METRIC))[:n]), "best"


def text(result: Result, wide: bool = False, top: int = TOP) -> str:
    """The terminal view: the settings (when grouped), the runs by id, then the notes. Past top
    rows a table shows the best (or, with --sort, the first) top of them and a note says so."""
    parts, cut = [], []
    sorted_ = result.sort_key is not None
    if result.grouped:
        groups, how = _best_first(result.groups, top, sorted_, lambda g: g.stats[RANK_METRIC].mean)
        parts.append(_table(_group_columns(result, groups), wide))
        if how:
            cut.append(f"the {how} {len(groups)} of {len(result.groups)} settings")
    rows, how = _best_first(result.rows, top, sorted_, lambda r: r.run.summary[RANK_METRIC])
    parts.append(_table(_run_columns(result, rows), wide))
    if how:
        cut.append(f"the {how} {len(rows)} of {len(result.rows)} runs")
    notes = [shown(n) for n in noise_lines(result) + list(result.notes)]
    if cut:
        by = f"by --sort {result.sort_key}" if sorted_ else "by best validation accuracy"
        notes.append(f"shown: {' and '.join(cut)} ({by}); --top N shows more, --top 0 all; --json and --out "
                     "have every run")
    if not wide:
        notes = [textwrap.fill(n, WIDTH, break_long_words=False, break_on_hyphens=False) for n in notes]
    if notes:
        parts.append("\n".join(notes))
    return "\n\n".join(parts)


def markdown(result: Result) -> str:
    parts = []
    if result.grouped:
        parts += ["## Settings (mean ± std over seeds)", _tabulate(_group_columns(result), "github")]
    parts += ["## Runs", _tabulate(_run_columns(result), "github")]
    notes = noise_lines(result) + list(result.notes)
    if notes:
        parts += ["## Notes", "\n".join(f"- {shown(n)}" for n in notes)]
    return "\n\n".join(parts) + "\n"


def csv_text(result: Result) -> str:
    fields = ["run", "folder", "label", *result.keys, "status", rundir.BEST_VAL_ACCURACY, rundir.BEST_EPOCH,
              rundir.VAL_ACCURACY, rundir.TEST_ACCURACY, rundir.TEST_LOSS, "epochs", rundir.EPOCHS_PLANNED, rundir.TRAIN_SECONDS, rundir.PARAMS,
              RUN_LABEL]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for row in result.rows:
        r = row.run
        out = dict(r.summary, folder=str(r.folder), label=row.label)
        out.update({k: fmt_value(r.config[k]) for k in result.keys if k in r.config})
        w.writerow({k: ("" if out.get(k) is None else out.get(k)) for k in fields})
    return buf.getvalue()


def to_dict(result: Result) -> dict:
    """The result as plain data, for --json and compare.json."""
    def stats(g):
        return {m: s._asdict() for m, s in g.stats.items()}

    return {
        "ranked_by": result.ranked_by,
        "keys": list(result.keys),
        "runs": [{**r.run.summary, "folder": str(r.run.folder), "label": r.label, "seed": r.run.seed,
                  "config": {k: r.run.config[k] for k in result.keys if k in r.run.config},
                  "vs_best": r.delta, "best": r.best} for r in result.rows],
        "groups": None if result.groups is None else [
            {"label": g.label, "config": g.values, "runs": [r.id for r in g.runs], "n_runs": len(g.runs),
             "distinct_seeds": g.seeds, "stats": stats(g), rundir.PARAMS: g.params, "status": g.status,
             "vs_best": g.delta, "within_noise": g.noise, "best": g.best} for g in result.groups],
        "notes": noise_lines(result) + list(result.notes),
    }


def json_text(result: Result) -> str:
    return json.dumps(to_dict(result), indent=2, default=list)


def write(result: Result, out: Path, warn=None) -> list[Path]:
    """compare.csv, compare.md, compare.json and the overlaid validation curves, into out."""
    from hdr.analysis.figures import comparison_curves

    out = Path(out)
    rundir.refuse_run_owned(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create output folder {out}: {e.strerror}; choose another --out") from None
    written = [out / "compare.csv", out / "compare.md", out / "compare.json"]
    atomic_write(written[0], csv_text(result))
    atomic_write(written[1], markdown(result))
    atomic_write(written[2], json_text(result) + "\n")
    for metric in (rundir.VAL_ACCURACY, rundir.VAL_LOSS):
        path = out / f"{metric}.png"
        if comparison_curves(result, metric, path):
            written.append(path)
        elif warn is not None:
            warn(f"no run has {metric} (no validation data); {path.name} not written")
    return written
