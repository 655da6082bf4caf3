"""hdr's benchmark harness: hdr against the plain Keras script a user would otherwise write.

The CPUs this runs on are shared and noisy, so every figure is a ratio between runs made in the
same invocation, alternated A/B/A/B, and the report gives medians. Raw results go to
bench/results/<name>-<time>.json, a markdown table to the .md beside it and to stdout.

    python -m bench.perf.run train --model cnn --epochs 2 --pairs 3       # hdr train vs plain Keras
    python -m bench.perf.run train --model cnn --epochs 2 --pairs 3 --config configs/cnn_adam_bf16.yaml
    python -m bench.perf.run train --model mlp --epochs 2 --pairs 3
    python -m bench.perf.run cli                                          # hdr --help, hdr compare x200
    python -m bench.perf.run predict                                      # images per second
    python -m bench.perf.run data                                         # dataset load, cached or not

`train` reports, per pair: whole-process wall time and CPU time (user + system, which the
other users of the machine disturb less, and each apart), minor and major page faults, seconds per epoch (the first epoch, which includes
tracing, apart from the steady state), peak resident memory, and test accuracy of both.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from bench.docs.pairs import med, summarise
from bench.layout import DEFAULT_DATA, RESULTS, ROOT, command

CONFIGS = {"cnn": ROOT / "configs" / "cnn_adam.yaml", "mlp": ROOT / "configs" / "mlp_dropout_adam.yaml"}


def hdr_exe() -> list[str]:
    exe = Path(sys.executable).with_name("hdr")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "hdr.cli"]


def env() -> dict:
    e = dict(os.environ)
    e.setdefault("HDR_DATA_DIR", str(DEFAULT_DATA))
    e.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return e


TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float | None:
    """CPU seconds (user + system, all threads) a running process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, IndexError, ValueError):
        return None


