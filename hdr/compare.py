"""`hdr compare`: one table over many run folders, and a warning when the comparison is unfair.

Reads run folders only (run.json, config.yaml, metrics.json, history.csv). It never imports
Keras, TensorFlow or pydantic, and matplotlib only for --out, so it starts at once and stays
fast over hundreds of runs.

The columns that tell runs apart are found, not given: every config.yaml is flattened to
dotted keys and the keys whose values are not all equal become columns (as Guild's
--skip-unchanged does). When runs differ in training.seed and repeat the same setting, they
are grouped: mean ± std across seeds, and gaps smaller than the seed noise are flagged.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import click

from hdr.errors import UsageError
from hdr.rundir import atomic_write, effective_status, read_history

SEED_KEY = "training.seed"
# Config keys that change what a number means; a difference in them is flagged unless it is
# the thing being compared.
CONFOUNDING_KEYS = ("training.batch_size", "training.epochs", "dataset.validation_split")
# Descending: larger is better. Every other column sorts ascending.
DESCENDING = {"best_val_accuracy", "val_accuracy", "test_accuracy"}
METRIC_KEYS = ["best_val_accuracy", "best_epoch", "val_accuracy", "test_accuracy", "test_loss",
               "epochs", "train_seconds", "params", "status"]

# Two-sided 95% quantiles of Student's t by degrees of freedom, for Welch's test without scipy.
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
         10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110,
         18: 2.101, 19: 2.093, 20: 2.086, 25: 2.060, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980}


def t975(df: float) -> float:
    """The t quantile for the largest tabulated df not above df (rounding down is conservative)."""
    if df >= 1000:
        return 1.960
    usable = [d for d in _T975 if d <= max(df, 1)]
    return _T975[max(usable)]


# ------------------------------------------------------------------------------ reading runs

def _yaml_load(text: str):
    import yaml

    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # C loader: ~10x faster


@dataclass
class Run:
    folder: Path
    info: dict
    config: dict                     # flattened: dotted key -> value (lists of scalars as tuples)
    metrics: dict
    history: list[dict]
    status: str
    row: dict = field(default_factory=dict)


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


def _read_params(folder: Path) -> int | None:
    """Parameter count from summary.txt, for runs that ended before writing metrics.json."""
    try:
        for line in (folder / "summary.txt").read_text().splitlines():
            if "Total params:" in line:
                return int(line.split("Total params:")[1].split()[0].replace(",", ""))
    except (OSError, ValueError, IndexError):
        pass
    return None


def load_run(folder: Path) -> Run | str:
    """A Run, or a short reason why the folder is not a usable run folder."""
    try:
        info = json.loads((folder / "run.json").read_text())
    except OSError:
        return "no run.json"
    except ValueError:
        return "run.json is corrupt"
    try:
        cfg = _yaml_load((folder / "config.yaml").read_text())
    except OSError:
        return "no config.yaml"
    except Exception:  # any YAML error: the folder is damaged, say so and go on
        return "config.yaml is corrupt"
    if not isinstance(info, dict) or not isinstance(cfg, dict):
        return "run.json or config.yaml is not a mapping"
    try:
        metrics = json.loads((folder / "metrics.json").read_text())
    except (OSError, ValueError):
        metrics = {}  # failed and interrupted runs have none
    try:
        history = read_history(folder / "history.csv")
    except (OSError, ValueError):
        history = []
    flat = flatten(cfg)
    if "fold" in info:  # cross-validation folds share one config; the fold tells them apart
        flat = {"fold": info["fold"], **flat}
    run = Run(folder, info, flat, metrics, history, effective_status(info))
    run.row = _summary(run)
    return run


def _summary(run: Run) -> dict:
    hist, m = run.history, run.metrics
    vals = [(r["val_accuracy"], r["epoch"]) for r in hist if r.get("val_accuracy") is not None]
    best, best_epoch = max(vals, key=lambda t: (t[0], -t[1])) if vals else (None, None)
    seconds = m.get("train_seconds")
    if seconds is None and hist:
        seconds = round(sum(r.get("seconds") or 0 for r in hist), 3)
    params = m.get("params")
    return {
        "run": run.folder.name,
        "best_val_accuracy": best,
        "best_epoch": best_epoch,
        "val_accuracy": hist[-1].get("val_accuracy") if hist else None,
        "test_accuracy": m.get("test_accuracy"),
        "test_loss": m.get("test_loss"),
        "epochs": len(hist),
        "epochs_planned": run.info.get("epochs_planned", run.config.get("training.epochs")),
        "train_seconds": seconds,
        "params": params if params is not None else _read_params(run.folder),
        "status": run.status,
    }


def _sweep_runs(folder: Path, warn) -> list[Path]:
    try:
        sweep = json.loads((folder / "sweep.json").read_text())
    except (OSError, ValueError):
        warn(f"skipping {folder}: sweep.json is unreadable")
        return []
    out = []
    for point in sweep.get("points", []):
        if point.get("run"):
            p = folder / point["run"]
            if (p / "run.json").is_file():
                out.append(p)
            else:
                warn(f"{folder}: run {point['run']} of point {point.get('label', '?')} is missing")
    return out


def expand(paths, warn) -> list[Path]:
    """Run folders named by the arguments. A sweep folder gives its runs, any other folder of
    run folders (a cv folder, a runs folder) gives its children; anything else is skipped."""
    out, seen = [], set()
    for arg in paths:
        p = Path(arg)
        if not p.exists():
            raise UsageError(f"not found: {p} (give run folders such as runs/<id>, or a sweep or cv folder)")
        if p.is_dir() and (p / "run.json").is_file():
            found = [p]
        elif p.is_dir() and (p / "sweep.json").is_file():
            found = _sweep_runs(p, warn)
        elif p.is_dir():
            found = sorted(c for c in p.iterdir() if (c / "run.json").is_file())
            if not found:
                warn(f"skipping {p}: not a run folder")
        else:
            warn(f"skipping {p}: not a run folder")
            found = []
        for f in found:
            key = f.resolve()
            if key not in seen:
                seen.add(key)
                out.append(f)
    return out


def load_runs(paths, warn=None) -> list[Run]:
    warn = warn or (lambda msg: click.echo(f"hdr: warning: {msg}", err=True))
    runs = []
    for folder in expand(paths, warn):
        run = load_run(folder)
        if isinstance(run, str):
            warn(f"skipping {folder}: {run}")
        else:
            runs.append(run)
    return runs


# ------------------------------------------------------------------------------ analysis

def _key(value):
    return json.dumps(value, sort_keys=True, default=str)


def fmt_value(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, tuple):
        return "[" + ", ".join(fmt_value(x) for x in v) + "]"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def differing_keys(configs: list[dict]) -> list[str]:
    """Keys with at least two distinct values among the runs that have them. A key only some
    runs have, always with one value (beta_1 exists for adam, not for sgd), follows from
    another key that differs, so it is not a column of its own."""
    order: dict[str, None] = {}
    for c in configs:
        order.update(dict.fromkeys(c))
    return [k for k in order if len({_key(c[k]) for c in configs if k in c}) > 1]


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))  # sample std


def within_noise(a: dict, b: dict, metric: str) -> bool | None:
    """Welch's t-test at the 5% level on a metric's seed means: True when the gap is smaller
    than t * sqrt(s1²/n1 + s2²/n2), i.e. could be seed luck. None when a group has one seed."""
    n1, n2 = a.get(f"{metric}_n", 0), b.get(f"{metric}_n", 0)
    if n1 < 2 or n2 < 2:
        return None
    m1, m2, s1, s2 = a[metric], b[metric], a[f"{metric}_std"], b[f"{metric}_std"]
    v1, v2 = s1 * s1 / n1, s2 * s2 / n2
    if v1 + v2 == 0:
        return m1 == m2
    df = (v1 + v2) ** 2 / (v1 * v1 / (n1 - 1) + v2 * v2 / (n2 - 1))  # Welch-Satterthwaite
    return abs(m1 - m2) < t975(df) * math.sqrt(v1 + v2)


def _swept_keys(runs: list[Run]) -> set[str] | None:
    """The grid keys of the sweeps the runs came from, when all of them came from sweeps."""
    keys: set[str] = set()
    cache: dict[Path, dict | None] = {}
    for run in runs:
        sid = run.info.get("sweep_id")
        if not sid:
            return None
        path = run.folder.parent / "sweeps" / sid / "sweep.json"
        if path not in cache:
            try:
                cache[path] = json.loads(path.read_text())
            except (OSError, ValueError):
                cache[path] = None
        if cache[path] is None:
            return None
        keys |= set(cache[path].get("grid", {}))
        if len(cache[path].get("seeds", [])) > 1:
            keys.add(SEED_KEY)
    return keys


MAX_LABEL = 60  # characters: longer legend entries push the curves out of the picture


class Comparison:
    """Rows, optional seed groups and notes for a set of runs."""

    def __init__(self, runs: list[Run], sort_key: str | None = None):
        if not runs:
            raise UsageError("no run folders to compare (give run folders such as runs/<id>, or a sweep folder)")
        self.runs = runs
        self.keys = differing_keys([r.config for r in runs])
        for r in runs:
            r.row["label"] = self.label(r)
        self.group_keys = [k for k in self.keys if k != SEED_KEY]
        self.groups = self._group() if SEED_KEY in self.keys else None
        self.sort_keys = ["run", *METRIC_KEYS, *self.keys]
        if sort_key is not None:
            self.sort(sort_key)
        self.notes = self._fairness() + self._incomplete()

    def label(self, run: Run, keys=None) -> str:
        """The differing keys and their values; the run's folder name (time and config name) when
        that is empty or too long to read, as for runs of unrelated configs."""
        keys = self.keys if keys is None else keys
        text = ", ".join(f"{k}={fmt_value(run.config[k])}" for k in keys if k in run.config)
        return text if text and len(text) <= MAX_LABEL else run.folder.name

    # --- seed groups -----------------------------------------------------------------------
    def _group(self) -> list[dict] | None:
        buckets: dict[str, list[Run]] = {}
        for r in self.runs:
            buckets.setdefault(_key([r.config.get(k) for k in self.group_keys]), []).append(r)
        if all(len(b) < 2 for b in buckets.values()):
            return None  # every setting ran once: seeds differ, but nothing repeats
        groups = []
        for members in buckets.values():
            label = ", ".join(f"{k}={fmt_value(members[0].config[k])}" for k in self.group_keys
                              if k in members[0].config)
            g = {"label": label or "all runs", "runs": members,
                 "seeds": len(members)}
            for k in self.group_keys:
                g[k] = members[0].config.get(k)
            for metric in ("best_val_accuracy", "val_accuracy", "test_accuracy", "test_loss",
                           "train_seconds", "epochs", "best_epoch"):
                values = [m.row[metric] for m in members if m.row[metric] is not None]
                g[metric], g[f"{metric}_std"] = _mean_std(values)
                g[f"{metric}_n"] = len(values)
            params = {m.row["params"] for m in members if m.row["params"] is not None}
            g["params"] = params.pop() if len(params) == 1 else None
            counts: dict[str, int] = {}
            for m in members:
                counts[m.status] = counts.get(m.status, 0) + 1
            g["status"] = ", ".join(f"{n} {s}" for s, n in counts.items())
            groups.append(g)
        self._noise(groups)
        return groups

    def _noise(self, groups: list[dict]) -> None:
        """Mark each group's gap to the best group, and whether it is within seed noise."""
        # Test accuracy is what the runs report; failed settings without it simply get no gap.
        metric = "test_accuracy" if any(g["test_accuracy"] is not None for g in groups) else "best_val_accuracy"
        self.noise_metric = metric
        scored = [g for g in groups if g[metric] is not None]
        self.best_group = max(scored, key=lambda g: g[metric]) if scored else None
        for g in groups:
            g["delta"], g["noise"] = None, None
            if self.best_group is None or g[metric] is None:
                continue
            g["delta"] = g[metric] - self.best_group[metric]
            g["noise"] = None if g is self.best_group else within_noise(g, self.best_group, metric)

    # --- sorting ---------------------------------------------------------------------------
    def sort(self, key: str) -> None:
        if key not in self.sort_keys:
            raise UsageError(f"--sort {key}: unknown column; allowed: {', '.join(self.sort_keys)}")
        desc = key in DESCENDING

        def order(item):
            if isinstance(item, Run):
                v = item.config.get(key) if key in self.keys else item.row.get(key)
            else:
                v = item.get(key)
            if v is None:
                return (2, 0, "")  # missing values last, either direction
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return (0, -v if desc else v, "")
            return (1, 0, fmt_value(v))

        self.runs.sort(key=order)
        if self.groups and key not in ("run", SEED_KEY):
            self.groups.sort(key=order)

    # --- notes -----------------------------------------------------------------------------
    def _fairness(self) -> list[str]:
        """What differs beyond the keys being compared: environment, data, and confounders."""
        compared = _swept_keys(self.runs)
        if compared is None:
            varied = [k for k in self.keys if k != SEED_KEY]
            # One differing key is the subject of the comparison; with several, the
            # confounders among them are flagged.
            compared = set(varied) if len(varied) == 1 else set(varied) - set(CONFOUNDING_KEYS)
        found = []
        for k in CONFOUNDING_KEYS:
            if k in self.keys and k not in compared:
                found.append(f"{k} ({self._values(lambda r: r.config.get(k))})")
        env = [("keras", "keras"), ("backend", "backend"), ("tensorflow", "tensorflow"),
               ("jax", "jax"), ("torch", "torch"), ("device", "device")]
        for name, field_ in env:
            vals = {(r.info.get("runtime") or {}).get(field_) for r in self.runs} - {None}
            if len(vals) > 1:
                found.append(f"{name} ({', '.join(sorted(map(str, vals)))})")
        by_dataset: dict[str, set] = {}
        for r in self.runs:
            if r.info.get("data_checksums"):
                by_dataset.setdefault(str(r.config.get("dataset.name")), set()).add(_key(r.info["data_checksums"]))
        for name, sums in sorted(by_dataset.items()):
            if len(sums) > 1:
                found.append(f"{name} dataset checksum ({len(sums)} different files)")
        done = [r for r in self.runs if r.status == "completed"]
        if "training.epochs" not in self.keys and len({r.row["epochs"] for r in done}) > 1:
            found.append(f"epochs run ({self._values(lambda r: r.row['epochs'], done)})")
        if not found:
            return []
        return ["fairness: the runs also differ in " + "; ".join(found)
                + " - differences in results may come from these, not from the compared keys"]

    def _values(self, get, runs=None) -> str:
        seen: dict[str, None] = {}
        for r in runs if runs is not None else self.runs:
            seen[fmt_value(get(r))] = None
        return ", ".join(seen)

    def _incomplete(self) -> list[str]:
        bad = [r for r in self.runs if r.status != "completed"]
        if not bad:
            return []
        parts = []
        for r in bad:
            reason = str(r.info.get("reason") or "").strip().split("\n")[0]
            reason = reason if len(reason) <= 100 else reason[:97] + "..."
            parts.append(f"{r.folder.name} ({r.status}{': ' + reason if reason else ''}, "
                         f"{r.row['epochs']}/{r.row['epochs_planned']} epochs)")
        more = f"; and {len(parts) - 5} more" if len(parts) > 5 else ""
        return [f"not completed, numbers partial: {'; '.join(parts[:5])}{more}"]

    def noise_lines(self) -> list[str]:
        if not self.groups or self.best_group is None:
            return []
        if len(self.groups) == 1:  # one setting repeated: its spread is the whole story
            g = self.groups[0]
            return [f"{g['seeds']} seeds of one setting: test accuracy {_pm(g, 'test_accuracy')} %, "
                    f"best validation accuracy {_pm(g, 'best_val_accuracy')} % (mean ± sample std)"]
        metric = self.noise_metric.replace("_", " ")
        lines = [f"seeds: {len(self.groups)} settings, mean ± std over seeds (sample std). "
                 f"'vs best' is the gap in mean {metric} to the best setting, in percentage points; "
                 "'~noise' marks a gap within seed noise: smaller than Welch's 95% threshold "
                 "t·sqrt(s1²/n1 + s2²/n2), so more seeds are needed to tell the settings apart."]
        tied = [g["label"] for g in self.groups if g["noise"]]
        if tied:
            lines.append(f"within seed noise of the best ({self.best_group['label']}): " + "; ".join(tied))
        if any(g["noise"] is None and g is not self.best_group and g["delta"] is not None for g in self.groups):
            lines.append("settings with a single seed have no noise estimate; run with --seeds 3 or more")
        return lines

    # --- rendering -------------------------------------------------------------------------
    def run_table(self, fmt: str = "simple") -> str:
        headers = ["run", *self.keys, "best val %", "@epoch", "final val %", "test acc %", "test loss",
                   "epochs", "train s", "params", "status"]
        rows = []
        for r in self.runs:
            x = r.row
            rows.append([x["run"], *[fmt_value(r.config[k]) if k in r.config else None for k in self.keys],
                         _pct(x["best_val_accuracy"]), x["best_epoch"], _pct(x["val_accuracy"]),
                         _pct(x["test_accuracy"]), _num(x["test_loss"], 4),
                         f"{x['epochs']}/{x['epochs_planned'] if x['epochs_planned'] is not None else '?'}",
                         _num(x["train_seconds"], 1), x["params"], x["status"]])
        return _tabulate(rows, headers, fmt, 1 + len(self.keys))

    def group_table(self, fmt: str = "simple") -> str:
        headers = [*self.group_keys, "seeds", "test acc %", "best val %", "vs best", "test loss",
                   "epochs", "train s", "params", "status"]
        rows = []
        for g in self.groups:
            vs = None
            if g is self.best_group:
                vs = "best"
            elif g["delta"] is not None:
                vs = f"{100 * g['delta']:+.2f}" + (" ~noise" if g["noise"] else "")
            rows.append([*[fmt_value(g[k]) for k in self.group_keys], g["seeds"],
                         _pm(g, "test_accuracy"), _pm(g, "best_val_accuracy"), vs,
                         _num(g["test_loss"], 4), _epochs(g), _num(g["train_seconds"], 1),
                         g["params"], g["status"]])
        return _tabulate(rows, headers, fmt, len(self.group_keys))

    def text(self, fmt: str = "simple") -> str:
        multi = self.groups is not None and len(self.groups) > 1
        parts = [self.group_table(fmt) if multi else self.run_table(fmt)]
        notes = self.noise_lines() + self.notes
        if notes:
            parts.append("\n".join(notes))
        return "\n\n".join(parts)

    def markdown(self) -> str:
        parts = []
        if self.groups and len(self.groups) > 1:
            parts += ["## Settings (mean ± std over seeds)", self.group_table("github")]
        parts += ["## Runs", self.run_table("github")]
        notes = self.noise_lines() + self.notes
        if notes:
            parts += ["## Notes", "\n".join(f"- {n}" for n in notes)]
        return "\n\n".join(parts) + "\n"

    def csv_text(self) -> str:
        fields = ["run", "folder", "label", *self.keys, "status", "best_val_accuracy", "best_epoch",
                  "val_accuracy", "test_accuracy", "test_loss", "epochs", "epochs_planned",
                  "train_seconds", "params"]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for r in self.runs:
            row = dict(r.row, folder=str(r.folder))
            row.update({k: fmt_value(r.config[k]) for k in self.keys if k in r.config})
            w.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in fields})
        return buf.getvalue()

    def write(self, out: Path) -> list[Path]:
        """compare.csv, compare.md and the overlaid validation curves, into out."""
        out = Path(out)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UsageError(f"cannot create output folder {out}: {e.strerror}; choose another --out") from None
        written = [out / "compare.csv", out / "compare.md"]
        atomic_write(written[0], self.csv_text())
        atomic_write(written[1], self.markdown())
        for metric in ("val_accuracy", "val_loss"):
            path = out / f"{metric}.png"
            if self._plot(metric, path):
                written.append(path)
        return written

    def _plot(self, metric: str, path: Path) -> bool:
        """One line per run, or per setting (mean with a ±std band) when seeds are grouped."""
        lines = []  # (label, epochs, values, std or None)
        if self.groups:
            for g in self.groups:
                per_epoch: dict[int, list[float]] = {}
                for r in g["runs"]:
                    for row in r.history:
                        if row.get(metric) is not None:
                            per_epoch.setdefault(row["epoch"], []).append(row[metric])
                if per_epoch:
                    epochs = sorted(per_epoch)
                    stats = [_mean_std(per_epoch[e]) for e in epochs]
                    lines.append((f"{g['label']} ({g['seeds']} seeds)", epochs, [m for m, _ in stats],
                                  [s or 0.0 for _, s in stats]))
        else:
            for r in self.runs:
                pts = [(row["epoch"], row[metric]) for row in r.history if row.get(metric) is not None]
                if pts:
                    label = r.row["label"] + ("" if r.status == "completed" else f" [{r.status}]")
                    lines.append((label, [e for e, _ in pts], [v for _, v in pts], None))
        missing = len(self.groups or self.runs) - len(lines)
        if not lines:
            click.echo(f"hdr: note: no run has {metric} (no validation data); {path.name} not written", err=True)
            return False
        from hdr.plots import _pyplot, save_figure

        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(8, 4.5))
        cmap = plt.get_cmap("tab10" if len(lines) <= 10 else "tab20")
        for i, (label, epochs, values, std) in enumerate(lines):
            color = cmap(i % cmap.N)
            style = "-" if i < cmap.N else "--"
            ax.plot(epochs, values, style, marker="o", ms=3, color=color, label=label)
            if std is not None and any(std):
                lo = [v - s for v, s in zip(values, std)]
                hi = [v + s for v, s in zip(values, std)]
                ax.fill_between(epochs, lo, hi, color=color, alpha=0.15, linewidth=0)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric.replace("_", " "))
        all_epochs = sorted({e for _, es, _, _ in lines for e in es})
        if len(all_epochs) <= 20:
            ax.set_xticks(all_epochs)
        ax.grid(alpha=0.3)
        title = f"{metric.replace('_', ' ')} per epoch"
        if self.groups:
            title += ", mean ± std over seeds"
        if missing:
            title += f" ({missing} with no {metric.replace('_', ' ')} values not shown)"
        if len(lines) <= 30:
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        else:
            title += f" ({len(lines)} runs; too many for a legend, see compare.csv)"
        ax.set_title(title)
        save_figure(fig, path)
        return True


