"""Time to 99 %: how long a person waits, from typing the command to a model at 99.0% test accuracy.

Three ways to get there, each a whole process timed from its launch (interpreter start-up,
imports, data, tracing, epochs, test, files), alternated seed by seed so the machine's other load
hits all three alike:

  fast   hdr train configs/fast/mnist.yaml                 (and configs/fast/usps.yaml for USPS)
  plain  python -m bench.baselines.plain_keras_cnn --until 0.99
                                                           write-up 003's script, stopped at the
                                                           first epoch whose test accuracy is 99.0%
                                                           (or its best within --plain-epochs)
  hdr    hdr train configs/cnn_adam.yaml                   write-up 003 in hdr, --cnn-epochs epochs

Each epoch's end is recorded in seconds from launch (hdr: when its history.csv row appears,
watched every 50 ms; plain: its own clock, less its per-epoch test scoring), with its validation
accuracy; the curves are validation accuracy, the end point of each run is its test accuracy.

    python -m bench.perf.time_to_accuracy run --seeds 1 2 3     # ~40 min on 2 busy cores
    python -m bench.perf.time_to_accuracy phases --repeats 3    # where the fast run's time goes
    python -m bench.perf.time_to_accuracy plot                  # bench/results/time-to-99.png
    python -m bench.docs.blocks render                          # BENCHMARKS.md's tables

Results: bench/results/time-to-99-<time>.json and phases-<time>.json (the newest is rendered, by
bench/docs/harnesses.py, where the targets and the phases' names are declared).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from bench.docs.harnesses import LABELS, PHASES, TARGETS, WALL_TARGETS
from bench.docs.harnesses import latest_time_to_99 as latest
from bench.layout import RESULTS, ROOT, command
from bench.perf import run

PLOT = RESULTS / "time-to-99.png"


# ------------------------------------------------------------------------------ measuring

def hdr_run(config: str, seed: int, overrides: list[str], runs_dir: Path) -> dict:
    """One `hdr train` process: wall, CPU, faults, each epoch's end from launch, accuracies."""
    runs_dir = Path(tempfile.mkdtemp(dir=runs_dir))
    cmd = [*run.hdr_exe(), "train", str(ROOT / config), f"training.seed={seed}", *overrides,
           "--runs-dir", str(runs_dir), "-q"]
    ends: list[float] = []
    start = time.perf_counter()

    def watch(pid):
        rows = run.epochs_written(runs_dir)
        if rows is not None and rows > len(ends):
            ends.extend([time.perf_counter() - start] * (rows - len(ends)))

    r = run.timed(cmd, watch=watch)
    folder = Path(r["stdout"].strip().splitlines()[-1])
    metrics = json.loads((folder / "metrics.json").read_text())
    with open(folder / "history.csv") as f:
        val = [float(row["val_accuracy"]) if row["val_accuracy"] else None for row in csv.DictReader(f)]
    r.pop("stdout")
    return {**r, "config": config, "overrides": overrides, "seed": seed, "epoch_end_seconds": ends,
            "epoch_val_accuracy": val, "test_accuracy": metrics["test_accuracy"],
            "reached_seconds": r["wall"] if metrics["test_accuracy"] >= TARGETS[metrics["dataset"]] else None}


def plain_run(seed: int, epochs: int, until: float) -> dict:
    launched = time.time()
    r = run.timed([sys.executable, "-m", "bench.baselines.plain_keras_cnn", "--until", str(until), "--epochs",
                   str(epochs), "--seed", str(seed)])
    res = json.loads(r.pop("stdout").strip().splitlines()[-1])
    offset = res["t0_unix"] - launched  # interpreter start-up, before the script's clock starts
    ends = [offset + t for t in res["epoch_end_seconds"]]
    reached = None
    for end, acc, scoring in zip(ends, res["epoch_test_accuracy"], res["epoch_test_seconds"]):
        if acc >= until:
            reached = end + scoring  # the epoch's end, and scoring the test set once
            break
    return {**r, "config": "bench/baselines/plain_keras_cnn.py", "seed": seed, "epoch_end_seconds": ends,
            "epoch_val_accuracy": res["epoch_val_accuracy"], "epoch_test_accuracy": res["epoch_test_accuracy"],
            "test_accuracy": max(res["epoch_test_accuracy"]), "reached_seconds": reached,
            "best_epoch_seconds": ends[res["epoch_test_accuracy"].index(max(res["epoch_test_accuracy"]))]}


def show(name: str, r: dict) -> None:
    reached = f"{r['reached_seconds']:.1f}s" if r["reached_seconds"] else "not reached"
    print(f"{name:6s} seed {r['seed']} wall {r['wall']:6.1f}s user {r['user']:5.1f} sys {r['sys']:4.1f} "
          f"test {100 * r['test_accuracy']:.2f}% target {reached} epochs at {[round(t, 1) for t in r['epoch_end_seconds']]} "
          f"load {r['load']:.1f}", flush=True)


