"""Figures read off a run's history (the rows of history.csv), computed here once for every command."""

from __future__ import annotations


def best_val(history) -> tuple[float | None, int | None]:
    """The best validation accuracy and the epoch that reached it (the earliest, on a tie);
    (None, None) for a run without validation data."""
    vals = [(r["val_accuracy"], r["epoch"]) for r in history if r.get("val_accuracy") is not None]
    if not vals:
        return None, None
    return max(vals, key=lambda t: (t[0], -t[1]))
