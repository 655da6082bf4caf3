"""CPU seconds per training step of the seed-003 CNN (batch 200), for backend/kernel choices
that must be made before the framework is imported, so one process per variant, alternated.

    python -m bench.perf.steps --rounds 3 tf tf_eigen jax
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from bench.layout import RESULTS, ROOT

VARIANTS = {
    "tf": {},
    "tf_eigen": {"TF_ENABLE_ONEDNN_OPTS": "0"},
    "jax": {"KERAS_BACKEND": "jax"},
    "tf_bf16": {"HDR_BENCH_PRECISION": "mixed_bfloat16"},
    "tf_eigen_bf16": {"TF_ENABLE_ONEDNN_OPTS": "0", "HDR_BENCH_PRECISION": "mixed_bfloat16"},
    "tf_f16": {"HDR_BENCH_PRECISION": "mixed_float16"},
}


def child(steps: int, batch: int) -> dict:
    import numpy as np

    from hdr.engine import config
    from hdr.engine import models
    from hdr.core.backend import quiet_import

    keras = quiet_import()
    keras.mixed_precision.set_dtype_policy(os.environ.get("HDR_BENCH_PRECISION", "float32"))
    cfg = config.load(ROOT / "configs" / "cnn_adam.yaml")
    model = models.compile_model(models.build(cfg, (28, 28, 1)), cfg, 240)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (batch, 28, 28, 1), dtype=np.uint8)
    y = rng.integers(0, 10, batch).astype(np.uint8)
    for _ in range(3):
        model.train_on_batch(x, y)
    c, t = time.process_time(), time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    train = ((time.process_time() - c) / steps, (time.perf_counter() - t) / steps)
    xe = rng.integers(0, 255, (1000, 28, 28, 1), dtype=np.uint8)
    model.predict_on_batch(xe)
    c, t = time.process_time(), time.perf_counter()
    for _ in range(max(1, steps // 4)):
        model.predict_on_batch(xe)
    fwd = ((time.process_time() - c) / max(1, steps // 4), (time.perf_counter() - t) / max(1, steps // 4))
    return {"train_cpu": train[0], "train_wall": train[1], "fwd1000_cpu": fwd[0], "fwd1000_wall": fwd[1]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("variants", nargs="*", default=["tf", "tf_eigen", "jax"])
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(RESULTS / "steps.json"))
    args = ap.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(args.steps, args.batch)))
        return
    res = {v: [] for v in args.variants}
    for r in range(args.rounds):
        for v in args.variants:
            cmd = [sys.executable, "-m", "bench.perf.steps", "--child", "--steps", str(args.steps), "--batch", str(args.batch)]
            out = subprocess.run(cmd, cwd=ROOT,
                                 capture_output=True, text=True,
                                 env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **VARIANTS[v]})
            line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
            if not line:
                sys.exit(f"{v} failed: {out.stderr[-2000:]}")
            d = json.loads(line[0][7:])
            res[v].append(d)
            print(f"round {r + 1} {v:14s} train step cpu {d['train_cpu'] * 1000:7.1f} ms "
                  f"wall {d['train_wall'] * 1000:7.1f} ms | predict 1000 cpu {d['fwd1000_cpu'] * 1000:7.1f} ms "
                  f"wall {d['fwd1000_wall'] * 1000:7.1f} ms  load {os.getloadavg()[0]:.1f}",
                  flush=True)
    b = statistics.median(d["train_cpu"] for d in res[args.variants[0]])
    print("\n| variant | env | train step CPU ms (median) | speed-up | predict-1000 CPU ms |\n|---|---|---|---|---|")
    for v in args.variants:
        m = statistics.median(d["train_cpu"] for d in res[v])
        f = statistics.median(d["fwd1000_cpu"] for d in res[v])
        env = " ".join(f"{k}={x}" for k, x in VARIANTS[v].items())
        print(f"| {v} | {env} | {m * 1000:.0f} | {b / m:.2f}x | {f * 1000:.0f} |")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"args": vars(args), "results": res}, f, indent=1)


if __name__ == "__main__":
    main()