def cmd_run(args) -> None:
    runs_dir = Path(tempfile.mkdtemp(prefix="hdr-bench-t99-"))
    # The verified-array caches warm, as from a user's second run on.
    run.timed([sys.executable, "-c", "from hdr.core import data; data.load('mnist'); data.load('usps')"])
    record = {"seeds": args.seeds, "baseline_seeds": args.baseline_seeds or args.seeds, "plain_epochs": args.plain_epochs, "cnn_epochs": args.cnn_epochs,
              "mnist": {"fast": [], "plain": [], "hdr": []}, "usps": {"fast": []}, "load_start": os.getloadavg()}
    try:
        for i, seed in enumerate(args.seeds):
            order = ["fast", "plain", "hdr"]
            order = order[i % 3:] + order[:i % 3]  # each goes first once in three seeds
            for name in order:
                if name != "fast" and seed not in (args.baseline_seeds or args.seeds):
                    continue
                if name == "fast":
                    r = hdr_run("configs/fast/mnist.yaml", seed, [], runs_dir)
                elif name == "plain":
                    r = plain_run(seed, args.plain_epochs, TARGETS["mnist"])
                elif args.cnn_epochs:
                    r = hdr_run("configs/cnn_adam.yaml", seed, [f"training.epochs={args.cnn_epochs}"], runs_dir)
                else:
                    continue
                record["mnist"][name].append(r)
                show(name, r)
            r = hdr_run("configs/fast/usps.yaml", seed, [], runs_dir)
            record["usps"]["fast"].append(r)
            show("usps", r)
    finally:
        import shutil

        shutil.rmtree(runs_dir, ignore_errors=True)
    record["load_end"] = os.getloadavg()
    _save("time-to-99", record)
    plot(record)


# ------------------------------------------------------------------------------ phases

# Where the fast run's whole-process time goes. A child process runs `hdr train` through hdr's own
# CLI with hdr.engine.train's steps wrapped to note the clock (wall and process CPU) as each ends,
# one mark per phase of PHASES (bench/docs/harnesses.py, which renders them).


def _child(config: str, runs_dir: str, launched: float, before: bool) -> None:
    """before: as hdr was before its cuts (scikit-learn imported with Keras, Python's own exit)."""
    t0, c0 = time.perf_counter(), time.process_time()
    marks = [("python start-up", time.time() - launched, 0.0)]
    last = [t0, c0]

    def mark(name):
        now, cpu = time.perf_counter(), time.process_time()
        marks.append((name, now - last[0], cpu - last[1]))
        last[:] = [now, cpu]

    if before:
        import sklearn  # noqa: F401  (Keras imported it until hdr.core.backend hid it)
    from hdr.cli import main as cli
    from hdr.engine import train as tm
    from hdr.runs import rundir
    from hdr.core import plots

    mark("import (hdr, Keras, TensorFlow)")

    def around(obj, attr, before, after):
        f = getattr(obj, attr)

        def g(*a, **k):
            if before:
                mark(before)
            out = f(*a, **k)
            mark(after)
            return out
        setattr(obj, attr, g)

    around(tm, "prepare", None, "config and data")
    around(tm, "_build", None, "model build")
    around(rundir.RunInfo, "start", None, "run folder")
    commit = tm.Trainer.commit_epoch

    def commit_epoch(self, epoch, logs, model):
        mark("first epoch (tracing)" if epoch == 1 else "later epochs")
        commit(self, epoch, logs, model)
        mark("checkpoints and history")
    tm.Trainer.commit_epoch = commit_epoch
    around(tm, "_finalize", "later epochs", "finish and exit")  # fit's end; then test, plots, model.keras
    for holder in (plots, rundir):  # the curves' function, wherever hdr keeps it; nested calls add up
        if hasattr(holder, "training_curves"):
            around(holder, "training_curves", "test", "plots")
    save = tm.save_model

    def save_model(model, path):
        save(model, path)
        if Path(path).name == "model.keras":
            mark("model.keras")
    tm.save_model = save_model
    def report():
        mark("finish and exit")
        print(json.dumps({"marks": marks, "t_unix": time.time()}), file=sys.stderr, flush=True)

    exit_now = os._exit

    def _exit(code):  # hdr's own exit after a completed run (hdr.cli.main)
        report()
        exit_now(code)
    os._exit = _exit
    sys.argv = ["hdr", "train", config, "--runs-dir", runs_dir, "-q"]
    try:
        if before:
            cli.cli(sys.argv[1:], prog_name="hdr", standalone_mode=False)
        else:
            cli.main()
    except SystemExit:
        pass
    report()  # then Python's own exit


