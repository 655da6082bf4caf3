"""`hdr sweep`: train every point of a grid (times N seeds), each its own run folder.

Points run on an executor (hdr/orchestration/executors.py): by default `--jobs N` local worker processes that
are reused from point to point, so Keras is imported and the data loaded once per worker, not
once per point; or, with `--executor ray`, on a Ray cluster. Every point's config is validated
before anything starts: a typo in a grid value is a usage error with nothing created.

The sweep folder, <runs-dir>/sweeps/<sweep-id>/, holds sweep.json (the points, their
overrides, run folders and exit codes, rewritten atomically as each point ends), one log per
point, and the compare table of the sweep's runs. `hdr sweep --resume SWEEP` finishes what a
stopped sweep left: interrupted runs continue from their last completed epoch, points never
started are trained; completed, pruned and failed runs are results and stay.
"""

from __future__ import annotations

import itertools
import os
import signal
from dataclasses import dataclass
from pathlib import Path

import click

from hdr.orchestration import executors, resuming
from hdr.core import numbers
from hdr.runs import rundir
from hdr.engine.config import split_values
from hdr.core.errors import HdrError, Stopped, UsageError

SEED_KEY = "training.seed"


# ------------------------------------------------------------------------------ the grid

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

    @property
    def key(self) -> str:
        return f"point-{self.index:03d}"

    def record(self, sweep_folder: Path) -> dict:
        return {
            "index": self.index, "label": self.label, "seed": self.seed, "overrides": self.overrides,
            "status": self.status, "exit_code": self.exit_code,
            # Relative, so the sweep folder still finds its runs if the runs folder moves.
            "run": os.path.relpath(self.run, sweep_folder) if self.run else None,
            "error": self.error, rundir.TEST_ACCURACY: self.test_accuracy,
        }


def plan(config: str, overrides: list[str], grid: dict[str, list[str]], seeds: int) -> list[Point]:
    """Every (grid point, seed) with its overrides, each validated as a full config."""
    from hdr.engine import config as config_mod

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


# ------------------------------------------------------------------------------ running

