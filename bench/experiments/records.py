"""The record configs (configs/records/) trained over seeds, ensembled, and set beside the literature.

    python -m bench.experiments.records train NAME [--seeds 1,2,3]   # runs/records/NAME/<run> per seed
    python -m bench.experiments.records ensemble NAME    # hdr ensemble of NAME's runs -> runs/records/NAME-ensemble
    python -m bench.experiments.records collect          # -> bench/results/records.json
    python -m bench.docs.blocks render                   # RECORDS.md's tables from it (bench/docs/records.py)

Each figure in RECORDS.md's hdr rows comes from a run folder's metrics.json (test accuracy,
parameters, CPU time of the training process) or an ensemble folder's eval metrics; the
literature rows are the papers' published figures, cited (bench/docs/records.py, which renders
the tables).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.docs.records import RECORDS_RESULT as OUT
from bench.docs.records import table
from bench.layout import ROOT

RUNS = ROOT / "runs" / "records"

# name -> (config, goal in test accuracy or None, what the goal is)
RECORDS = {
    "mnist_cnn": ("configs/records/mnist_cnn.yaml", 0.9970, "single CNN, mean of seeds 1-3"),
    "mnist_mlp": ("configs/records/mnist_mlp.yaml", 0.9880, "no convolutions, mean of seeds 1-3"),
    "usps_cnn": ("configs/records/usps_cnn.yaml", 0.9800, "single CNN, mean of seeds 1-3 (human: 97.5)"),
    "usps_writeup": ("configs/usps_cnn.yaml", 0.9700, "write-up 001's experiment, mean of seeds 1-3"),
}
ENSEMBLE_GOALS = {"mnist_cnn": 0.9980}
GOAL_SEEDS = (1, 2, 3)  # a goal is met by the mean of these seeds; further seeds train ensemble members

# Where a record's runs are, when not runs/records/NAME: write-up 001's were trained by the diagnosis
# that chose the config (collect checks that each run's config is the shipped one, seed aside).
RUN_FOLDERS = {"usps_writeup": ROOT / "runs" / "usps-diagnosis" / "augment-+-slope-0.01"}


def _seeds(args) -> list[int]:
    return [int(s) for s in args[args.index("--seeds") + 1].split(",")] if "--seeds" in args else [1, 2, 3]


def runs_of(name: str) -> list[Path]:
    folder = RUN_FOLDERS.get(name, RUNS / name)
    return sorted(p for p in folder.iterdir() if (p / "metrics.json").is_file()) if folder.is_dir() else []


def same_config(run: Path, config: str) -> bool:
    """Whether the run trained the shipped config (its resolved config.yaml, seed aside)."""
    from hdr.engine import config as config_mod

    def without_seed(cfg):
        r = cfg.resolved()
        r["training"].pop("seed")
        return r
    return without_seed(config_mod.load_run_config(run / "config.yaml")) == without_seed(config_mod.load(ROOT / config))


def train(name: str, seeds: list[int], overrides: list[str]) -> None:
    config = RECORDS[name][0]
    done = {json.loads((r / "run.json").read_text())["seed"] for r in runs_of(name)}
    for seed in seeds:
        if seed in done:
            continue
        t0 = time.time()
        r = subprocess.run([sys.executable, "-m", "hdr.cli", "train", config, *overrides, f"training.seed={seed}",
                            "--runs-dir", str(RUNS / name), "-q"], cwd=ROOT,
                           env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, capture_output=True, text=True)
        print(f"{name} seed {seed}: exit {r.returncode} in {time.time() - t0:.0f} s {r.stderr.strip()[-300:]}",
              flush=True)


def ensemble(name: str) -> None:
    out = RUNS / f"{name}-ensemble"
    r = subprocess.run([sys.executable, "-m", "hdr.cli", "ensemble", *map(str, runs_of(name)), "--out", str(out)],
                       cwd=ROOT, capture_output=True, text=True)
    print(r.stdout + r.stderr)


def collect() -> dict:
    # Run folders are not kept in git: a record whose runs are not on this machine keeps its stored entry.
    kept = json.loads(OUT.read_text())["records"] if OUT.is_file() else {}
    out = {"written": time.strftime("%Y-%m-%dT%H:%M:%S"), "records": {}}
    for name, (config, goal, what) in RECORDS.items():
        rows = []
        for run in runs_of(name):
            if not same_config(run, config):
                sys.exit(f"{run} did not train {config} as it is now; train it again: python -m bench.experiments.records train {name}")
            m = json.loads((run / "metrics.json").read_text())
            info = json.loads((run / "run.json").read_text())
            rows.append({"run": run.name, "seed": info["seed"], "test_accuracy": m["test_accuracy"],
                         "best_val_accuracy": m.get("best_val_accuracy"), "epochs": m["epochs"],
                         "params": m["params"], "cpu_seconds": m.get("process_cpu_seconds"),
                         "train_seconds": m["train_seconds"], "wall_seconds": m.get("wall_seconds"),
                         "cpu": info.get("runtime", {}).get("cpu")})
        if not rows:
            if name in kept:
                out["records"][name] = kept[name]
            continue
        scored = [r for r in rows if r["seed"] in GOAL_SEEDS] or rows
        acc = [r["test_accuracy"] for r in scored]
        entry = {"config": config, "goal": goal, "what": what, "runs": rows, "seeds": [r["seed"] for r in scored],
                 "mean": statistics.fmean(acc),
                 "std": statistics.stdev(acc) if len(acc) > 1 else 0.0}
        ens = RUNS / f"{name}-ensemble" / "metrics.json"
        if ens.is_file():
            e = json.loads(ens.read_text())
            entry["ensemble"] = {"members": len(e["members"]), "test_accuracy": e["test_accuracy"],
                                 "goal": ENSEMBLE_GOALS.get(name)}
        out["records"][name] = entry
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    return out


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["train"] and len(args) >= 2 and args[1] in RECORDS:
        rest = [a for a in args[2:] if a != "--seeds" and not (args.index(a) > 0 and args[args.index(a) - 1] == "--seeds")]
        train(args[1], _seeds(args), rest)
    elif args[:1] == ["ensemble"] and len(args) == 2 and args[1] in RECORDS:
        ensemble(args[1])
    elif args == ["collect"]:
        collect()
        print(table("mnist") + "\n" + table("usps"))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