def _pct(v) -> str | None:
    return None if v is None else f"{100 * v:.2f}"


def _num(v, digits: int) -> str | None:
    return None if v is None else f"{v:.{digits}f}"


def _epochs(g: dict) -> str | None:
    if g["epochs"] is None:
        return None
    return str(round(g["epochs"])) if not g["epochs_std"] else f"{g['epochs']:.1f}"  # whole unless they vary


def _pm(g: dict, metric: str) -> str | None:
    m, s = g[metric], g[f"{metric}_std"]
    if m is None:
        return None
    return f"{100 * m:.2f} ± {100 * s:.2f}" if s is not None else f"{100 * m:.2f}"


def _tabulate(rows, headers, fmt, n_left: int) -> str:
    """Cells are pre-formatted strings (so 98.40 keeps its zero); numbers align right."""
    from tabulate import tabulate

    align = ["left"] * n_left + ["right"] * (len(headers) - n_left - 1) + ["left"]  # status last
    return tabulate(rows, headers=headers, tablefmt=fmt, missingval="-", disable_numparse=True, colalign=align)


# ------------------------------------------------------------------------------ command

@click.command()
@click.argument("paths", nargs=-1, metavar="RUN...", type=click.Path(path_type=str))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Also write compare.csv, compare.md and val_accuracy.png / val_loss.png here.")
@click.option("--sort", "sort_key", metavar="KEY",
              help="Sort by a column: test_accuracy, best_val_accuracy, val_accuracy (best first), "
                   "test_loss, train_seconds, params, epochs, best_epoch, status, run, or a config key.")
def command(paths, out, sort_key):
    """Compare runs side by side: the config keys that differ, accuracy, loss, time, status.

    RUN is a run folder, a sweep folder (its runs) or a cv folder (its folds); a glob such as
    runs/* is fine, folders that are not runs are skipped with a warning.

    \b
      hdr compare runs/*
      hdr compare runs/sweeps/<id> --sort test_accuracy --out report/
    """
    if not paths:
        raise UsageError("give the run folders to compare, e.g. hdr compare runs/*")
    cmp = Comparison(load_runs(paths), sort_key)
    click.echo(cmp.text())
    if out is not None:
        for path in cmp.write(out):
            click.echo(f"wrote {path}", err=True)
