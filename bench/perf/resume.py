"""How close is an interrupted-and-resumed run to the same run left alone?

For each seed: train a config uninterrupted; train it again, send SIGINT once epoch --cut has
been committed to history.csv, then `hdr train --resume` it to the end. Reports, per seed, the
epochs the interrupted run kept, whether the two histories are identical before and after the
cut, the largest per-epoch difference in val_accuracy, and the final test accuracy of both.
hdr draws each epoch's shuffle and dropout masks from (seed, epoch), so the two should agree
exactly on the same machine and backend.

    python -m bench.perf.resume --config configs/mlp_dropout_adam.yaml --epochs 4 --cut 2 --seeds 1 2 3
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from bench.layout import ROOT
from bench.perf.run import env, hdr_exe, save


def history(folder: Path) -> list[dict]:
    with open(folder / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


def train(config: str, epochs: int, seed: int, runs: Path, cut: int | None) -> tuple[Path, int]:
    """The run folder, and how many epochs it had when interrupted (None: not interrupted)."""
    cmd = hdr_exe() + ["train", config, f"training.epochs={epochs}", f"training.seed={seed}",
                       "--runs-dir", str(runs), "-q"]
    before = set(runs.glob("*")) if runs.exists() else set()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env(), cwd=ROOT, text=True)
    kept = None
    if cut is not None:
        while p.poll() is None:
            new = [f for f in runs.glob("*") if f not in before]
            if new and (new[0] / "history.csv").exists() and len(history(new[0])) >= cut:
                p.send_signal(signal.SIGINT)
                break
            time.sleep(0.05)
    out, err = p.communicate()
    folder = [f for f in runs.glob("*") if f not in before][0]
    if cut is not None:
        assert p.returncode == 130, (p.returncode, err[-2000:])
        kept = len(history(folder))
        r = subprocess.run(hdr_exe() + ["train", "--resume", str(folder), "-q"], capture_output=True, text=True,
                           env=env(), cwd=ROOT)
        assert r.returncode == 0, r.stderr[-2000:]
    else:
        assert p.returncode == 0, err[-2000:]
    return folder, kept


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/mlp_dropout_adam.yaml")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--cut", type=int, default=2, help="interrupt once this many epochs are committed")
    ap.add_argument("--seeds", type=int, nargs="*", default=[1, 2, 3])
    args = ap.parse_args()
    runs = Path(tempfile.mkdtemp(prefix="hdr-bench-resume-"))
    rows = []
    for seed in args.seeds:
        whole, _ = train(args.config, args.epochs, seed, runs, None)
        resumed, kept = train(args.config, args.epochs, seed, runs, args.cut)
        hw, hr = history(whole), history(resumed)
        assert [int(r["epoch"]) for r in hr] == list(range(1, args.epochs + 1)), "gap or duplicate epoch"
        same = [all(hw[i][k] == hr[i][k] for k in ("loss", "accuracy", "val_loss", "val_accuracy"))
                for i in range(args.epochs)]
        gap = max(abs(float(hw[i]["val_accuracy"]) - float(hr[i]["val_accuracy"])) for i in range(kept, args.epochs))
        tw = json.loads((whole / "metrics.json").read_text())["test_accuracy"]
        tr = json.loads((resumed / "metrics.json").read_text())["test_accuracy"]
        rows.append({"seed": seed, "kept": kept, "same_before_cut": all(same[:kept]),
                     "same_after_cut": all(same[kept:]), "max_val_gap_after": gap,
                     "test_whole": tw, "test_resumed": tr})
        print(rows[-1], flush=True)
    table = (f"hdr train {args.config}, {args.epochs} epochs, SIGINT after epoch {args.cut}, then --resume\n\n"
             "| seed | epochs kept at SIGINT | history identical before the cut | after the cut | "
             "max val_accuracy gap after | test accuracy, uninterrupted | test accuracy, resumed | difference |\n"
             "|---|---|---|---|---|---|---|---|\n"
             + "\n".join(f"| {r['seed']} | {r['kept']} | {'yes' if r['same_before_cut'] else 'NO'} | "
                         f"{'yes' if r['same_after_cut'] else 'NO'} | "
                         f"{100 * r['max_val_gap_after']:.2f} pp | {100 * r['test_whole']:.2f}% | "
                         f"{100 * r['test_resumed']:.2f}% | {100 * (r['test_resumed'] - r['test_whole']):+.2f} pp |"
                         for r in rows))
    save("resume", {"args": vars(args), "rows": rows}, table)


if __name__ == "__main__":
    main()
