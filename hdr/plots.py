"""Training curves as PNG: train vs validation per epoch, one figure per metric."""

from __future__ import annotations

import io
from pathlib import Path

from hdr.rundir import atomic_write


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
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
    save_figure(fig, path)


def training_curves(history: list[dict], folder: Path, name: str = "") -> None:
    suffix = f" ({name})" if name else ""
    curve(history, "accuracy", Path(folder) / "accuracy.png", f"accuracy{suffix}")
    curve(history, "loss", Path(folder) / "loss.png", f"loss{suffix}")