def phases_once(config: str, runs_dir: Path, before: bool = False) -> dict:
    launched = time.time()
    with tempfile.TemporaryDirectory(dir=runs_dir) as d:
        p = subprocess.run([sys.executable, "-m", "bench.perf.time_to_accuracy", "_child", config, d, repr(launched), "before" if before else "after"],
                           capture_output=True, text=True, env=run.env(), cwd=ROOT)
        ended = time.time()
        if p.returncode != 0:
            sys.exit(f"phases child failed:\n{p.stderr[-3000:]}")
        out = json.loads(p.stderr.strip().splitlines()[-1])
    totals = {name: [0.0, 0.0] for name in PHASES}
    for name, wall, cpu in out["marks"]:
        totals[name][0] += wall
        totals[name][1] += cpu
    totals["finish and exit"][0] += ended - out["t_unix"]  # interpreter exit, seen from outside
    return {"wall": ended - launched, "phases": totals, "load": os.getloadavg()[0], "before": before}


def cmd_phases(args) -> None:
    """--repeats runs as hdr is; with --before, alternated with runs as hdr was before its cuts."""
    runs_dir = Path(tempfile.mkdtemp(prefix="hdr-bench-phases-"))
    runs = []
    for i in range(args.repeats):
        for before in ([False, True] if i % 2 == 0 else [True, False]) if args.before else [False]:
            r = phases_once(args.config, runs_dir, before)
            runs.append(r)
            print(f"run {i + 1}{' before' if before else ''}: wall {r['wall']:.1f}s load {r['load']:.1f} " +
                  ", ".join(f"{k} {v[0]:.2f}/{v[1]:.2f}" for k, v in r["phases"].items()), flush=True)
    _save("phases", {"config": args.config, "runs": runs})


# ------------------------------------------------------------------------------ results

def _commit() -> str | None:
    """The hdr commit measured, "+dirty" when the working tree had changes; None outside git."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    head = git("rev-parse", "--short", "HEAD")
    if head.returncode:
        return None
    return head.stdout.strip() + ("+dirty" if git("status", "--porcelain", "--untracked-files=no").stdout else "")


def _save(name: str, record: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}-{datetime.now():%Y%m%d-%H%M%S}.json"
    record = {"command": command(),
              "written": datetime.now().isoformat(timespec="seconds"), "host_cpus": os.cpu_count(),
              "commit": _commit(), **record}
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"raw results: {path.relative_to(ROOT)}")
    return path


COLOURS = {"fast": "tab:green", "plain": "tab:gray", "hdr": "tab:blue"}


def plot(record: dict | None = None) -> None:
    """Validation accuracy at each epoch's end against seconds from launch, one line per run (seed);
    the run's test accuracy as a star where its process ended (hdr) or where it was scored (plain)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    record = record or latest()
    fig, ax = plt.subplots(figsize=(8, 4.8))
    for name, runs in record["mnist"].items():
        for i, r in enumerate(runs):
            xs = r["epoch_end_seconds"][:len(r["epoch_val_accuracy"])]
            ys = [100 * v for v in r["epoch_val_accuracy"][:len(xs)]]
            ax.plot(xs, ys, "-o", ms=3, color=COLOURS[name], alpha=0.8, label=LABELS[name] if i == 0 else None)
            end = r["reached_seconds"] or (r.get("best_epoch_seconds") or r["wall"])
            ax.plot([end], [100 * r["test_accuracy"]], "*", ms=11, color=COLOURS[name], mec="black", mew=0.5)
    ax.axhline(99.0, color="tab:red", lw=1, ls="--")
    ax.axvline(WALL_TARGETS["mnist"], color="tab:red", lw=1, ls=":")
    ax.text(WALL_TARGETS["mnist"], 97.05, " 15 s target", color="tab:red", fontsize=8)
    ax.set_ylim(97, 99.6)
    ax.set_xlabel("seconds since the command was started (whole process, this 2-core CPU)")
    ax.set_ylabel("accuracy, %")
    ax.set_title("MNIST: validation accuracy per epoch (lines) and test accuracy (stars), seeds "
                 + ", ".join(str(s) for s in record["seeds"]), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.savefig(PLOT, dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(f"plot: {PLOT.relative_to(ROOT)}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        _child(sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5] == "before")
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="the three ways to 99%%, alternated seed by seed, and the plot")
    r.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    r.add_argument("--baseline-seeds", type=int, nargs="+", help="seeds of the two baselines (default: --seeds)")
    r.add_argument("--plain-epochs", type=int, default=10, help="at most, for the plain script")
    r.add_argument("--cnn-epochs", type=int, default=10, help="for configs/cnn_adam.yaml (0: leave it out)")
    p = sub.add_parser("phases", help="where the fast config's whole-process time goes")
    p.add_argument("--config", default="configs/fast/mnist.yaml")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--before", action="store_true",
                   help="alternate with runs as hdr was before its cuts (scikit-learn imported, Python's own exit)")
    sub.add_parser("plot", help="draw the newest run's figure again")
    args = ap.parse_args()
    {"run": cmd_run, "phases": cmd_phases, "plot": lambda a: plot()}[args.cmd](args)


if __name__ == "__main__":
    main()
