"""`hdr runs`: a table of the runs in a folder, read from run.json files only (no Keras)."""

from __future__ import annotations

import json
from pathlib import Path

from hdr.errors import UsageError
from hdr.rundir import effective_status, read_history


def run_row(folder: Path) -> dict | None:
    try:
        info = json.loads((folder / "run.json").read_text())
    except (OSError, ValueError):
        return None
    hist = read_history(folder / "history.csv")
    vals = [r["val_accuracy"] for r in hist if r.get("val_accuracy") is not None]
    return {
        "id": folder.name,
        "status": effective_status(info),
        "config": info.get("config_name", ""),
        "dataset": info.get("dataset", ""),
        "model": info.get("model", ""),
        "optimizer": info.get("optimizer", ""),
        "epochs": f"{len(hist)}/{info.get('epochs_planned', '?')}",
        "best val acc": f"{max(vals):.4f}" if vals else "",
    }


def list_runs(runs_dir: Path, show_all: bool = False) -> str:
    if not runs_dir.is_dir():
        raise UsageError(f"runs folder not found: {runs_dir} (train something first, or give the folder)")
    rows = []
    for folder in sorted(p for p in runs_dir.iterdir() if p.is_dir()):
        row = run_row(folder)
        if row is None:
            if show_all:
                rows.append({"id": folder.name, "status": "not a run"})
            continue
        rows.append(row)
    if not rows:
        return f"no runs in {runs_dir}"
    from tabulate import tabulate

    return tabulate(rows, headers="keys", tablefmt="simple")
