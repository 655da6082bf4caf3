"""`hdr runs` and `hdr compare` over a runs folder of 10,000 run folders: wall, user and system CPU
time and peak memory, cold (no index: the first listing, which writes it), warm (the index read
back, and for compare the result it kept, .hdr-compare) and, for compare, with the index but no
kept result (what a comparison costs after any run changed), against the same commands with both
switched off (HDR_RUNS_INDEX=0), in one run.

    python -m bench.perf.manyruns [--runs-dir DIR] [--sources DIR] [--n 10000] [--repeats 3]

The runs folder is built from real run folders: three tiny USPS runs (an SLP, an Adam MLP and an
SGD MLP that stops early), trained into --sources first when it holds no run. Each of the N copies
gets its own id (dates over a year), seed, learning rate, batch size and epochs, a history of that
length grown from the real one, and a status as a year of use leaves them: mostly completed (some
early-stopped, some with eval/), then failed, interrupted, crashed (a dead pid), pruned, sweep
points, a few still running (a live pid), a damaged folder and a folder that is not a run. The files
the commands read (run.json, config.yaml, metrics.json, history.csv, summary.txt) are written in
hdr's formats; model.keras and the plots are left out, as no listing reads them. Without
--runs-dir the folder is built in a temporary folder and removed afterwards.

Each timing is a fresh process (`python -m hdr ...`, output to /dev/null) measured with
os.wait4: wall, user, system, peak RSS. Then each command's output with the index and kept result
against without (--json, the text, and the files --out writes). Writes
bench/results/manyruns-<time>.json; bench/docs/harnesses.py's `manyruns()` gives BENCHMARKS.md's block.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

from bench.docs.harnesses import MANYRUNS_MODES as MODES
from bench.docs.harnesses import manyruns as render
from bench.layout import RESULTS, command
from bench.layout import ROOT as REPO

SOURCE_RUNS = [  # (config, overrides): tiny real runs the copies are made from
    ("configs/slp_sgd.yaml", ["dataset.name=usps", "training.epochs=2"]),
    ("configs/mlp_adam.yaml", ["dataset.name=usps", "training.epochs=2"]),
    ("configs/mlp_sgd.yaml", ["dataset.name=usps", "training.epochs=8", "training.early_stopping.patience=1",
                              "optimizer.learning_rate=0.5"]),
]
HDR = [sys.executable, "-m", "hdr"]


# ------------------------------------------------------------------------------ the runs folder

def train_sources(folder: Path) -> list[Path]:
    """The real run folders in folder, trained there first when it holds none."""
    folder.mkdir(parents=True, exist_ok=True)
    found = sorted(p for p in folder.iterdir() if (p / "metrics.json").is_file())
    if not found:
        for config, overrides in SOURCE_RUNS:
            print(f"training {config} {' '.join(overrides)}", flush=True)
            subprocess.run([*HDR, "train", config, *overrides, "--runs-dir", str(folder), "-q"], check=True, cwd=REPO)
        found = sorted(p for p in folder.iterdir() if (p / "metrics.json").is_file())
    return found


def _history_rows(real: list[dict], n: int, rng: random.Random, top: float) -> list[dict]:
    """n epochs grown from a real history: the real rows first, then a curve rising towards top."""
    rows = []
    last = real[-1]
    for e in range(1, n + 1):
        if e <= len(real):
            row = dict(real[e - 1])
        else:
            gain = 1 - 0.6 ** (e - len(real))
            val = min(0.999, last["val_accuracy"] + (top - last["val_accuracy"]) * gain + rng.gauss(0, 0.004))
            acc = min(0.999, last["accuracy"] + (top + 0.01 - last["accuracy"]) * gain + rng.gauss(0, 0.002))
            row = {"epoch": e, "loss": max(0.01, last["loss"] * (1 - 0.8 * gain)), "accuracy": acc,
                   "val_loss": max(0.01, last["val_loss"] * (1 - 0.7 * gain) + rng.gauss(0, 0.01)),
                   "val_accuracy": val, "learning_rate": last["learning_rate"],
                   "seconds": round(last["seconds"] * rng.uniform(0.8, 1.3), 3)}
        row["epoch"] = e
        rows.append(row)
    return rows


def _write_history(path: Path, rows: list[dict]) -> None:
    from hdr.runs.rundir import HISTORY_FIELDS

    lines = [",".join(HISTORY_FIELDS)]
    lines += [",".join("" if r.get(k) is None else str(r[k]) for k in HISTORY_FIELDS) for r in rows]
    path.write_text("\n".join(lines) + "\n")


def build(dest: Path, sources: list[Path], n: int, seed: int = 0) -> dict:
    """n run folders in dest made from the real runs in sources; returns the counts by status."""
    from hdr.runs.rundir import read_history

    rng = random.Random(seed)
    real = []
    for src in sources:
        real.append({"info": json.loads((src / "run.json").read_text()),
                     "config": yaml.safe_load((src / "config.yaml").read_text()),
                     "metrics": json.loads((src / "metrics.json").read_text()),
                     "history": read_history(src / "history.csv"),
                     "summary": (src / "summary.txt").read_text()})
    dest.mkdir(parents=True, exist_ok=True)
    start = datetime(2025, 11, 25, 9, 0, tzinfo=timezone.utc)
    live_pid = os.getppid()  # a process that outlives the listings: "running" stays running
    counts: dict[str, int] = {}
    sweep = None
    for i in range(n):
        base = real[i % len(real)]
        cfg = copy.deepcopy(base["config"])
        when = start + timedelta(minutes=52 * i + rng.randrange(50))
        # A fifth of the runs are points of sweeps of 12 (lr x batch size), 3 seeds each.
        if sweep is None and rng.random() < 0.02:
            sweep = {"id": f"{when:%Y%m%d-%H%M%S}-sweep-{rng.randrange(16**4):04x}", "left": 12, "index": 0}
        lr = rng.choice([0.001, 0.003, 0.01, 0.03, 0.1, 0.3]) if cfg["optimizer"]["name"] == "sgd" \
            else rng.choice([0.0003, 0.001, 0.003])
        cfg["optimizer"]["learning_rate"] = lr
        cfg["training"]["batch_size"] = rng.choice([32, 64, 128, 256])
        cfg["training"]["seed"] = rng.randint(1, 5)
        cfg["training"]["epochs"] = rng.choice([2, 3, 5, 10, 20, 30])
        if cfg["model"]["type"] == "mlp" and rng.random() < 0.3:
            cfg["model"]["hidden"] = rng.choice([[256], [512, 512], [1024]])
        roll = rng.random()
        status = ("completed" if roll < 0.84 else "failed" if roll < 0.89 else "interrupted" if roll < 0.93
                  else "crashed" if roll < 0.96 else "pruned" if roll < 0.985 else "completed")
        if i % 2000 == 7:
            status = "running"
        planned = cfg["training"]["epochs"]
        es = cfg["training"].get("early_stopping")
        n_epochs = planned if status == "completed" else rng.randint(1, max(1, planned - 1))
        top = rng.uniform(0.90, 0.975)
        hist = _history_rows(base["history"], n_epochs, rng, top)
        stopping = None
        if status == "completed" and es:
            vals = [(r["val_accuracy"], -r["epoch"]) for r in hist]
            best_epoch = -max(vals)[1]
            stop_at = min(n_epochs, best_epoch + es["patience"])
            hist = hist[:stop_at]
            stopping = {"monitor": es["monitor"], "patience": es["patience"], "min_delta": es["min_delta"],
                        "best_epoch": best_epoch, "stopped_epoch": stop_at if stop_at < planned else None,
                        "restored_best": best_epoch != stop_at}
        name = f"{when:%Y%m%d-%H%M%S}-{base['info']['config_name']}-{rng.randrange(16**4):04x}"
        folder = dest / name
        folder.mkdir()
        (folder / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False, default_flow_style=False))
        _write_history(folder / "history.csv", hist)
        (folder / "summary.txt").write_text(base["summary"])
        info = copy.deepcopy(base["info"])
        info.update(id=name, status="running" if status == "crashed" else status, seed=cfg["training"]["seed"],
                    started=when.isoformat(timespec="seconds"), epochs_completed=len(hist), epochs_planned=planned,
                    pid=live_pid if status == "running" else 5_000_000 + i, pid_started=None,
                    host=platform.node(), ended=None if status in ("running", "crashed") else
                    (when + timedelta(seconds=sum(r["seconds"] for r in hist) + 3)).isoformat(timespec="seconds"))
        info.pop("test_accuracy", None)
        if status == "failed":
            info.update(reason=f"training diverged: the loss became NaN or infinite in epoch {len(hist)}; "
                               f"try a smaller optimizer.learning_rate (now {lr:g})", diverged_epoch=len(hist))
        elif status == "interrupted":
            info["reason"] = "SIGINT"
        elif status == "pruned":
            info["reason"] = f"pruned by the search at epoch {len(hist)} (below the median of earlier trials)"
        if sweep is not None:
            info.update(sweep_id=sweep["id"], sweep_point=f"optimizer.learning_rate={lr:g},"
                        f"training.batch_size={cfg['training']['batch_size']}", sweep_index=sweep["index"],
                        sweep_keys="optimizer.learning_rate,training.batch_size")
            sweep["index"] += 1
            sweep["left"] -= 1
            if not sweep["left"]:
                sweep = None
        if status == "completed":
            m = copy.deepcopy(base["metrics"])
            last = hist[stopping["best_epoch"] - 1] if stopping and stopping["restored_best"] else hist[-1]
            test = round(last["val_accuracy"] - rng.uniform(0, 0.02), 6)
            m.update(epochs=len(hist), train_loss=last["loss"], train_accuracy=last["accuracy"],
                     val_loss=last["val_loss"], val_accuracy=last["val_accuracy"], test_accuracy=test,
                     test_error_rate=1 - test, test_loss=last["val_loss"] * rng.uniform(1.0, 1.2),
                     train_seconds=round(sum(r["seconds"] for r in hist), 3))
            m.pop("early_stopping", None)
            if stopping:
                m["early_stopping"] = stopping
            best = max((r["val_accuracy"], -r["epoch"]) for r in hist)
            m["best_val_accuracy"], m["best_epoch"] = best[0], -best[1]
            # metrics.json before the test figure in run.json, as hdr train writes them
            m_text = json.dumps(m, indent=2) + "\n"
            (folder / "metrics.json").write_text(m_text)
            info["test_accuracy"] = test
            if rng.random() < 0.1:
                (folder / "eval").mkdir()
                (folder / "eval" / "metrics.json").write_text(json.dumps(
                    {"split": "test", "accuracy": test, "loss": m["test_loss"], "n": m["test_size"]}, indent=2) + "\n")
        (folder / "run.json").write_text(json.dumps(info, indent=2) + "\n")
        counts[status] = counts.get(status, 0) + 1
    # What else a runs folder collects: a comparison's output folder and a damaged run.
    (dest / "tour-compare").mkdir(exist_ok=True)
    (dest / "tour-compare" / "compare.csv").write_text("run\n")
    bad = dest / f"{start:%Y%m%d-%H%M%S}-mlp_adam-dead"
    bad.mkdir(exist_ok=True)
    (bad / "run.json").write_text('{"id": "half-writ')
    return counts


# ------------------------------------------------------------------------------ measuring

COMMANDS = {  # name -> arguments after `hdr`, {dir} the runs folder
    "hdr runs DIR": ["runs", "{dir}"],
    "hdr compare DIR": ["compare", "{dir}"],
    "hdr compare DIR/*": ["compare", "{glob}"],
}


def _timed(argv: list[str], env: dict, cwd: Path = REPO) -> dict:
    """One fresh process: wall seconds, user and system CPU seconds, peak RSS (MB), from wait4."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=cwd)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"failed ({code}): {' '.join(argv[:6])} ...")
    return {"wall": round(wall, 3), "user": round(ru.ru_utime, 3), "sys": round(ru.ru_stime, 3),
            "max_rss_mb": round(ru.ru_maxrss / 1024, 1)}


