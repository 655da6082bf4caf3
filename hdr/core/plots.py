"""Figures as PNG: matplotlib without a display, and the curve of one metric per epoch."""

from __future__ import annotations

import io
from pathlib import Path

from hdr.core.files import atomic_write


def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt

    return plt


def figure_png(fig, tight: bool = True) -> bytes:
    """The figure as PNG bytes, closed. tight: crop to what was drawn, at the price of drawing the
    figure twice."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight" if tight else None)
    pyplot().close(fig)
    return buf.getvalue()


def save_figure(fig, path: Path, tight: bool = True) -> None:
    atomic_write(Path(path), figure_png(fig, tight))


def curve_png(epochs: list, train: list, val: list, metric: str, title: str) -> bytes:
    """One metric per epoch, train against validation (val: None where an epoch has none)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epochs, train, marker="o", ms=3, label="train")
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
    return figure_png(fig, tight=False)
