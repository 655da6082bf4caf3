"""Figures of analyses: the curves of compared runs (a view of an hdr.analysis.compare.Result)
and the box plot of a cross-validation's folds."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hdr.analysis.stats import sample_of, seed_stat, seeds_text
from hdr.core.plots import pyplot, save_figure
from hdr.runs import rundir


def comparison_curves(result, metric: str, path: Path) -> bool:
    """A metric per epoch for the runs of an hdr.analysis.compare.Result: one line per run, or per
    setting (mean over distinct seeds with a ±std band) when runs are grouped. False, and
    nothing written, when no run has the metric."""
    lines = []  # (label, epochs, values, std or None)
    if result.groups:
        for g in result.groups:
            per_epoch: dict[int, list] = {}
            for r in g.runs:
                for row in r.history:
                    if row.get(metric) is not None:
                        per_epoch.setdefault(row[rundir.EPOCH], []).append((sample_of(r), row[metric]))
            if per_epoch:
                epochs = sorted(per_epoch)
                stats = [seed_stat(per_epoch[e]) for e in epochs]
                lines.append((f"{g.label} ({seeds_text(len(g.runs), g.seeds)})", epochs, [s.mean for s in stats], [s.std or 0.0 for s in stats]))
    else:
        for row in result.rows:
            pts = [(h[rundir.EPOCH], h[metric]) for h in row.run.history if h.get(metric) is not None]
            if pts:
                label = row.label + ("" if row.run.status == rundir.COMPLETED else f" [{row.run.status}]")
                lines.append((label, [e for e, _ in pts], [v for _, v in pts], None))
    if not lines:
        return False
    missing = len(result.groups or result.rows) - len(lines)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    cmap = plt.get_cmap("tab10" if len(lines) <= 10 else "tab20")
    for i, (label, epochs, values, std) in enumerate(lines):
        color = cmap(i % cmap.N)
        ax.plot(epochs, values, "-" if i < cmap.N else "--", marker="o", ms=3, color=color, label=label)
        if std is not None and any(std):
            ax.fill_between(epochs, [v - s for v, s in zip(values, std)], [v + s for v, s in zip(values, std)],
                            color=color, alpha=0.15, linewidth=0)
    ax.set_xlabel(rundir.EPOCH)
    ax.set_ylabel(metric.replace("_", " "))
    all_epochs = sorted({e for _, es, _, _ in lines for e in es})
    if len(all_epochs) <= 20:
        ax.set_xticks(all_epochs)
    ax.grid(alpha=0.3)
    title = f"{metric.replace('_', ' ')} per epoch"
    if result.groups:
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


def box_plot(summary: dict, path: Path, title: str) -> None:
    plt = pyplot()
    series = [(name, [100 * v for v in summary[key]["values"]])
              for name, key in (("validation\n(held-out fold)", rundir.VAL_ACCURACY), ("test set", rundir.TEST_ACCURACY))
              if summary[key]["n"]]
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.boxplot([v for _, v in series], widths=0.45, showmeans=True,
               meanprops={"marker": "D", "markerfacecolor": "white", "markeredgecolor": "black"})
    ax.set_xticks(range(1, len(series) + 1), [name for name, _ in series])
    rng = np.random.default_rng(0)  # jitter only, so the fold points do not sit on each other
    for i, (_, values) in enumerate(series, start=1):
        ax.scatter(i + rng.uniform(-0.08, 0.08, len(values)), values, s=18, color="tab:blue", alpha=0.8, zorder=3)
    ax.set_ylabel("accuracy (%)")
    ax.set_xlabel("dots: folds, line: median, diamond: mean, box: quartiles", fontsize=8, color="dimgray")
    ax.set_title(title)
    ax.yaxis.get_major_formatter().set_useOffset(False)
    ax.grid(axis="y", alpha=0.3)
    save_figure(fig, path)
