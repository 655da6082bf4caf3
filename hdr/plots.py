"""Figures as PNG: training curves of one run (train vs validation per epoch), and the curves of
compared runs (a view of an hdr.compare.Result)."""

from __future__ import annotations

import io
from pathlib import Path

from hdr.rundir import atomic_write


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path, tight: bool = True) -> None:
    """tight: crop to what was drawn, at the price of drawing the figure twice."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight" if tight else None)
    _pyplot().close(fig)
    atomic_write(Path(path), buf.getvalue())


def curve(history: list[dict], metric: str, path: Path, title: str) -> None:
    plt = _pyplot()
    epochs = [r["epoch"] for r in history]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epochs, [r.get(metric) for r in history], marker="o", ms=3, label="train")
    val = [r.get(f"val_{metric}") for r in history]
    if any(v is not None for v in val):
        ax.plot(epochs, [float("nan") if v is None else v for v in val], marker="o", ms=3, label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title(title)
    if epochs:
        ax.set_xlim(min(epochs) - 0.2, max(epochs) + 0.2)
    if len(epochs) <= 20:
        ax.set_xticks(epochs)
    ax.grid(alpha=0.3)
    ax.legend()
    # Fixed margins instead of a tight crop: every run draws two of these, and in a sweep's reused
    # worker the second drawing was a tenth of a short run's time.
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.12, top=0.92)
    save_figure(fig, path, tight=False)


def training_curves(history: list[dict], folder: Path, name: str = "") -> None:
    suffix = f" ({name})" if name else ""
    curve(history, "accuracy", Path(folder) / "accuracy.png", f"accuracy{suffix}")
    curve(history, "loss", Path(folder) / "loss.png", f"loss{suffix}")


def comparison_curves(result, metric: str, path: Path) -> bool:
    """A metric per epoch for the runs of an hdr.compare.Result: one line per run, or per
    setting (mean over distinct seeds with a ±std band) when runs are grouped. False, and
    nothing written, when no run has the metric."""
    from hdr.compare import sample_of, seed_stat, seeds_text

    lines = []  # (label, epochs, values, std or None)
    if result.groups:
        for g in result.groups:
            per_epoch: dict[int, list] = {}
            for r in g.runs:
                for row in r.history:
                    if row.get(metric) is not None:
                        per_epoch.setdefault(row["epoch"], []).append((sample_of(r), row[metric]))
            if per_epoch:
                epochs = sorted(per_epoch)
                stats = [seed_stat(per_epoch[e]) for e in epochs]
                lines.append((f"{g.label} ({seeds_text(g)})", epochs, [s.mean for s in stats], [s.std or 0.0 for s in stats]))
    else:
        for row in result.rows:
            pts = [(h["epoch"], h[metric]) for h in row.run.history if h.get(metric) is not None]
            if pts:
                label = row.label + ("" if row.run.status == "completed" else f" [{row.run.status}]")
                lines.append((label, [e for e, _ in pts], [v for _, v in pts], None))
    if not lines:
        return False
    missing = len(result.groups or result.rows) - len(lines)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    cmap = plt.get_cmap("tab10" if len(lines) <= 10 else "tab20")
    for i, (label, epochs, values, std) in enumerate(lines):
        color = cmap(i % cmap.N)
        ax.plot(epochs, values, "-" if i < cmap.N else "--", marker="o", ms=3, color=color, label=label)
        if std is not None and any(std):
            ax.fill_between(epochs, [v - s for v, s in zip(values, std)], [v + s for v, s in zip(values, std)],
                            color=color, alpha=0.15, linewidth=0)
    ax.set_xlabel("epoch")
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
