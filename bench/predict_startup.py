"""Start-to-end time of `hdr predict RUN IMAGE` for one image, with the run's ONNX export
(ONNX Runtime, no TensorFlow) and without it (model.keras through Keras/TensorFlow).

    python bench/predict_startup.py RUN [--image examples/seven.png] [--repeats 5]

RUN is a completed run folder. It is copied twice into a temporary folder: one copy gets
`hdr export --format onnx`, the other none, and the two are timed alternately, each a fresh
process, so that both see the same machine load: wall time, and the process's user and system
CPU time. Writes bench/results/predict-startup-<time>.json; `render` (bench/docs.py) shows the
latest in BENCHMARKS.md.
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

REPO = Path(__file__).resolve().parents[1]


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
        "command": f"python bench/predict_startup.py {args.run} --image {args.image} --repeats {args.repeats}",
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
    out = REPO / "bench" / "results" / f"predict-startup-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("median_seconds", "min_seconds", "speedup", "answers")}))
    print(out)


def render() -> str:
    """BENCHMARKS.md's block: the latest measurement (wall, user and system CPU, medians)."""
    files = sorted((REPO / "bench" / "results").glob("predict-startup-*.json"))
    r = json.loads(files[-1].read_text())
    med = r["median_seconds"]
    if not isinstance(med["onnx"], dict):  # an older result recorded wall time only
        med = {k: {"wall": v} for k, v in med.items()}
    lines = ["| hdr predict RUN IMAGE reads | wall (median) | user CPU | system CPU | fastest wall |",
             "| --- | --- | --- | --- | --- |"]
    labels = {"onnx": "RUN/export/model.onnx with ONNX Runtime (no TensorFlow)", "keras": "RUN/model.keras with Keras/TensorFlow"}
    for k in ("onnx", "keras"):
        m = med[k]
        cpu = [f"{m[c]:.2f} s" if c in m else "-" for c in ("user", "system")]
        lines.append(f"| {labels[k]} | {m['wall']:.2f} s | {cpu[0]} | {cpu[1]} | {r['min_seconds'][k]:.2f} s |")
    m = r["machine"]
    lines += ["", f"One image ({Path(r['image']).name}), each a fresh process from start to exit, {r['repeats']} alternated "
                  f"runs of each; ONNX {r['speedup']}x faster (goal: under {r['goal_seconds']} s). Run: `{r['run']}`; "
                  f"{m['cpus']} CPUs" + (f" (load average {m['load_average_1min_at_end']} at the end: other work shared them)"
                                         if "load_average_1min_at_end" in m else "")
                  + f", Python {m['python']}, {r['date'][:10]}. Source: `bench/results/{files[-1].name}`, "
                  f"written by `{r['command']}`."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
