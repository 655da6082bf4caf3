"""A sweep of short runs: `hdr sweep` (reused workers) against the same points as separate
`hdr train` processes, alternated in one invocation. Wall, user and system time of each.

    python -m bench.perf.sweep                  # 16 points of 1-epoch USPS SLPs, --jobs 1, 2 rounds
    python -m bench.perf.sweep --rounds 3
    python -m bench.perf.sweep --jobs 2         # two at a time on both sides (sweep-jobs2-<time>.json)
    python -m bench.perf.sweep render           # the BENCHMARKS.md block (bench/docs/harnesses.py)

Writes bench/results/sweep-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from bench.docs.harnesses import sweep as render
from bench.layout import DEFAULT_DATA, RESULTS, ROOT, command

CONFIG = ROOT / "configs" / "slp_sgd.yaml"
FIXED = ["dataset.name=usps", "training.epochs=1"]
GRID = ("optimizer.learning_rate", ["0.001", "0.002", "0.005", "0.01", "0.02", "0.05", "0.1", "0.2"])
SEEDS = 2  # 8 learning rates x 2 seeds = 16 points


def timed(cmds: list[list[str]], env: dict, at_a_time: int = 1) -> dict:
    """Run the commands, at_a_time of them at once; wall time and the children's CPU time."""
    from concurrent.futures import ThreadPoolExecutor

    def run(cmd):
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(at_a_time) as pool:
        list(pool.map(run, cmds))
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"wall": round(wall, 2), "user": round(after.ru_utime - before.ru_utime, 2),
            "system": round(after.ru_stime - before.ru_stime, 2),
            "minor_faults": after.ru_minflt - before.ru_minflt}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--jobs", type=int, default=1,
                    help="points at a time on both sides: hdr sweep --jobs N against N separate processes at once")
    args = ap.parse_args()
    hdr = str(Path(sys.executable).with_name("hdr"))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.setdefault("HDR_DATA_DIR", str(DEFAULT_DATA))
    key, values = GRID
    rounds = []
    for r in range(args.rounds):
        work = Path(tempfile.mkdtemp(prefix="hdr-bench-sweep-"))
        try:
            sweep = [hdr, "sweep", str(CONFIG), *FIXED, "--grid", f"{key}={','.join(values)}", "--seeds", str(SEEDS),
                     "--jobs", str(args.jobs), "--runs-dir", str(work / "sweep"), "-q"]
            # The same points as separate processes, --jobs at a time.
            singles = [[hdr, "train", str(CONFIG), *FIXED, f"{key}={v}", f"training.seed={1 + s}",
                        "--runs-dir", str(work / "singles"), "-q"] for v in values for s in range(SEEDS)]
            order = [("sweep", lambda: timed([sweep], env)), ("separate", lambda: timed(singles, env, args.jobs))]
            if r % 2:
                order.reverse()  # alternate which goes first
            result = {name: run() for name, run in order}
            result["ratio_wall"] = round(result["separate"]["wall"] / result["sweep"]["wall"], 2)
            result["ratio_cpu"] = round((result["separate"]["user"] + result["separate"]["system"])
                                        / (result["sweep"]["user"] + result["sweep"]["system"]), 2)
            rounds.append(result)
            print(json.dumps(result), flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    out = {
        "bench": "sweep", "when": datetime.now().isoformat(timespec="seconds"),
        "command": command(),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "load_before": os.getloadavg()[0]},
        "points": len(values) * SEEDS, "config": f"{CONFIG.name} {' '.join(FIXED)}", "jobs": args.jobs,
        "rounds": rounds,
        "median_ratio_wall": statistics.median(r["ratio_wall"] for r in rounds),
        "median_ratio_cpu": statistics.median(r["ratio_cpu"] for r in rounds),
    }
    tag = "" if args.jobs == 1 else f"jobs{args.jobs}-"
    path = RESULTS / f"sweep-{tag}{datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(path)


if __name__ == "__main__":
    if sys.argv[1:] == ["render"]:
        print(render(), end="")
    else:
        main()
