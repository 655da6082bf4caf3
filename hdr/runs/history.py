"""Figures read off a run's history (the rows of history.csv), computed here once for every command."""

from __future__ import annotations

from hdr.runs import rundir


def best_val(history) -> tuple[float | None, int | None]:
    """The best validation accuracy and the epoch that reached it (the earliest, on a tie);
    (None, None) for a run without validation data."""
    vals = [(r[rundir.VAL_ACCURACY], r[rundir.EPOCH]) for r in history if r.get(rundir.VAL_ACCURACY) is not None]
    if not vals:
        return None, None
    return max(vals, key=lambda t: (t[0], -t[1]))


def figures(rows) -> tuple:
    """What listings show of a history, in one pass over rows of any number (an iterator of
    rundir.iter_history keeps none): (best validation accuracy, its epoch (the earliest, on a tie),
    the last epoch's validation accuracy, epochs, seconds summed or None without epochs)."""
    best = best_epoch = last_val = None
    epochs = seconds = 0
    for r in rows:
        epochs += 1
        last_val = v = r.get(rundir.VAL_ACCURACY)
        if v is not None and (best is None or v > best):
            best, best_epoch = v, r[rundir.EPOCH]
        seconds += r.get(rundir.SECONDS) or 0
    return best, best_epoch, last_val, epochs, round(seconds, 3) if epochs else None


def early_stop(history, monitor: str, patience: int, min_delta: float = 0.0) -> tuple[int | None, bool]:
    """Early stopping read off the history: (the best epoch so far, whether to stop now).

    An epoch is an improvement when it beats the best so far by more than min_delta (higher
    val_accuracy, lower val_loss); training stops once `patience` epochs in a row brought none.
    A pure function of the rows, so a resumed run decides exactly as the uninterrupted one."""
    sign = 1.0 if monitor == rundir.VAL_ACCURACY else -1.0
    best = best_epoch = None
    for r in history:
        v = r.get(monitor)
        if v is None:
            continue
        if best is None or sign * (v - best) > min_delta:
            best, best_epoch = v, r[rundir.EPOCH]
    if best_epoch is None:
        return None, False
    return best_epoch, history[-1][rundir.EPOCH] - best_epoch >= patience
