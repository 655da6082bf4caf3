"""Start-to-end time of `hdr predict RUN IMAGE` for one image, with the run's ONNX export
(ONNX Runtime, no TensorFlow) and without it (model.keras through Keras/TensorFlow).

    python -m bench.perf.predict_startup RUN [--image examples/seven.png] [--repeats 5]

RUN is a completed run folder. It is copied twice into a temporary folder: one copy gets
`hdr export --format onnx`, the other none, and the two are timed alternately, each a fresh
process, so that both see the same machine load: wall time, and the process's user and system
CPU time. Writes bench/results/predict-startup-<time>.json; bench/docs/harnesses.py's
`predict_startup` shows the latest in BENCHMARKS.md.
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
from datetime import datetime, timezone
from pathlib import Path

from bench.layout import RESULTS, command
from bench.layout import ROOT as REPO


def _timed(cmd: list[str]) -> tuple[dict, str]:
    """Run cmd; its wall, user and system seconds, and its output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{out.stderr[-2000:]}")
    return {"wall": round(wall, 3), "user": round(after.ru_utime - before.ru_utime, 3),
            "system": round(after.ru_stime - before.ru_stime, 3)}, out.stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--image", type=Path, default=REPO / "examples" / "seven.png")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    hdr = [sys.executable, "-m", "hdr"]
    with tempfile.TemporaryDirectory() as tmp:
        keras_run, onnx_run = Path(tmp) / "keras", Path(tmp) / "onnx"
        for dest in (keras_run, onnx_run):
            shutil.copytree(args.run, dest, ignore=shutil.ignore_patterns("export", ".lock"))
        export_s, _ = _timed([*hdr, "export", str(onnx_run), "--format", "onnx"])
        times: dict[str, list[dict]] = {"onnx": [], "keras": []}
        answers = {}
        _timed([*hdr, "predict", str(keras_run), str(args.image)])  # warm the file cache once for both
        _timed([*hdr, "predict", str(onnx_run), str(args.image)])
        for _ in range(args.repeats):
            for name, run in (("onnx", onnx_run), ("keras", keras_run)):
                t, out = _timed([*hdr, "predict", str(run), str(args.image)])
                times[name].append(t)
                answers[name] = out.split(": ", 1)[1]
    result = {
        "what": "hdr predict RUN IMAGE, one image, wall time from process start to exit",
        "command": command([str(args.run), "--image", str(args.image), "--repeats", str(args.repeats)]),
        "timed": "python -m hdr predict RUN IMAGE (RUN with export/model.onnx, and without: model.keras)",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_average_1min_at_end": round(os.getloadavg()[0], 2)},
        "run": str(args.run),
        "image": str(args.image),
        "repeats": args.repeats,
        "export_seconds": export_s["wall"],
        "seconds": times,
        "median_seconds": {k: {c: statistics.median(t[c] for t in v) for c in ("wall", "user", "system")}
                           for k, v in times.items()},
        "min_seconds": {k: min(t["wall"] for t in v) for k, v in times.items()},
        "answers": answers,
        "goal_seconds": 0.5,
    }
    result["speedup"] = round(result["median_seconds"]["keras"]["wall"] / result["median_seconds"]["onnx"]["wall"], 1)
    out = RESULTS / f"predict-startup-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("median_seconds", "min_seconds", "speedup", "answers")}))
    print(out)


if __name__ == "__main__":
    main()