def _old_checkout(rev: str, dest: Path) -> Path:
    """hdr as it was at rev (before the index), unpacked from git, importable from dest."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "archive", rev, "hdr"], cwd=REPO, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def measure(runs_dir: Path, repeats: int, before_rev: str | None, work: Path) -> dict:
    from hdr.analysis import comparecache
    from hdr.runs import runindex

    index, kept = runs_dir / runindex.NAME, runs_dir / comparecache.NAME
    glob = sorted(str(p) for p in runs_dir.iterdir() if p.is_dir())
    base_env = {k: v for k, v in os.environ.items() if k not in ("HDR_RUNS_INDEX", "PYTHONPATH")}
    envs = {"no index": {**base_env, "HDR_RUNS_INDEX": "0"}, "cold": base_env, "index only": base_env,
            "warm": base_env}
    modes = [m for m in MODES if m != "before" or before_rev]
    if before_rev:
        old = _old_checkout(before_rev, work / "before")
        envs["before"] = {**base_env, "PYTHONPATH": str(old)}
        probe = subprocess.run([sys.executable, "-c", "import hdr, sys; print(hdr.__file__)"], env=envs["before"],
                               capture_output=True, text=True, cwd=work, check=True).stdout.strip()
        assert probe.startswith(str(old)), probe
    samples: dict = {c: {m: [] for m in modes if m != "index only" or args[0] == "compare"}
                     for c, args in COMMANDS.items()}
    for rep in range(repeats):
        for name, args in COMMANDS.items():
            argv = [sys.executable, "-m", "hdr"]
            for a in args:
                argv += glob if a == "{glob}" else [a.format(dir=runs_dir)]
            for mode in modes:
                if mode == "index only" and args[0] != "compare":
                    continue  # hdr runs keeps no result: this is its warm
                if mode == "cold":
                    index.unlink(missing_ok=True)
                    kept.unlink(missing_ok=True)
                elif mode == "index only":
                    kept.unlink(missing_ok=True)
                    if not index.exists():
                        _timed(argv, envs["cold"])
                        kept.unlink(missing_ok=True)
                elif mode == "warm" and not (index.exists() and (args[0] != "compare" or kept.exists())):
                    _timed(argv, envs["cold"])
                # `-m hdr` looks in the working folder first: the old copy runs from outside the repository
                got = _timed(argv, envs[mode], work if mode == "before" else REPO)
                samples[name][mode].append(got)
                print(f"[{rep + 1}/{repeats}] {name:18} {mode:8} {got['wall']:7.3f} s wall  {got['user']:6.3f} user  "
                      f"{got['sys']:6.3f} sys  {got['max_rss_mb']:6.1f} MB", flush=True)
    return samples


def same_output(runs_dir: Path, work: Path) -> dict:
    """Whether each command gives the same with the index (and, for compare, its kept result) as
    with neither: --json, the text, and the files --out writes (curves included)."""
    def run(args, flag):
        return subprocess.run([sys.executable, "-m", "hdr", *args], capture_output=True, text=True, cwd=REPO,
                              env={**os.environ, "HDR_RUNS_INDEX": flag}).stdout

    out = {}
    for name, args in (("hdr runs --json", ["runs", str(runs_dir), "--json"]),
                       ("hdr compare --json", ["compare", str(runs_dir), "--json"]),
                       ("hdr compare", ["compare", str(runs_dir)])):
        # with the index twice: computed (or kept) and then surely kept
        texts = [run(args, "0"), run(args, "1"), run(args, "1")]
        out[name] = texts[0] == texts[1] == texts[2] and bool(texts[0])
    files = []
    for flag in ("0", "1"):  # the second from the result kept by the comparisons above
        folder = work / f"out-{flag}"
        run(["compare", str(runs_dir), "--out", str(folder)], flag)
        files.append({p.name: p.read_bytes() for p in sorted(folder.iterdir())})
    out["hdr compare --out"] = files[0] == files[1] and len(files[0]) == 5
    return out


def _median(samples: list[dict], key: str) -> float:
    return round(statistics.median(s[key] for s in samples), 3)


def summarise(samples: dict) -> dict:
    table = {}
    for name, modes in samples.items():
        row = {}
        for mode, got in modes.items():
            row[mode] = {k: _median(got, k) for k in ("wall", "user", "sys")}
            row[mode]["cpu"] = round(row[mode]["user"] + row[mode]["sys"], 3)
            row[mode]["max_rss_mb"] = max(s["max_rss_mb"] for s in got)
        base = row["no index"]
        for mode in row:
            row[mode]["wall_vs_no_index"] = round(row[mode]["wall"] / base["wall"], 3)
            row[mode]["cpu_vs_no_index"] = round(row[mode]["cpu"] / base["cpu"], 3)
        table[name] = row
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs-dir", type=Path, help="build (or reuse, when it holds runs) the runs folder here")
    ap.add_argument("--sources", type=Path, help="real run folders to copy (trained here when empty)")
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--before", default="e2ef8fa^", metavar="REV",
                    help="also time hdr as at this git revision (before the index); '' to skip")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="manyruns-") as tmp:
        tmp = Path(tmp)
        sources = train_sources(args.sources or tmp / "sources")
        runs_dir = (args.runs_dir or tmp / "runs").resolve()
        held = [p for p in runs_dir.iterdir() if (p / "run.json").is_file()] if runs_dir.is_dir() else []
        if held:
            print(f"reusing {runs_dir}: {len(held)} run folders", flush=True)
            from hdr.runs.rundir import effective_status

            counts = {}
            for p in held:
                try:
                    s = effective_status(json.loads((p / "run.json").read_text()))
                except ValueError:
                    s = "damaged"
                counts[s] = counts.get(s, 0) + 1
        else:
            t0 = time.perf_counter()
            counts = build(runs_dir, sources, args.n)
            print(f"built {args.n} run folders in {runs_dir} in {time.perf_counter() - t0:.0f} s: {counts}", flush=True)
        time.sleep(2.5)  # settled: the index keeps only runs unchanged for runindex.MARGIN_NS
        load = os.getloadavg()
        samples = measure(runs_dir, args.repeats, args.before or None, tmp)
        index_bytes = (runs_dir / ".hdr-index").stat().st_size
        kept = runs_dir / ".hdr-compare"
        kept_bytes = kept.stat().st_size if kept.exists() else None
        same = same_output(runs_dir, tmp)
        result = {
            "written": datetime.now().strftime("%Y-%m-%dT%H:%M:%S"),
            "command": command([shlex.join(sys.argv[1:])]),
            "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                        "python": platform.python_version(), "load_average_before": [round(x, 2) for x in load],
                        "load_average_after": [round(x, 2) for x in os.getloadavg()]},
            "runs": sum(counts.values()), "statuses": counts, "sources": [p.name for p in sources],
            "before": args.before or None, "index_bytes": index_bytes, "kept_bytes": kept_bytes,
            "same_output": same,
            "repeats": args.repeats, "summary": summarise(samples), "samples": samples,
        }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"manyruns-{datetime.now():%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out.relative_to(REPO)}")
    print(render())


if __name__ == "__main__":
    main()