def timed(cmd: list[str], watch=None, **kw) -> dict:
    """Run cmd; its wall seconds, CPU seconds (user + system, and apart), minor and major page
    faults, peak RSS (MiB) and stdout. watch(pid), if given,
    is called every 50 ms while the command runs."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=kw.get("env", env()), cwd=kw.get("cwd", ROOT))
        while True:
            # rusage of this child alone, unlike RUSAGE_CHILDREN
            pid, status, ru = os.wait4(p.pid, os.WNOHANG if watch else 0)
            if pid:
                break
            watch(p.pid)
            time.sleep(0.05)
        wall = time.perf_counter() - t
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{stderr[-3000:]}")
    return {"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "user": ru.ru_utime, "sys": ru.ru_stime,
            "minflt": ru.ru_minflt, "majflt": ru.ru_majflt, "peak_mib": ru.ru_maxrss / 1024,
            "stdout": stdout, "load": os.getloadavg()[0]}


def save(name: str, record: dict, table: str) -> None:
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"{name}-{datetime.now():%Y%m%d-%H%M%S}"
    record = {"command": command(python=Path(sys.executable).name), "host_cpus": os.cpu_count(), **record}
    stem.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    stem.with_suffix(".md").write_text(table + "\n")
    print(table)
    print(f"\nraw results: {stem.with_suffix('.json').relative_to(ROOT)}")


# ------------------------------------------------------------------------------ train

def plain_run(model: str, epochs: int, seed: int) -> dict:
    r = timed([sys.executable, "-m", f"bench.baselines.plain_keras_{model}", "--epochs", str(epochs),
               "--seed", str(seed)])
    res = json.loads(r["stdout"].strip().splitlines()[-1])
    return {**r, "epoch_seconds": res["epoch_seconds"], "epoch_cpu_seconds": res["epoch_cpu_seconds"],
            "test_accuracy": res["test_accuracy"]}



def epochs_written(runs_dir: Path) -> int | None:
    """Epoch rows in the history.csv of the one run being trained into runs_dir; None before it
    exists or while it cannot be read."""
    hist = list(Path(runs_dir).glob("*/history.csv"))
    if not hist:
        return None
    try:
        return len(hist[0].read_text().splitlines()) - 1
    except OSError:
        return None

def hdr_run(config: Path, epochs: int, seed: int, overrides: list[str], runs_dir: Path) -> dict:
    runs_dir = Path(tempfile.mkdtemp(dir=runs_dir))
    cmd = [*hdr_exe(), "train", str(config), f"training.epochs={epochs}", f"training.seed={seed}", *overrides,
           "--runs-dir", str(runs_dir), "-q"]
    commits: list[float] = []  # the process's CPU seconds when each epoch's history row appeared

    def watch(pid):
        rows = epochs_written(runs_dir)
        if rows is not None and rows > len(commits):
            cpu = proc_cpu(pid)
            if cpu is not None:
                commits.extend([cpu] * (rows - len(commits)))

    r = timed(cmd, watch=watch)
    folder = Path(r["stdout"].strip().splitlines()[-1])
    metrics = json.loads((folder / "metrics.json").read_text())
    with open(folder / "history.csv") as f:
        seconds = [float(row["seconds"]) for row in csv.DictReader(f)]
    missing = [n for n in ("config.yaml", "run.json", "history.csv", "model.keras", "metrics.json",
                           "accuracy.png", "loss.png", "summary.txt") if not (folder / n).is_file()]
    if missing:
        sys.exit(f"{folder} is incomplete: missing {', '.join(missing)}")
    # Steady epochs' CPU: between two commits (the first epoch's start is not visible from outside).
    cpu = [None] + [b - a for a, b in zip(commits, commits[1:])]
    return {**r, "epoch_seconds": seconds, "epoch_cpu_seconds": cpu, "test_accuracy": metrics["test_accuracy"],
            "folder": str(folder)}


def show(i: int, name: str, r: dict) -> None:
    def rounded(xs):
        return [None if x is None else round(x, 1) for x in xs]

    print(f"pair {i + 1} {name} wall {r['wall']:6.1f}s cpu {r['cpu']:6.1f}s (user {r['user']:.1f} sys {r['sys']:.1f}) "
          f"faults {r['minflt']:,}/{r['majflt']:,} epochs {rounded(r['epoch_seconds'])} "
          f"epoch cpu {rounded(r['epoch_cpu_seconds'])} acc {r['test_accuracy']:.4f} load {r['load']:.1f}", flush=True)


def cmd_train(args) -> None:
    config = Path(args.config) if args.config else CONFIGS[args.model]
    seeds = args.seeds or [1]
    runs_dir = Path(tempfile.mkdtemp(prefix="hdr-bench-runs-"))
    pairs = []
    # hdr keeps decoded, verified arrays in its cache after the first load; measure the steady
    # state a user is in from the second run on.
    timed([sys.executable, "-c", "from hdr.core import data; data.load('mnist')"])
    try:
        for i in range(args.pairs):
            seed = seeds[i % len(seeds)]
            a = plain_run(args.model, args.epochs, seed)
            show(i, "A plain Keras", a)
            b = hdr_run(config, args.epochs, seed, args.set, runs_dir)
            show(i, "B hdr train  ", b)
            for r in (a, b):
                r.pop("stdout")
            pairs.append({"seed": seed, "plain": a, "hdr": b})
    finally:
        if not args.keep_runs:
            shutil.rmtree(runs_dir, ignore_errors=True)

    s = summarise(pairs)
    label = f"{config.relative_to(ROOT) if config.is_relative_to(ROOT) else config}" + (
        f" {' '.join(args.set)}" if args.set else "")
    sec, faults = "{:.1f} s", "{:,.0f}"
    rows = [(name, "" if k in ("majflt", "load") else f"{s[k][0]:.2f}x", fmt.format(s[k][1]), fmt.format(s[k][2]))
            for name, k, fmt in [
                ("whole process, wall: hdr / plain (target <= 1.00)", "wall", sec),
                ("whole process, CPU time: hdr / plain", "cpu", sec),
                ("whole process, user CPU: hdr / plain", "user", sec),
                ("whole process, system CPU: hdr / plain", "sys", sec),
                ("whole process, minor page faults: hdr / plain", "minflt", faults),
                ("whole process, major page faults", "majflt", faults),
                ("load average (1 min) at the end of a run", "load", "{:.1f}"),
                ("first epoch: speed-up plain / hdr", "first", sec),
                ("steady epoch (2nd on): speed-up plain / hdr", "steady", sec),
                ("steady epoch, CPU time: speed-up plain / hdr", "steady_cpu", sec),
                ("peak memory: hdr / plain", "peak_mib", "{:.0f} MiB")]]
    rows.append((f"test accuracy, mean of {len(pairs)} (seeds {sorted({p['seed'] for p in pairs})})",
                 f"{100 * s['acc'][0]:+.2f} pp", f"{100 * s['acc'][1]:.2f}%", f"{100 * s['acc'][2]:.2f}%"))
    table = (f"hdr train {label} vs bench/baselines/plain_keras_{args.model}.py, {args.epochs} epochs, {len(pairs)} A/B pairs\n\n"
             "| measure | ratio (median of pairs) | plain Keras (median) | hdr (median) |\n|---|---|---|---|\n"
             + "\n".join(f"| {' | '.join(r)} |" for r in rows))
    save(f"train-{args.model}", {"model": args.model, "config": str(config), "overrides": args.set,
                                 "epochs": args.epochs, "pairs": pairs}, table)


# ------------------------------------------------------------------------------ cli

def fabricate_runs(folder: Path, n: int) -> list[Path]:
    """n finished run folders like hdr train writes them: a small sweep over lr and seed."""
    from hdr.engine import config as config_mod
    from hdr.runs import rundir

    base = CONFIGS["cnn"]
    out = []
    for i in range(n):
        lr, seed = [0.001, 0.003, 0.0003, 0.01][i % 4], 1 + i // 4
        cfg = config_mod.load(base, [f"optimizer.learning_rate={lr}", f"training.seed={seed}"])
        run = folder / f"20260101-000000-cnn_adam-{i:04x}"
        run.mkdir()
        (run / "config.yaml").write_text(config_mod.dump(cfg))
        hist = [{"epoch": e, "loss": 0.3 / e, "accuracy": 0.9 + e / 200, "val_loss": 0.25 / e,
                 "val_accuracy": 0.9 + e / 210 + (i % 7) / 1000, "learning_rate": lr, "seconds": 55.0}
                for e in range(1, 11)]
        rundir.write_history(run / "history.csv", hist)
        info = {"id": run.name, "status": "completed", "config_name": "cnn_adam", "started": "2026-01-01T00:00:00",
                "ended": "2026-01-01T00:10:00", "pid": 1, "seed": seed, "epochs_completed": 10,
                "dataset": "mnist", "model": "cnn", "optimizer": "adam", "epochs_planned": 10, "test_accuracy": 0.99}
        (run / "run.json").write_text(json.dumps(info))
        metrics = {"dataset": "mnist", "epochs": 10, "val_accuracy": hist[-1]["val_accuracy"], "val_loss": 0.025,
                   "test_accuracy": 0.99 - (i % 5) / 1000, "test_loss": 0.03, "test_error_rate": 0.01,
                   "params": 159254, "train_seconds": 550.0, "best_val_accuracy": hist[-1]["val_accuracy"],
                   "best_epoch": 10}
        (run / "metrics.json").write_text(json.dumps(metrics))
        (run / "summary.txt").write_text("Total params: 159,254\n")
        out.append(run)
    return out


def latency(cmd: list[str], repeats: int) -> dict:
    runs = [timed(cmd) for _ in range(repeats)]
    return {"median": med(r["wall"] for r in runs), "min": min(r["wall"] for r in runs),
            "all": [r["wall"] for r in runs], "stdout_lines": len(runs[-1]["stdout"].splitlines())}


def cmd_cli(args) -> None:
    hdr = hdr_exe()
    results, rows = {}, []
    tmp = Path(tempfile.mkdtemp(prefix="hdr-bench-compare-"))
    try:
        runs = [str(p) for p in fabricate_runs(tmp, args.runs)]
        cases = [("python -c pass (interpreter start, for scale)", [sys.executable, "-c", "pass"], None),
                 ("python -c 'import keras' (for scale)", [sys.executable, "-c", "import keras"], None),
                 ("hdr --help", [*hdr, "--help"], 0.3),
                 (f"hdr compare over {args.runs} runs", [*hdr, "compare", *runs], 1.0),
                 (f"hdr runs over {args.runs} runs", [*hdr, "runs", str(tmp)], None)]
        for i in range(args.repeats):  # round-robin, so load spikes hit every case alike
            for name, cmd, _ in cases:
                results.setdefault(name, []).append(timed(cmd)["wall"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for name, _, target in cases:
        m = med(results[name])
        verdict = "" if target is None else ("met" if m <= target else "NOT met")
        rows.append(f"| {name} | {m:.3f} s | {min(results[name]):.3f} s | "
                    f"{'' if target is None else f'<= {target} s'} {verdict} |")
    table = (f"CLI latency, median of {args.repeats} (round-robin)\n\n| command | median | min | target |\n"
             "|---|---|---|---|\n" + "\n".join(rows))
    save("cli", {"runs": args.runs, "repeats": args.repeats, "seconds": results}, table)


# ------------------------------------------------------------------------------ predict

def cmd_predict(args) -> None:
    os.environ.update({k: v for k, v in env().items() if k in ("HDR_DATA_DIR", "TF_CPP_MIN_LOG_LEVEL")})
    import numpy as np

    from hdr.core import data as data_mod
    from hdr.core.backend import quiet_import

    keras = quiet_import()
    if args.run:
        model = keras.saving.load_model(Path(args.run) / "model.keras", compile=False)
        source = f"{args.run}/model.keras"
    else:
        # Speed does not depend on the weights: an untrained seed-003 CNN, saved and loaded back as
        # hdr predict would load a run's model.keras.
        from hdr.engine import config as config_mod
        from hdr.engine import models

        model = models.build(config_mod.load(CONFIGS["cnn"]), (28, 28, 1))
        tmp = Path(tempfile.mkdtemp()) / "model.keras"
        model.save(tmp)
        model = keras.saving.load_model(tmp, compile=False)
        shutil.rmtree(tmp.parent)
        source = "untrained seed-003 CNN (configs/cnn_adam.yaml)"
    x = data_mod.load("mnist").test.x
    try:
        from hdr.apps.predict import predict_arrays
    except ImportError:
        predict_arrays = None

    def hdr_single(n):
        for i in range(n):
            predict_arrays(model, x[i:i + 1])

    def keras_single(n):
        for i in range(n):
            model.predict(x[i:i + 1], verbose=0)

    def hdr_batch(n):
        predict_arrays(model, x[:n])

    def keras_batch(n):
        model.predict(x[:n], verbose=0)  # Keras' default batch of 32

    cases = [("one image a call", args.single, keras_single, hdr_single),
             ("batched", args.batched, keras_batch, hdr_batch)]
    results, rows = {}, []
    for name, n, plain, ours in cases:
        plain(min(n, 64))
        if predict_arrays:
            ours(min(n, 64))  # warm-up: tracing is not throughput
        for _ in range(args.repeats):
            for label, fn in (("model.predict", plain), ("hdr.predict.predict_arrays", ours)):
                if fn is ours and predict_arrays is None:
                    continue
                t = time.perf_counter()
                fn(n)
                results.setdefault(f"{name}|{label}", []).append(n / (time.perf_counter() - t))
    for name, n, _, _ in cases:
        base = med(results[f"{name}|model.predict"])
        rows.append(f"| {name} ({n} images) | model.predict | {base:,.0f} | 1.00x |")
        if predict_arrays:
            ours = med(results[f"{name}|hdr.predict.predict_arrays"])
            rows.append(f"| {name} ({n} images) | hdr.apps.predict.predict_arrays | {ours:,.0f} | {ours / base:.2f}x |")
    table = (f"Prediction throughput, {source}, MNIST test images, median of {args.repeats} (alternated)\n\n"
             "| case | function | images/s | vs model.predict |\n|---|---|---|---|\n" + "\n".join(rows))
    save("predict", {"source": source, "images_per_second": results}, table)


# ------------------------------------------------------------------------------ data

def cmd_data(args) -> None:
    """Dataset load: gunzip + sha256 + parse every time (before the cache) vs the array cache."""
    os.environ.setdefault("HDR_DATA_DIR", str(DEFAULT_DATA))
    cache = Path(tempfile.mkdtemp(prefix="hdr-bench-cache-"))
    os.environ["HDR_CACHE_DIR"] = str(cache)
    from hdr.core import data as data_mod

    results, rows = {}, []
    try:
        for name in ("mnist", "usps"):
            data_mod.load(name)  # fills the cache
            paths = data_mod.ensure_files(name)
            for _ in range(args.repeats):
                for label, fn in (("decode", lambda: data_mod._decode(data_mod.get(name), paths, True)),
                                  ("cached", lambda: data_mod.load(name))):
                    t = time.perf_counter()
                    fn()
                    results.setdefault(f"{name}|{label}", []).append(time.perf_counter() - t)
            d, c = med(results[f"{name}|decode"]), med(results[f"{name}|cached"])
            rows.append(f"| {name} | {d:.3f} s | {c:.3f} s | {d / c:.0f}x |")
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    table = (f"Dataset load in process (verified), median of {args.repeats} (alternated)\n\n"
             "| dataset | decode: gunzip + sha256 + parse | from the array cache | speed-up |\n|---|---|---|---|\n"
             + "\n".join(rows))
    save("data", {"seconds": results}, table)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    t = sub.add_parser("train", help="hdr train vs the plain Keras script, alternated A/B")
    t.add_argument("--model", choices=["cnn", "mlp"], default="cnn")
    t.add_argument("--epochs", type=int, default=2)
    t.add_argument("--pairs", type=int, default=3)
    t.add_argument("--seeds", type=int, nargs="*", help="seed of each pair in turn (default 1)")
    t.add_argument("--config", help="hdr config (default: configs/cnn_adam.yaml or configs/mlp_dropout_adam.yaml)")
    t.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="extra overrides for hdr train")
    t.add_argument("--keep-runs", action="store_true")
    c = sub.add_parser("cli", help="hdr --help and hdr compare latency")
    c.add_argument("--runs", type=int, default=200)
    c.add_argument("--repeats", type=int, default=7)
    p = sub.add_parser("predict", help="prediction throughput")
    p.add_argument("--run", help="a run folder whose model.keras to use (default: an untrained seed-003 CNN)")
    p.add_argument("--single", type=int, default=200, help="images predicted one a call")
    p.add_argument("--batched", type=int, default=10000, help="images predicted in one call")
    p.add_argument("--repeats", type=int, default=5)
    d = sub.add_parser("data", help="dataset load time, decoded vs cached")
    d.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    {"train": cmd_train, "cli": cmd_cli, "predict": cmd_predict, "data": cmd_data}[args.what](args)


if __name__ == "__main__":
    main()
