"""`hdr sweep`: train every point of a grid (times N seeds), each its own run folder.

Points run in `--jobs N` worker processes (hdr/worker.py) that are reused from point to point,
so Keras is imported and the data loaded once per worker, not once per point; a worker that
crashes (out of memory, say) loses only its current point and is replaced. Every point's config
is validated before anything starts: a typo in a grid value is a usage error with nothing created.

The sweep folder, <runs-dir>/sweeps/<sweep-id>/, holds sweep.json (the points, their
overrides, run folders and exit codes, rewritten atomically as each point ends), one log per
point, and the compare table of the sweep's runs.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import click

from hdr import rundir
from hdr.errors import EXIT_SIGNAL, HdrError, Stopped, UsageError

THREAD_VARS = ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
SEED_KEY = "training.seed"


# ------------------------------------------------------------------------------ the grid

def split_values(text: str) -> list[str]:
    """Split V1,V2,... on the commas outside brackets and quotes, so a value may itself be a
    YAML list: model.hidden=[256],[512,512] is two values."""
    values, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            values.append(text[start:i])
            start = i + 1
    values.append(text[start:])
    return [v.strip() for v in values]


def parse_grid(items) -> dict[str, list[str]]:
    grid: dict[str, list[str]] = {}
    for item in items:
        key, eq, rest = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise UsageError(f"--grid {item!r}: expected KEY=V1,V2,... (example: --grid optimizer.name=adam,sgd)")
        if key in grid:
            raise UsageError(f"--grid {key} is given twice; list all its values in one --grid {key}=V1,V2")
        values = split_values(rest)
        if any(v == "" for v in values):
            raise UsageError(f"--grid {item!r}: empty value; separate values with single commas")
        if len(set(values)) != len(values):
            raise UsageError(f"--grid {item!r}: a value is listed twice")
        grid[key] = values
    return grid


@dataclass
class Point:
    index: int
    label: str                 # the grid values, e.g. optimizer.name=adam,training.batch_size=64
    overrides: list[str]       # the grid values as KEY=VALUE, seed last
    seed: int
    status: str = "pending"
    exit_code: int | None = None
    run: Path | None = None
    error: str | None = None
    test_accuracy: float | None = None

    def record(self, sweep_folder: Path) -> dict:
        return {
            "index": self.index, "label": self.label, "seed": self.seed, "overrides": self.overrides,
            "status": self.status, "exit_code": self.exit_code,
            # Relative, so the sweep folder still finds its runs if the runs folder moves.
            "run": os.path.relpath(self.run, sweep_folder) if self.run else None,
            "error": self.error, "test_accuracy": self.test_accuracy,
        }


def plan(config: str, overrides: list[str], grid: dict[str, list[str]], seeds: int) -> list[Point]:
    """Every (grid point, seed) with its overrides, each validated as a full config."""
    from hdr import config as config_mod

    fixed = {o.partition("=")[0].strip() for o in overrides}
    clash = sorted(fixed & set(grid))
    if clash:
        raise UsageError(f"{clash[0]} is both a --grid key and a KEY=VALUE override; give it in one place")
    if seeds > 1 and SEED_KEY in grid:
        raise UsageError(f"--seeds {seeds} and --grid {SEED_KEY}=... both set the seed; use one of them")
    keys = list(grid)
    points: list[Point] = []
    for values in itertools.product(*(grid[k] for k in keys)):
        point = [f"{k}={v}" for k, v in zip(keys, values)]
        label = ",".join(point) or "base"
        try:
            cfg = config_mod.load(config, list(overrides) + point)
        except UsageError as e:
            raise UsageError(f"grid point {label}: {e}") from None
        for s in range(seeds):
            seed = cfg.training.seed + s
            ovr = point + ([f"{SEED_KEY}={seed}"] if SEED_KEY not in grid else [])
            points.append(Point(len(points), label, ovr, seed))
    return points


def threads_per_job(jobs: int) -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores // jobs)


# ------------------------------------------------------------------------------ running

class Worker:
    """One reused training process (hdr/worker.py), started when first needed and again after
    one died. Its own session: a Ctrl-C at the terminal reaches only the sweep, which passes it on."""

    def __init__(self, env: dict):
        self.env = env
        self.proc: subprocess.Popen | None = None

    def run(self, request: dict) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen([sys.executable, "-m", "hdr.worker"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True, env=self.env, start_new_session=True)
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except BrokenPipeError:
            line = ""
        if line:
            return json.loads(line)
        code = self.proc.wait()  # died mid-run: out of memory, a crash, a second signal
        self.proc = None
        stopped = code in (*EXIT_SIGNAL.values(), *(-s for s in EXIT_SIGNAL))
        return {"status": "interrupted" if stopped else "failed", "run": None, "exit_code": code,
                "error": f"the training process ended with exit code {code}"}

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait()
        self.proc = None


class Sweep:
    def __init__(self, folder: Path, config: str, overrides: list[str], grid: dict, points: list[Point],
                 runs_dir: Path, jobs: int, seeds: int, quiet: bool):
        self.folder, self.config, self.overrides, self.grid = folder, config, overrides, grid
        self.points, self.runs_dir, self.jobs, self.quiet = points, runs_dir, jobs, quiet
        self.seeds = sorted({p.seed for p in points}) if seeds > 1 else [points[0].seed]
        self.id = folder.name
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.workers: list[Worker] = []
        self.done = 0
        self.threads = threads_per_job(jobs)
        self.info = {
            "id": self.id, "status": "running", "config": config, "config_name": Path(config).stem,
            "overrides": list(overrides), "grid": grid, "seeds": self.seeds, "jobs": jobs,
            "threads_per_job": self.threads, "runs_dir": str(runs_dir), "started": rundir.now_iso(),
            "ended": None, "command": rundir.command_line(), "cwd": os.getcwd(),
        }

    def save(self) -> None:
        with self.lock:
            data = dict(self.info, points=[p.record(self.folder) for p in self.points])
            rundir.write_json(self.folder / "sweep.json", data)

    def env(self) -> dict:
        env = dict(os.environ)
        for var in THREAD_VARS:
            # N processes with one thread pool each as wide as the machine would fight over the
            # cores; an explicit setting of the user's wins.
            env.setdefault(var, str(self.threads))
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        return env

    def info_fields(self, p: Point) -> dict:
        return {"sweep_id": self.id, "sweep_point": p.label, "sweep_index": p.index, "sweep_keys": ",".join(self.grid)}

    def command(self, p: Point) -> list[str]:
        """The `hdr train` command that trains this point on its own, as the log records it."""
        info = [x for k, v in self.info_fields(p).items() for x in ("--info", f"{k}={v}")]
        return ["hdr", "train", self.config, *self.overrides, *p.overrides, "--runs-dir", str(self.runs_dir),
                "-q", *info]

    def run_point(self, p: Point, worker: "Worker") -> None:
        if self.stop.is_set():
            p.status = "not run"
            return
        p.status = "running"
        self.save()
        logs = self.folder / "logs"
        logs.mkdir(exist_ok=True)
        log = logs / f"point-{p.index:03d}.log"
        rundir.atomic_write(log, f"$ {' '.join(self.command(p))}\n")
        answer = worker.run({"config": self.config, "overrides": [*self.overrides, *p.overrides],
                             "runs_dir": str(self.runs_dir), "info": self.info_fields(p), "log": str(log)})
        p.exit_code, p.status, p.error = answer["exit_code"], answer["status"], answer["error"]
        p.run = Path(answer["run"]) if answer.get("run") else self.find_run(p)
        if p.run is not None:
            try:
                p.test_accuracy = rundir.read_json(p.run / "metrics.json").get("test_accuracy")
            except (OSError, ValueError):
                pass
        with open(log, "a") as f:
            f.write(f"--- {p.status}, exit code {p.exit_code}" + (f": {p.error}" if p.error else "") + "\n")
        self.save()
    def report_point(self, p: Point) -> None:
        with self.lock:
            self.done += 1
            done = self.done
        if not self.quiet:
            what = (f"test accuracy {100 * p.test_accuracy:.2f}%" if p.test_accuracy is not None
                    else p.error or p.status)
            click.echo(f"[{done}/{len(self.points)}] {p.label} seed={p.seed}: {p.status}, {what}", err=True)

    def find_run(self, p: Point) -> Path | None:
        """The run folder of a point that failed after creating it (stdout never named it)."""
        if not self.runs_dir.is_dir():
            return None
        for child in self.runs_dir.iterdir():
            try:
                info = rundir.read_json(child / "run.json")
            except (OSError, ValueError):
                continue
            if info.get("sweep_id") == self.id and str(info.get("sweep_index")) == str(p.index):
                return child
        return None

    def forward(self, signum: int) -> None:
        """Pass a stop on: exactly one signal to each worker (a second would make a training
        stop without clean-up); the point it trains ends as `interrupted`."""
        self.stop.set()
        with self.lock:
            procs = [w.proc for w in self.workers if w.proc is not None]
        for proc in procs:
            try:
                proc.send_signal(signum)
            except ProcessLookupError:
                pass

    def run(self) -> int | None:
        """Run all points; the signal number if the sweep was stopped by one."""
        self.save()
        env = self.env()
        stopped: list[int] = []

        def on_signal(signum, frame):
            if not stopped and not self.quiet:
                click.echo(f"\n{signal.Signals(signum).name}: stopping the running points; "
                           "no new points start", err=True)
            stopped.append(signum)
            self.forward(signum)

        todo: queue.Queue[Point] = queue.Queue()
        for p in self.points:
            todo.put(p)
        errors: list[BaseException] = []

        def drain(worker: Worker) -> None:
            try:
                while True:
                    try:
                        p = todo.get_nowait()
                    except queue.Empty:
                        return
                    self.run_point(p, worker)
                    if p.status != "not run":
                        self.report_point(p)
            except BaseException as e:  # a bug here must not pass silently
                errors.append(e)
            finally:
                worker.close()

        self.workers = [Worker(env) for _ in range(self.jobs)]
        old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            threads = [threading.Thread(target=drain, args=(w,), daemon=True) for w in self.workers]
            for t in threads:
                t.start()
            for t in threads:
                while t.is_alive():
                    t.join(0.2)  # short waits: the main thread must stay free to take signals
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        if errors:
            raise errors[0]
        failed = any(p.status != "completed" for p in self.points)
        self.info.update(status="interrupted" if stopped else "failed" if failed else "completed",
                         ended=rundir.now_iso())
        self.save()
        return stopped[0] if stopped else None


def report(sweep: Sweep) -> str | None:
    """The compare table of the sweep, also written into the sweep folder."""
    from hdr import compare

    runs = compare.load_runs([sweep.folder], warn=lambda msg: None)
    if not runs:
        return None
    result = compare.analyse(runs)
    compare.write(result, sweep.folder)
    return compare.text(result)


# ------------------------------------------------------------------------------ command

@click.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=str))
@click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")
@click.option("--grid", "grid_items", multiple=True, metavar="KEY=V1,V2,...",
              help="A config key and the values to try; several --grid give their Cartesian product.")
@click.option("--seeds", default=1, show_default=True, type=click.IntRange(min=1),
              help="Run each point with N seeds (training.seed, training.seed+1, ...); compare then "
                   "shows mean ± std and flags gaps within seed noise.")
@click.option("--jobs", default=1, show_default=True, type=click.IntRange(min=1),
              help="Points run at once, each in its own process with cores/N threads.")
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the run folders; the sweep folder goes in RUNS_DIR/sweeps/.")
@click.option("--dry-run", is_flag=True, help="List the points and their overrides; run nothing.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines; print only the table and the sweep folder.")
def command(config, overrides, grid_items, seeds, jobs, runs_dir, dry_run, quiet):
    """Train CONFIG at every point of a grid, each point its own run folder, then compare them.

    \b
      hdr sweep configs/mlp_adam.yaml --grid optimizer.name=adam,adagrad,adadelta --seeds 3
      hdr sweep configs/cnn_adam.yaml --grid training.batch_size=64,128 \\
          --grid optimizer.learning_rate=0.001,0.0003 training.epochs=3 --jobs 2

    Values are read as YAML; a value that is a list keeps its brackets: --grid model.hidden=[256],[512,512].
    A point that fails does not stop the others; the sweep exits 1 if any failed.
    The last line printed is the sweep folder.
    """
    grid = parse_grid(grid_items)
    points = plan(config, list(overrides), grid, seeds)
    if dry_run:
        for p in points:
            click.echo(f"{p.index:3d}  {' '.join([*overrides, *p.overrides]) or '(config as is)'}")
        click.echo(f"{len(points)} runs ({len(points) // seeds} points x {seeds} seeds); nothing was run")
        return
    folder = rundir.create(runs_dir / "sweeps", Path(config).stem)
    sweep = Sweep(folder, config, list(overrides), grid, points, runs_dir, min(jobs, len(points)), seeds, quiet)
    if not quiet:
        click.echo(f"sweep {sweep.id}: {len(points)} runs, {sweep.jobs} at a time, "
                   f"{sweep.threads} thread(s) each", err=True)
    signum = sweep.run()
    table = report(sweep)
    if table:
        click.echo(table)
        click.echo()
    click.echo(str(folder))
    bad = [p for p in points if p.status != "completed"]
    if signum is not None:
        raise Stopped(f"sweep stopped by {signal.Signals(signum).name}: "
                      f"{len(points) - len(bad)} of {len(points)} runs completed ({folder}/sweep.json)", signum)
    if bad:
        same: dict[tuple, list[str]] = {}  # one entry per (point, error), listing its seeds
        for p in bad:
            same.setdefault((p.label, p.error or p.status), []).append(str(p.seed))
        lines = "; ".join(f"{label} seed={','.join(seeds)}: {error}" for (label, error), seeds in same.items())
        raise HdrError(f"{len(bad)} of {len(points)} runs failed: {lines} "
                       f"(logs in {folder}/logs/)")