class Sweep:
    def __init__(self, folder: Path, config: str, overrides: list[str], grid: dict, points: list[Point],
                 runs_dir: Path, seeds: int, quiet: bool, info: dict | None = None):
        from hdr.engine import config as config_mod

        self.resumed = info is not None
        self.folder, self.config, self.overrides, self.grid = folder, config, overrides, grid
        self.points, self.runs_dir, self.quiet = points, runs_dir, quiet
        self.seeds = sorted({p.seed for p in points}) if seeds > 1 else [points[0].seed]
        self.id = folder.name
        self.done = 0
        self.config_mod = config_mod
        self.info = info or {
            "id": self.id, "status": rundir.RUNNING, "config": config, "config_name": Path(config).stem,
            "overrides": list(overrides), "grid": grid, "seeds": self.seeds, "runs_dir": str(runs_dir),
            "started": rundir.now_iso(), "ended": None, "command": rundir.command_line(), "cwd": os.getcwd(),
        }

    def save(self) -> None:
        data = dict(self.info, points=[p.record(self.folder) for p in self.points])
        rundir.write_json(self.folder / "sweep.json", data)

    def info_fields(self, p: Point) -> dict:
        return {"sweep_id": self.id, "sweep_point": p.label, "sweep_index": p.index, "sweep_keys": ",".join(self.grid)}

    def command(self, p: Point) -> list[str]:
        """The `hdr train` command that trains this point on its own, as the log records it."""
        info = [x for k, v in self.info_fields(p).items() for x in ("--info", f"{k}={v}")]
        return ["hdr", "train", self.config, *self.overrides, *p.overrides, "--runs-dir", str(self.runs_dir),
                "-q", *info]

    def find_run(self, p: Point) -> Path | None:
        return resuming.find_run(self.runs_dir, {"sweep_id": self.id, "sweep_index": p.index})

    def todo(self) -> list[executors.Job]:
        """A job for every point not yet done (hdr/orchestration/resuming.py): all of them in a new
        sweep; in a resumed one, the stopped (resumed) and the never started."""
        jobs = []
        logs = self.folder / "logs"
        logs.mkdir(exist_ok=True)
        found = resuming.index(self.runs_dir, {"sweep_id": self.id}, "sweep_index") if self.resumed else {}
        for p in self.points:
            what, run = resuming.state(p.run or found.get(str(p.index))) if self.resumed else ("train", None)
            if what == "done":
                self.settle(p, run)
                continue
            log = logs / f"point-{p.index:03d}.log"
            if what == "resume":
                request = {"action": "resume", "run": str(run)}
                with open(log, "a") as f:
                    f.write(f"$ hdr train --resume {run} -q\n")
            else:
                cfg = self.config_mod.load(self.config, [*self.overrides, *p.overrides])
                request = {"action": "train", "config": self.config_mod.dump(cfg), "config_name": Path(self.config).stem,
                           "info": self.info_fields(p)}
                with open(log, "a") as f:
                    f.write(f"$ {' '.join(self.command(p))}\n")
            p.status, p.run = "pending", run
            jobs.append(executors.Job(p.key, p.label, request, run.parent if run else self.runs_dir, log,
                                      meta={"point": p}))
        return jobs

    def settle(self, p: Point, run: Path | None, status: str | None = None, exit_code: int | None = None,
               error: str | None = None) -> None:
        """Record how a point's run ended: as the executor answered, or (no status given) as its
        own run.json says."""
        if status is None:
            info = rundir.read_info(run)
            status = info.get("status")
            exit_code = 0 if status in (rundir.COMPLETED, rundir.PRUNED) else 1
            error = info.get("reason") if status == rundir.FAILED else None
        p.run, p.status, p.exit_code, p.error, p.test_accuracy = run, status, exit_code, error, None
        if run is not None and status == rundir.COMPLETED:
            try:
                p.test_accuracy = rundir.read_json(run / rundir.METRICS).get(rundir.TEST_ACCURACY)
            except (OSError, ValueError):
                pass

    def on_done(self, job: executors.Job, answer: dict) -> tuple[str | None, bool]:
        p: Point = job.meta["point"]
        run = Path(answer["run"]) if answer.get("run") else (job.run or self.find_run(p))
        if resuming.settled(answer["status"], run) == answer["status"]:
            self.settle(p, run, answer["status"], answer["exit_code"], answer["error"])
        else:
            self.settle(p, run)  # the run's own record wins
        if job.log is not None:
            with open(job.log, "a") as f:
                where = f" on Ray node {answer['node']}" if answer.get("node") else ""
                f.write(f"--- {p.status}{where}, exit code {p.exit_code}" + (f": {p.error}" if p.error else "") + "\n")
        self.save()
        if p.status == rundir.NOT_RUN:
            return None, False
        self.done += 1
        if p.test_accuracy is not None:
            what = f"test accuracy {numbers.percent(p.test_accuracy)}"
        elif p.status == rundir.INTERRUPTED:  # the sweep's own last line says how to finish it
            what = f"stopped after {job.epochs} epoch{'s' if job.epochs != 1 else ''}"
        else:
            what = p.error or p.status
        return f"[{self.done}/{len(self.points)}] {p.label} seed={p.seed}: {p.status}, {what}", p.status != rundir.COMPLETED

    def run(self, executor, options: executors.Options, jobs: list[executors.Job]) -> int | None:
        """Run the jobs; the signal number if the sweep was stopped by one."""
        self.done = len(self.points) - len(jobs)
        self.info.update(status=rundir.RUNNING, ended=None, **executor.settings(), options=options.record())
        self.save()
        pending = iter(jobs)
        for job in jobs:
            job.meta["point"].status = "pending"
        progress = executors.Progress(len(jobs), self.quiet)

        def next_job():
            job = next(pending, None)
            if job is not None:
                job.meta["point"].status = rundir.RUNNING
                self.save()
            return job

        signum = executors.drive(executor, next_job, self.on_done, progress)
        for p in self.points:
            if p.status in ("pending", rundir.RUNNING):
                p.status = rundir.NOT_RUN
        self.end(signum)
        return signum

    def end(self, signum: int | None) -> None:
        """sweep.json's ending: stopped, some runs failed, or all done."""
        failed = any(p.status != rundir.COMPLETED for p in self.points)
        self.info.update(status=rundir.INTERRUPTED if signum else rundir.FAILED if failed else rundir.COMPLETED,
                         ended=rundir.now_iso())
        self.save()


def report(sweep: Sweep) -> str | None:
    """The compare table of the sweep, also written into the sweep folder."""
    from hdr.analysis import compare

    runs = compare.load_runs([sweep.folder], warn=lambda msg: None)
    if not runs:
        return None
    result = compare.analyse(runs)
    compare.write(result, sweep.folder)
    return compare.text(result)


