"""The Ray executor's overhead against local workers: the same 8 runs (a USPS SLP sweep of 8
learning rates), two at a time on this 2-core machine, three ways, alternated per round:

    local        hdr sweep --jobs 2
    ray-fresh    hdr sweep --executor ray             (the command starts its own Ray instance)
    ray-cluster  hdr sweep --executor ray --address   (a two-node Ray test cluster already running)

Wall time, and user and system CPU of every process the benchmark started (Ray's daemons and
workers included), read from /proc every 0.2 s (a process's last < 0.2 s may be missed).

    python -m bench.perf.ray_overhead            # 2 rounds
    python -m bench.perf.ray_overhead render     # the BENCHMARKS.md block (bench/docs/harnesses.py)

Writes bench/results/ray-overhead-<time>.json.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

from bench.docs.harnesses import ray_overhead as render
from bench.layout import DEFAULT_DATA, RESULTS, ROOT, command

CONFIG = ROOT / "configs" / "slp_sgd.yaml"
FIXED = ["dataset.name=usps", "training.epochs=3"]
GRID = "optimizer.learning_rate=0.001,0.002,0.005,0.01,0.02,0.05,0.1,0.2"
TICK = os.sysconf("SC_CLK_TCK")


class TreeCPU:
    """CPU time that the descendants of this process spend inside the block, sampled from /proc
    (a process alive before it, such as a running cluster's daemons, counts from its time then)."""

    def __init__(self):
        self.seen: dict[tuple[int, int], tuple[int, int]] = {}  # (pid, start) -> (utime, stime) ticks
        self.before: dict[tuple[int, int], tuple[int, int]] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> None:
        stats = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    f = open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                stats[int(d)] = (int(f[1]), int(f[19]), int(f[11]), int(f[12]))  # ppid, start, utime, stime
        me = os.getpid()
        for pid, (ppid, start, u, s) in stats.items():
            p, hops = pid, 0
            while p in stats and p != me and hops < 50:
                p, hops = stats[p][0], hops + 1
            if p == me and pid != me:
                self.seen[(pid, start)] = (u, s)

    def _loop(self) -> None:
        while not self.stop.wait(0.2):
            self._sample()

    def __enter__(self):
        self._sample()
        self.before, self.seen = self.seen, {}
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self._sample()
        self.stop.set()
        self.thread.join()

    def totals(self) -> dict:
        spent = [(u - self.before.get(k, (0, 0))[0], s - self.before.get(k, (0, 0))[1])
                 for k, (u, s) in self.seen.items()]
        return {"user": round(sum(u for u, _ in spent) / TICK, 2), "system": round(sum(s for _, s in spent) / TICK, 2)}


def timed(cmd: list[str], env: dict) -> dict:
    with TreeCPU() as cpu:
        t0 = time.perf_counter()
        out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    return {"wall": round(wall, 2), **cpu.totals()}


def main(rounds: int) -> None:
    import ray
    from ray.cluster_utils import Cluster

    hdr = str(Path(sys.executable).with_name("hdr"))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.setdefault("HDR_DATA_DIR", str(DEFAULT_DATA))
    os.environ.update(HDR_DATA_DIR=env["HDR_DATA_DIR"])  # the cluster's nodes inherit it
    node = {"num_cpus": 1, "object_store_memory": 100 * 2**20}
    cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    cluster.add_node(**node)
    cluster.wait_for_nodes()
    ray.shutdown()
    results = []
    try:
        for r in range(rounds):
            work = Path(tempfile.mkdtemp(prefix="hdr-bench-ray-"))
            try:
                base = [hdr, "sweep", str(CONFIG), *FIXED, "--grid", GRID, "-q"]
                ways = {
                    "local": base + ["--jobs", "2", "--runs-dir", str(work / "local")],
                    "ray-fresh": base + ["--executor", "ray", "--runs-dir", str(work / "fresh")],
                    "ray-cluster": base + ["--executor", "ray", "--address", cluster.address,
                                           "--runs-dir", str(work / "cluster")],
                }
                order = list(ways)[r % 3:] + list(ways)[:r % 3]  # rotate which goes first
                result = {name: timed(ways[name], env) for name in order}
                for name in ("ray-fresh", "ray-cluster"):
                    result[f"{name}_ratio_wall"] = round(result[name]["wall"] / result["local"]["wall"], 2)
                    result[f"{name}_ratio_cpu"] = round(
                        (result[name]["user"] + result[name]["system"])
                        / (result["local"]["user"] + result["local"]["system"]), 2)
                results.append(result)
                print(json.dumps(result), flush=True)
            finally:
                shutil.rmtree(work, ignore_errors=True)
    finally:
        cluster.shutdown()
    out = {
        "bench": "ray-overhead", "when": datetime.now().isoformat(timespec="seconds"),
        "command": command(),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "load_before": os.getloadavg()[0]},
        "ray": ray.__version__, "runs": 8, "config": f"{CONFIG.name} {' '.join(FIXED)} --grid {GRID}",
        "rounds": results,
        **{f"median_{k}": statistics.median(r[k] for r in results)
           for k in ("ray-fresh_ratio_wall", "ray-fresh_ratio_cpu", "ray-cluster_ratio_wall", "ray-cluster_ratio_cpu")},
    }
    path = RESULTS / f"ray-overhead-{datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(path)


if __name__ == "__main__":
    if sys.argv[1:] == ["render"]:
        print(render(), end="")
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
