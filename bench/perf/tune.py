"""hdr tune, measured.

    python -m bench.perf.tune compare [--reps 3]   # TPE + median pruning against the grid, same trial budget
    python -m bench.perf.tune lr                   # write-up 000's MLP: does a tuned learning rate beat the default?
    python -m bench.perf.tune render               # the BENCHMARKS.md block (bench/docs/harnesses.py)

compare: USPS, write-up 004's MLP (64-64, SGD), 6 epochs a trial, 12 trials searching
optimizer.learning_rate in [1e-3, 1] (log) and training.batch_size in {32, 128, 512}: the grid is
3 batch sizes x 4 learning rates; TPE samples the same space and the median pruner stops trials
behind the median. Each repetition uses another training seed (and sampler seed). Recorded: the
best validation accuracy reached, the epochs trained, wall time and the CPU time of every process
(bench/perf/ray_overhead.py's /proc sampler).

lr: `hdr tune configs/mlp_adam.yaml optimizer.learning_rate=loguniform(1e-4,1e-1)` with 2 epochs
and --trials trials, against the config's own learning rate trained the same 2 epochs.

Writes bench/results/tune-compare-<time>.json and tune-lr-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from bench.docs.harnesses import tune as render
from bench.layout import DEFAULT_DATA, RESULTS, ROOT, command
from bench.perf.ray_overhead import TreeCPU

HDR = str(Path(sys.executable).with_name("hdr"))
SPACE = ["optimizer.learning_rate=loguniform(1e-3,1)", "training.batch_size=choice(32,128,512)"]
COMPARE_FIXED = ["dataset.name=usps", "training.epochs=6"]


def env() -> dict:
    e = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    e.setdefault("HDR_DATA_DIR", str(DEFAULT_DATA))
    return e


def run_tune(args: list[str], runs: Path) -> dict:
    with TreeCPU() as cpu:
        t0 = time.perf_counter()
        out = subprocess.run([HDR, "tune", *args, "--runs-dir", str(runs), "-q"], env=env(), capture_output=True,
                             text=True)
        wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"hdr tune {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    folder = Path(out.stdout.strip().splitlines()[-1])
    info = json.loads((folder / "tune.json").read_text())
    trials = []
    for p in folder.glob("*/run.json"):
        run = json.loads(p.read_text())
        trials.append({"trial": run["trial"], "status": run["status"], "epochs": run["epochs_completed"]})
    return {"wall": round(wall, 2), **cpu.totals(), "best_value": info["best"]["value"],
            "best_params": info["best"]["params"], "trials": sorted(trials, key=lambda t: t["trial"]),
            "epochs_trained": sum(t["epochs"] for t in trials),
            "pruned": sum(t["status"] == "pruned" for t in trials)}


def stamp(out: dict, name: str) -> None:
    out.update(when=datetime.now().isoformat(timespec="seconds"),
               command=command(),
               machine={"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                        "load_before": out.pop("_load")})
    path = RESULTS / f"{name}-{datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(path)


def compare(reps: int, trials: int) -> None:
    out = {"bench": "tune-compare", "_load": os.getloadavg()[0], "config": "mlp_sgd.yaml " + " ".join(COMPARE_FIXED),
           "space": SPACE, "trials": trials, "reps": []}
    for r in range(reps):
        work = Path(tempfile.mkdtemp(prefix="hdr-bench-tune-"))
        try:
            base = [str(ROOT / "configs" / "mlp_sgd.yaml"), *COMPARE_FIXED, f"training.seed={r + 1}", *SPACE,
                    "--trials", str(trials), "--seed", str(r + 1)]
            ways = {"grid": base + ["--sampler", "grid", "--pruner", "none"],
                    "tpe+median": base + ["--sampler", "tpe", "--pruner", "median", "--startup-trials", "4"]}
            order = list(ways) if r % 2 == 0 else list(reversed(ways))
            rep = {name: run_tune(ways[name], work / name) for name in order}
            out["reps"].append(rep)
            print(json.dumps({k: {x: v[x] for x in ("wall", "user", "best_value", "pruned", "epochs_trained")}
                              for k, v in rep.items()}), flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    stamp(out, "tune-compare")


def lr(trials: int) -> None:
    out = {"bench": "tune-lr", "_load": os.getloadavg()[0], "trials": trials}
    config = str(ROOT / "configs" / "mlp_adam.yaml")
    work = Path(tempfile.mkdtemp(prefix="hdr-bench-tune-lr-"))
    try:
        base = subprocess.run([HDR, "train", config, "training.epochs=2", "--runs-dir", str(work / "base"), "-q"],
                              env=env(), capture_output=True, text=True, check=True)
        metrics = json.loads((Path(base.stdout.strip().splitlines()[-1]) / "metrics.json").read_text())
        out["default"] = {"learning_rate": 0.001, "best_val_accuracy": metrics["best_val_accuracy"],
                          "test_accuracy": metrics["test_accuracy"]}
        out["tune"] = run_tune([config, "training.epochs=2", "optimizer.learning_rate=loguniform(1e-4,1e-1)",
                                "--trials", str(trials), "--startup-trials", "3"], work / "tune")
        best = next(Path(work / "tune" / "tune").iterdir())
        out["tune"]["best_test_accuracy"] = json.loads((best / "tune.json").read_text())["best"]["test_accuracy"]
        out["beats_default"] = out["tune"]["best_value"] > out["default"]["best_val_accuracy"]
        out["config"] = "mlp_adam.yaml training.epochs=2 (write-up 000's MLP)"
        print(json.dumps(out, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    stamp(out, "tune-lr")


if __name__ == "__main__":
    if sys.argv[1:] == ["render"]:
        print(render(), end="")
        sys.exit()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["compare", "lr"])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--trials", type=int, default=12, help="compare: 12; lr: give it (8 was the first run)")
    a = ap.parse_args()
    if a.what == "compare":
        compare(a.reps, a.trials)
    else:
        lr(a.trials)
