"""GPU figures for BENCHMARKS.md: hdr with KERAS_BACKEND=jax against plain Keras + JAX.

Run on a machine with a GPU and JAX (TensorFlow is not needed). The device machine sees only the
working tree, so bring the MNIST files (and, if that machine lacks them, wheels of hdr's light
dependencies) along in git-ignored folders:

    mkdir -p runs/gpu-data && cp -r ../shared/datasets/mnist runs/gpu-data/
    # only if keras/pydantic/click/... are missing there (check with --check):
    #   pip download -d .whl keras pydantic pyyaml click platformdirs tabulate tqdm matplotlib pillow
    # then, on the GPU machine (carry runs/gpu-data and .whl), from the repository's root:
    python3 -m bench.perf.gpu --data runs/gpu-data       # ~5 minutes on an H100

It measures, alternating plain / hdr so drifts hit both:
  1. seconds per epoch (first, which includes XLA compilation, and steady) of the seed-003 CNN:
     bench/baselines/plain_keras_cnn.py vs hdr train configs/cnn_adam.yaml vs hdr train configs/cnn_adam_bf16.yaml
     with a whole epoch per call into the backend;
  2. time from `hdr train` start to >= 99.0% test accuracy: the fastest of a few configs that
     reach it (each run is a whole process, so start-up, data, compilation, saving all count).
Raw results go to bench/results/gpu-<time>.json and a table to stdout.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from bench.layout import DEFAULT_DATA, RESULTS, ROOT

NEEDED = ("jax", "keras", "numpy", "pydantic", "yaml", "click", "platformdirs", "tabulate", "tqdm",
          "matplotlib", "PIL")
PIP_NAMES = {"yaml": "pyyaml", "PIL": "pillow"}

# Candidates for the time to 99.0%: (label, config, overrides). Tried in order; all are run so
# the table shows the trade-off, the fastest one that reaches 99.0% is the headline.
SPE = "training.steps_per_execution=240"  # 48000 / 200: one call into the backend per epoch
CANDIDATES = [
    ("configs/fast/mnist.yaml, 2 epochs, fp32, one call per epoch", "fast/mnist.yaml",
     ["training.steps_per_execution=422"]),  # 54000 / 128
    ("seed-003 CNN, 4 epochs, fp32", "cnn_adam.yaml", ["training.epochs=4", SPE]),
    ("seed-003 CNN, 4 epochs, bf16", "cnn_adam_bf16.yaml", ["training.epochs=4", SPE]),
    ("seed-003 CNN, 3 epochs, bf16, cosine lr 0.003", "cnn_adam_bf16.yaml",
     ["training.epochs=3", SPE, "optimizer.schedule=cosine", "optimizer.learning_rate=0.003"]),
    ("seed-003 CNN, 5 epochs, bf16", "cnn_adam_bf16.yaml", ["training.epochs=5", SPE]),
]


def check(install: bool) -> list[str]:
    missing = [m for m in NEEDED if importlib.util.find_spec(m) is None]
    if missing and install and (ROOT / ".whl").is_dir():
        names = [PIP_NAMES.get(m, m) for m in missing]
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--find-links",
                        str(ROOT / ".whl"), *names], check=False)
        importlib.invalidate_caches()
        missing = [m for m in NEEDED if importlib.util.find_spec(m) is None]
    return missing


def env(data: Path) -> dict:
    return {**os.environ, "KERAS_BACKEND": "jax", "HDR_DATA_DIR": str(data), "PYTHONPATH": str(ROOT),
            "TF_CPP_MIN_LOG_LEVEL": "3", "HDR_CACHE_DIR": str(ROOT / "runs" / "gpu-cache")}


def run(cmd: list[str], e: dict) -> tuple[float, str]:
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=e, cwd=ROOT)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr[-3000:]}")
    return wall, p.stdout


def hdr_train(config: str, overrides: list[str], e: dict, runs: Path) -> dict:
    wall, out = run([sys.executable, "-m", "hdr.cli", "train", str(ROOT / "configs" / config), *overrides,
                     "--runs-dir", str(runs), "-q"], e)
    folder = Path(out.strip().splitlines()[-1])
    m = json.loads((folder / "metrics.json").read_text())
    with open(folder / "history.csv") as f:
        seconds = [float(r["seconds"]) for r in csv.DictReader(f)]
    device = json.loads((folder / "run.json").read_text()).get("runtime", {}).get("device")
    return {"wall": wall, "epoch_seconds": seconds, "test_accuracy": m["test_accuracy"], "device": device}


def plain(epochs: int, e: dict) -> dict:
    wall, out = run([sys.executable, "-m", "bench.baselines.plain_keras_cnn", "--epochs", str(epochs),
                     "--data", str(Path(e["HDR_DATA_DIR"]) / "mnist")], e)
    r = json.loads(out.strip().splitlines()[-1])
    return {"wall": wall, "epoch_seconds": r["epoch_seconds"], "test_accuracy": r["test_accuracy"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("HDR_DATA_DIR", str(DEFAULT_DATA)),
                    help="folder holding mnist/ (default $HDR_DATA_DIR or ../shared/datasets)")
    ap.add_argument("--epochs", type=int, default=4, help="epochs for the per-epoch comparison")
    ap.add_argument("--rounds", type=int, default=2, help="alternated rounds of the per-epoch comparison")
    ap.add_argument("--check", action="store_true", help="only check that the needed modules import")
    args = ap.parse_args()
    missing = check(install=not args.check)
    if missing:
        sys.exit(f"missing modules: {', '.join(missing)}; bring wheels in .whl/ (see the top of bench/perf/gpu.py)")
    data = Path(args.data).resolve()
    if not (data / "mnist" / "train-images-idx3-ubyte.gz").is_file():
        sys.exit(f"no MNIST files in {data}/mnist; see the top of bench/perf/gpu.py")
    import jax

    devices = [f"{d.platform}:{getattr(d, 'device_kind', '')}" for d in jax.devices()]
    print(f"jax {jax.__version__}, devices {devices}", flush=True)
    if args.check:
        return
    e = env(data)
    runs = Path(tempfile.mkdtemp(prefix="hdr-gpu-runs-"))
    per_epoch: dict[str, list] = {"plain Keras + JAX (bench/baselines/plain_keras_cnn.py)": [],
                                  "hdr cnn_adam.yaml (fp32)": [], "hdr cnn_adam_bf16.yaml (bf16)": []}
    try:
        for r in range(args.rounds):
            for name in per_epoch:
                if name.startswith("plain"):
                    res = plain(args.epochs, e)
                elif "bf16" in name:
                    res = hdr_train("cnn_adam_bf16.yaml", [f"training.epochs={args.epochs}", SPE], e, runs)
                else:
                    res = hdr_train("cnn_adam.yaml", [f"training.epochs={args.epochs}", SPE], e, runs)
                per_epoch[name].append(res)
                print(f"round {r + 1} {name}: wall {res['wall']:.1f}s epochs {[round(s, 3) for s in res['epoch_seconds']]} "
                      f"test {100 * res['test_accuracy']:.2f}%", flush=True)
        to99 = []
        for label, config, overrides in CANDIDATES:
            res = hdr_train(config, overrides, e, runs)
            res.update(label=label, command=f"hdr train configs/{config} {' '.join(overrides)}")
            to99.append(res)
            print(f"{label}: wall {res['wall']:.1f}s test {100 * res['test_accuracy']:.2f}%", flush=True)
    finally:
        shutil.rmtree(runs, ignore_errors=True)

    lines = [f"GPU: {devices}, KERAS_BACKEND=jax, {args.epochs} epochs, {args.rounds} alternated rounds", "",
             "| what | first epoch s | steady s/epoch | whole process s | test acc |", "|---|---|---|---|---|"]
    for name, rs in per_epoch.items():
        first = statistics.median(x["epoch_seconds"][0] for x in rs)
        steady = statistics.median(statistics.median(x["epoch_seconds"][1:]) for x in rs)
        lines.append(f"| {name} | {first:.2f} | {steady:.3f} | {statistics.median(x['wall'] for x in rs):.1f} | "
                     f"{100 * statistics.mean(x['test_accuracy'] for x in rs):.2f}% |")
    lines += ["", "| time to >= 99.0% test accuracy: config | whole process s | test acc |", "|---|---|---|"]
    for x in to99:
        lines.append(f"| {x['label']} (`{x['command']}`) | {x['wall']:.1f} | {100 * x['test_accuracy']:.2f}% |")
    ok = [x for x in to99 if x["test_accuracy"] >= 0.99]
    best = min(ok, key=lambda x: x["wall"]) if ok else None
    lines.append("")
    lines.append(f"fastest to >= 99.0%: {best['label']}, {best['wall']:.1f} s" if best else "no candidate reached 99.0%")
    table = "\n".join(lines)
    print("\n" + table)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"gpu-{datetime.now():%Y%m%d-%H%M%S}"
    out.with_suffix(".json").write_text(json.dumps({"devices": devices, "per_epoch": per_epoch, "to_99": to99},
                                                   indent=1) + "\n")
    out.with_suffix(".md").write_text(table + "\n")


if __name__ == "__main__":
    main()
