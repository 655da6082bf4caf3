"""How hdr feeds fit its shuffled batches: page faults and user/system CPU per feed.

Each variant trains hdr's model for a config on a subset of MNIST in its own process, with the
variants alternated round by round; per steady epoch (2nd on) it records wall, user and system
CPU seconds and minor/major page faults (getrusage of the process itself).

    python -m bench.perf.feeds --samples 12000 --epochs 3 --rounds 2 pydataset tfdata arrays
    python -m bench.perf.feeds --config configs/mlp_dropout_adam.yaml pydataset tfdata
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from bench.layout import DEFAULT_DATA, RESULTS, ROOT, command

VARIANTS = {
    "pydataset": "a keras.utils.PyDataset of fancy-indexed batches (hdr before this change)",
    "pydataset_nodet": "the same without TF op determinism",
    "pyview": "a PyDataset serving views of the epoch permuted once into a preallocated buffer",
    "arrays": "fit(x, y, shuffle=False) on the arrays: no reshuffle (floor, not a candidate)",
    "arrays_nodet": "the same without TF op determinism",
    "perepoch": "a fit call per epoch on the epoch's rows, taken into a preallocated buffer",
    "tfdata": "a tf.data pipeline over all epochs' orders, gathered in the graph (not exact: see child())",
    "hdr": "hdr.engine.train.EpochFeed as shipped (on TF: tf.data over a variable holding the epoch's order)",
    "hdr_nodet": "the same without TF op determinism",
}


def child(args) -> None:
    import numpy as np

    from hdr.engine import config as config_mod
    from hdr.core import data as data_mod
    from hdr.engine import models
    from hdr.engine import train
    from hdr.core.backend import quiet_import

    keras = quiet_import()
    v = args.child
    cfg = config_mod.load(ROOT / args.config, [f"training.epochs={args.epochs}"])
    data = data_mod.load(cfg.dataset.name, quiet=True)
    tr, _ = data_mod.split_validation(data.train, cfg.dataset.validation_split, cfg.training.seed)
    tr = data_mod.Split(tr.x[:args.samples], tr.y[:args.samples])
    keras.utils.set_random_seed(cfg.training.seed)
    if not v.endswith("_nodet") and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    bs, seed, epochs = cfg.training.batch_size, cfg.training.seed, args.epochs
    steps = -(-len(tr.y) // bs)
    model = models.compile_model(models.build(cfg, data.input_shape), cfg, steps)
    rows = []

    class Meter(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t, self.r = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)

        def on_epoch_end(self, epoch, logs=None):
            r = resource.getrusage(resource.RUSAGE_SELF)
            rows.append({"wall": time.perf_counter() - self.t, "user": r.ru_utime - self.r.ru_utime,
                         "sys": r.ru_stime - self.r.ru_stime, "minflt": r.ru_minflt - self.r.ru_minflt,
                         "majflt": r.ru_majflt - self.r.ru_majflt, "loss": float(logs["loss"])})

    cb = [Meter()]
    if v in ("pydataset", "pydataset_nodet"):
        class Batches(keras.utils.PyDataset):
            def __init__(self):
                super().__init__()
                self.epoch, self.order = 0, train.epoch_order(seed, 0, len(tr.y))

            def __len__(self):
                return steps

            def __getitem__(self, i):
                r = self.order[i * bs:(i + 1) * bs]
                return tr.x[r], tr.y[r]

            def on_epoch_end(self):
                self.epoch += 1
                self.order = train.epoch_order(seed, self.epoch, len(tr.y))

        model.fit(Batches(), epochs=epochs, shuffle=False, verbose=0, callbacks=cb)
    elif v == "pyview":
        bx, by = np.empty_like(tr.x), np.empty_like(tr.y)

        class Views(keras.utils.PyDataset):
            def __init__(self):
                super().__init__()
                self.epoch = -1
                self.on_epoch_end()

            def __len__(self):
                return steps

            def __getitem__(self, i):
                return bx[i * bs:(i + 1) * bs], by[i * bs:(i + 1) * bs]

            def on_epoch_end(self):
                self.epoch += 1
                o = train.epoch_order(seed, self.epoch, len(tr.y))
                np.take(tr.x, o, axis=0, out=bx), np.take(tr.y, o, axis=0, out=by)

        model.fit(Views(), epochs=epochs, shuffle=False, verbose=0, callbacks=cb)
    elif v in ("arrays", "arrays_nodet"):
        model.fit(tr.x, tr.y, batch_size=bs, epochs=epochs, shuffle=False, verbose=0, callbacks=cb)
    elif v == "perepoch":
        bx, by = np.empty_like(tr.x), np.empty_like(tr.y)
        for e in range(epochs):
            o = train.epoch_order(seed, e, len(tr.y))
            np.take(tr.x, o, axis=0, out=bx), np.take(tr.y, o, axis=0, out=by)
            model.fit(bx, by, batch_size=bs, epochs=e + 1, initial_epoch=e, shuffle=False, verbose=0, callbacks=cb)
    elif v == "tfdata":
        import tensorflow as tf

        orders = np.stack([train.epoch_order(seed, e, len(tr.y)) for e in range(epochs)])
        x, y = tf.constant(tr.x), tf.constant(tr.y)
        # One dataset over all epochs: with steps_per_epoch and steps_per_execution 16 the last
        # call of an epoch runs into the next epoch's batches (its losses differ from pydataset's).
        ds = (tf.data.Dataset.from_tensor_slices(orders)
              .flat_map(lambda o: tf.data.Dataset.from_tensor_slices(o).batch(bs))
              .map(lambda r: (tf.gather(x, r), tf.gather(y, r))).prefetch(2))
        model.fit(ds, epochs=epochs, steps_per_epoch=steps, verbose=0, callbacks=cb)
    elif v in ("hdr", "hdr_nodet"):
        feed = train.EpochFeed(tr, bs, seed, 0)
        start = keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: feed.start_epoch(e))
        model.fit(feed.data, epochs=epochs, shuffle=False, verbose=0, callbacks=[start, *cb])
    print(json.dumps(rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variants", nargs="+", choices=sorted(VARIANTS))
    ap.add_argument("--config", default="configs/cnn_adam.yaml")
    ap.add_argument("--samples", type=int, default=12000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.setdefault("HDR_DATA_DIR", str(DEFAULT_DATA))
    results = {v: [] for v in args.variants}
    for r in range(args.rounds):
        for v in args.variants:
            cmd = [sys.executable, "-m", "bench.perf.feeds", *args.variants, "--config", args.config, "--samples", str(args.samples),
                   "--epochs", str(args.epochs), "--child", v]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
            if out.returncode:
                sys.exit(out.stderr[-3000:])
            rows = json.loads(out.stdout.strip().splitlines()[-1])
            results[v].append({"epochs": rows, "load": os.getloadavg()[0]})
            s = rows[1:] or rows
            print(f"round {r + 1} {v:16s} " + " ".join(
                f"{k} {statistics.median(e[k] for e in s):9.2f}" for k in ("wall", "user", "sys", "minflt"))
                + f" load {os.getloadavg()[0]:.1f} loss {[round(e['loss'], 5) for e in rows]}", flush=True)
    lines = [f"{args.config}, {args.samples} samples, {args.epochs} epochs, {args.rounds} rounds; "
             "per steady epoch (2nd on), median over rounds and epochs", "",
             "| feed | what | wall s | user s | sys s | minor faults | faults per CPU-s |", "|---|---|---|---|---|---|---|"]
    for v, runs in results.items():
        s = [e for run in runs for e in (run["epochs"][1:] or run["epochs"])]
        m = {k: statistics.median(e[k] for e in s) for k in ("wall", "user", "sys", "minflt")}
        lines.append(f"| {v} | {VARIANTS[v]} | {m['wall']:.2f} | {m['user']:.2f} | {m['sys']:.2f} | "
                     f"{m['minflt']:,.0f} | {m['minflt'] / (m['user'] + m['sys']):,.0f} |")
    table = "\n".join(lines)
    print("\n" + table)
    out = Path(args.out) if args.out else RESULTS / f"feeds-{datetime.now():%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"command": command(), "load_start": None,
                               "results": results}, indent=1) + "\n")
    out.with_suffix(".md").write_text(table + "\n")
    print(f"raw results: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


if __name__ == "__main__":
    main()