def load(folder: Path, quiet: bool) -> Sweep:
    """A sweep folder to resume."""
    path = folder / "sweep.json"
    if not path.is_file():
        raise UsageError(f"{folder} is not a sweep folder (no sweep.json); sweep folders are in RUNS_DIR/sweeps/")
    try:
        info = rundir.read_json(path)
        points = [Point(p["index"], p["label"], p["overrides"], p["seed"], p["status"], p["exit_code"],
                        (folder / p["run"]).resolve() if p.get("run") else None, p.get("error"), p.get(rundir.TEST_ACCURACY))
                  for p in info["points"]]
        config, overrides, grid, seeds = info["config"], info["overrides"], info["grid"], info["seeds"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UsageError(f"{path} is damaged ({type(e).__name__}: {e}); the sweep cannot be resumed") from None
    if not Path(config).is_file():
        raise UsageError(f"{config}, the sweep's config, is gone; put it back to resume the sweep")
    return Sweep(folder, config, overrides, grid, points, Path(info["runs_dir"]), len(seeds), quiet, info=info)


# ------------------------------------------------------------------------------ command

def run(config, overrides, grid_items, seeds, options, runs_dir, resume_dir, dry_run, quiet):
    """What `hdr sweep` does with its parsed options (hdr/cli/sweep.py)."""
    if resume_dir is not None:
        if config or overrides or grid_items or seeds != 1 or dry_run:
            raise UsageError("--resume takes only the sweep folder (and executor options); the sweep's config and "
                             "grid are in its sweep.json")
        sweep = load(resume_dir, quiet)
        options = options.resumed(sweep.info.get("options") or sweep.info)
        with resuming.hold(resume_dir, "sweep") as lock:
            todo = sweep.todo()
            if not todo:
                click.echo(f"{resume_dir}: every point is already done; nothing to resume", err=True)
                sweep.end(None)  # it may have been stopped as its last run ended
                return _conclude(sweep, None)
            _train(sweep, executors.make(options, executors.no_pruning, len(todo), log=executors.to_stderr), options, todo, quiet, lock)
        return
    if not config:
        raise UsageError("missing CONFIG: give a YAML config file (see configs/) or --resume SWEEP")
    grid = parse_grid(grid_items)
    points = plan(config, list(overrides), grid, seeds)
    if dry_run:
        return _list(points, overrides, seeds)
    # The executor first: a cluster that cannot be reached leaves no sweep folder behind.
    ex = executors.make(options, executors.no_pruning, len(points), log=executors.to_stderr)
    folder = rundir.create(runs_dir / "sweeps", Path(config).stem)
    with resuming.hold(folder, "sweep") as lock:
        sweep = Sweep(folder, config, list(overrides), grid, points, runs_dir, seeds, quiet)
        sweep.save()  # at once: from now on the folder can be resumed
        _train(sweep, ex, options, sweep.todo(), quiet, lock)


def _train(sweep: Sweep, ex, options: executors.Options, todo: list[executors.Job], quiet: bool, lock: int) -> None:
    """Train the points to do on the executor (its workers keep the sweep's lock), then conclude."""
    ex.keep_open((lock,))
    signum = None
    try:
        if not quiet:
            click.echo(f"sweep {sweep.id}: {len(todo)} of {len(sweep.points)} runs to train, {ex.describe()}", err=True)
        signum = sweep.run(ex, options, todo)
    finally:
        ex.close()
    _conclude(sweep, signum)


def _list(points: list[Point], overrides, seeds: int) -> None:
    """--dry-run: the points and their overrides."""
    for p in points:
        click.echo(f"{p.index:3d}  {' '.join([*overrides, *p.overrides]) or '(config as is)'}")
    click.echo(f"{len(points)} runs ({len(points) // seeds} points x {seeds} seeds); nothing was run")


def _conclude(sweep: Sweep, signum) -> None:
    """The sweep's table and folder, and its exit: stopped, some runs failed, or all done."""
    points, folder = sweep.points, sweep.folder
    table = report(sweep)
    if table:
        click.echo(table)
        click.echo()
    click.echo(str(folder))
    bad = [p for p in points if p.status != rundir.COMPLETED]
    if signum is not None:
        raise Stopped(f"sweep stopped by {signal.Signals(signum).name}: "
                      f"{len(points) - len(bad)} of {len(points)} runs completed ({folder}/sweep.json); "
                      f"finish it with: hdr sweep --resume {folder}", signum)
    if bad:
        same: dict[tuple, list[str]] = {}  # one entry per (point, error), listing its seeds
        for p in bad:
            same.setdefault((p.label, p.error or p.status), []).append(str(p.seed))
        lines = "; ".join(f"{label} seed={','.join(seeds)}: {error}" for (label, error), seeds in same.items())
        raise HdrError(f"{len(bad)} of {len(points)} runs failed: {lines} "
                       f"(logs in {folder}/logs/)")

