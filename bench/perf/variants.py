"""Per-epoch speed of training-speed measures, one variant per process, alternated.

Each variant trains a config's model (default the seed-003 CNN) as hdr builds it, on the first
--samples training images for --epochs epochs, and reports the steady-state epoch time (the mean
of the epochs after the first, which includes tracing). Variants run round-robin --rounds times so the shared,
noisy CPU affects all of them alike; the table gives each variant's median time as a ratio to
the first variant.

    python -m bench.perf.variants --samples 6000 --epochs 3 --rounds 3 base spe16 bf16 nodet
    python -m bench.perf.variants --config mlp_dropout_adam.yaml --samples 12000 base spe16

CPU seconds (user + system) per epoch are reported beside wall seconds: on a shared machine
they move much less with other people's load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from bench.layout import DEFAULT_DATA, RESULTS, ROOT

VARIANTS = {
    # name: (description, settings)
    "base": ("fp32, steps_per_execution 1, op determinism", {}),
    "nodet": ("no TF op determinism", {"determinism": False}),
    "spe16": ("steps_per_execution 16", {"spe": 16}),
    "spe64": ("steps_per_execution 64", {"spe": 64}),
    "bf16": ("mixed_bfloat16", {"precision": "mixed_bfloat16"}),
    "f16": ("mixed_float16", {"precision": "mixed_float16"}),
    # Keras silently drops jit_compile under TF op determinism, so compare this with nodet.
    "jit": ("XLA jit_compile, no op determinism", {"jit": True, "determinism": False}),
    "inter1": ("TF inter_op threads 1", {"inter": 1}),
    "intra1": ("TF intra_op threads 1", {"intra": 1}),
    "float_in": ("float32 /255 input arrays (plain Keras style)", {"float_input": True}),
    "jax": ("KERAS_BACKEND=jax (XLA on CPU)", {"env": {"KERAS_BACKEND": "jax"}}),
    "onednn0": ("TF_ENABLE_ONEDNN_OPTS=0 (Eigen kernels)", {"env": {"TF_ENABLE_ONEDNN_OPTS": "0"}}),
    "best": ("steps_per_execution 16 + inter_op 1", {"spe": 16, "inter": 1}),
    "spe16_eb": ("steps_per_execution 16, hdr's EpochFeed", {"spe": 16, "epoch_batches": True}),
    # Combinations for CPUs with native bf16 (AVX-512 BF16 / AMX).
    "bf16s": ("mixed_bfloat16 + steps_per_execution 16", {"precision": "mixed_bfloat16", "spe": 16}),
    "bf16s_eb": ("mixed_bfloat16 + spe 16, hdr's EpochFeed", {"precision": "mixed_bfloat16", "spe": 16,
                                                                   "epoch_batches": True}),
    "bf16s_nodet": ("mixed_bfloat16 + spe 16, no op determinism",
                    {"precision": "mixed_bfloat16", "spe": 16, "determinism": False}),
    "bf16s_inter1": ("mixed_bfloat16 + spe 16 + inter_op 1", {"precision": "mixed_bfloat16", "spe": 16, "inter": 1}),
    "evalbig": ("validation batch = whole val set", {"eval_batch": 100000}),
    "noval": ("no validation pass", {"no_val": True}),
}


def child(settings: dict, samples: int, epochs: int, config_name: str) -> dict:
    import numpy as np

    if settings.get("inter") or settings.get("intra"):
        import tensorflow as tf

        if settings.get("inter"):
            tf.config.threading.set_inter_op_parallelism_threads(settings["inter"])
        if settings.get("intra"):
            tf.config.threading.set_intra_op_parallelism_threads(settings["intra"])
    from hdr.engine import config
    from hdr.core import data
    from hdr.engine import models
    from hdr.engine import train

    over = [f"training.steps_per_execution={settings.get('spe', 1)}",
            f"training.precision={settings.get('precision', 'float32')}"]
    cfg = config.load(ROOT / "configs" / config_name, over)
    d = data.load("mnist")
    keras = train.quiet_import()
    keras.utils.set_random_seed(1)
    jit = bool(settings.get("jit", False)) or ("auto" if keras.backend.backend() == "jax" else False)
    if settings.get("determinism", True) and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    x, y = d.train.x[:samples], d.train.y[:samples]
    xv, yv = d.train.x[-samples // 4:], d.train.y[-samples // 4:]
    if settings.get("float_input"):
        x, xv = x.astype("float32"), xv.astype("float32")  # the model still rescales; cost is what matters
    with train.precision(cfg):
        model = models.build(cfg, (28, 28, 1))
    model.compile(optimizer=models.build_optimizer(cfg, 1), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], steps_per_execution=cfg.training.steps_per_execution,
                  jit_compile=jit)
    times, cpu = [], []

    class T(keras.callbacks.Callback):
        def on_epoch_begin(self, e, logs=None):
            self.t, self.c = time.perf_counter(), time.process_time()

        def on_epoch_end(self, e, logs=None):
            times.append(time.perf_counter() - self.t)
            cpu.append(time.process_time() - self.c)

    fit = dict(verbose=0, callbacks=[T()], validation_data=None if settings.get("no_val") else (xv, yv),
               validation_batch_size=settings.get("eval_batch", 1000))
    if settings.get("epoch_batches"):  # hdr's loop: one fit call over batches it shuffles itself
        feed = train.EpochFeed(data.Split(x, y), cfg.training.batch_size, 1, 0)
        fit["callbacks"].append(keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: feed.start_epoch(e)))
        losses = model.fit(feed.data, epochs=epochs, shuffle=False, **fit).history["loss"]
    else:
        losses = model.fit(x, y, epochs=epochs, batch_size=cfg.training.batch_size, shuffle=True,
                           **fit).history["loss"]
    return {"epoch_seconds": times, "steady": statistics.mean(times[1:]) if len(times) > 1 else times[0],
            "epoch_cpu_seconds": cpu, "steady_cpu": statistics.mean(cpu[1:]) if len(cpu) > 1 else cpu[0],
            "loss": [float(v) for v in losses], "cpu_seconds": time.process_time()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variants", nargs="*", default=["base", "spe16", "bf16"])
    ap.add_argument("--samples", type=int, default=6000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--config", default="cnn_adam.yaml", help="a file in configs/")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(RESULTS / "variants.json"))
    args = ap.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(VARIANTS[args.child][1], args.samples, args.epochs, args.config)))
        return
    results: dict[str, list] = {v: [] for v in args.variants}
    for r in range(args.rounds):
        for v in args.variants:
            cmd = [sys.executable, "-m", "bench.perf.variants", "--child", v, "--samples", str(args.samples), "--epochs", str(args.epochs),
                   "--config", args.config]
            env = {"HDR_DATA_DIR": str(DEFAULT_DATA), **os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **VARIANTS[v][1].get("env", {})}
            out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
            line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
            if not line:
                sys.exit(f"variant {v} failed:\n{out.stderr[-3000:]}")
            res = json.loads(line[0][7:])
            results[v].append(res)
            print(f"round {r + 1} {v:9s} steady {res['steady']:.2f}s (cpu {res['steady_cpu']:.2f}s)  "
                  f"epochs {[round(t, 2) for t in res['epoch_seconds']]} load {os.getloadavg()[0]:.1f}", flush=True)
    print(f"\n{args.config}, first {args.samples} training images, {args.epochs} epochs, {args.rounds} rounds")
    base = statistics.median(x["steady"] for x in results[args.variants[0]])
    base_cpu = statistics.median(x["steady_cpu"] for x in results[args.variants[0]])
    print(f"\n| variant | what | median s/epoch | speed-up | median CPU s/epoch | CPU speed-up |\n"
          "|---|---|---|---|---|---|")
    for v in args.variants:
        med = statistics.median(x["steady"] for x in results[v])
        cpu = statistics.median(x["steady_cpu"] for x in results[v])
        print(f"| {v} | {VARIANTS[v][0]} | {med:.2f} | {base / med:.2f}x | {cpu:.2f} | {base_cpu / cpu:.2f}x |")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"args": vars(args), "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
