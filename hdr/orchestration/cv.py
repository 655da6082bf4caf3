"""`hdr cv`: stratified K-fold cross-validation over the training set.

Each fold holds out one K-th of the training set, the same share of every digit, as its
validation data and trains on the rest; the test set is never used for the folds' choice, only
scored. Every fold is a complete run folder inside the cv folder, <runs-dir>/cv/<cv-id>/,
next to cv.json (per-fold and summary numbers) and folds.png (box plot of the accuracies).
The configured dataset.validation_split does not apply: the fold is the validation set. A fold's
run.json names its fold (rundir.fold_fields), so the run validates on its fold however it is
trained or resumed; `hdr cv --resume CV` finishes a stopped cross-validation by the rule of
hdr/orchestration/resuming.py, and keeps every completed fold.
"""

from __future__ import annotations

import os
from pathlib import Path

import click
import numpy as np

from hdr.analysis import figures, stats
from hdr.core import numbers
from hdr.core.data import stratified_folds
from hdr.core.errors import HdrError, Stopped, UsageError
from hdr.orchestration import executors, resuming
from hdr.runs import rundir
from hdr.runs.rundir import fold_fields


def fold_job(cfg, name: str, folder: Path, fold: int, k: int) -> executors.Job:
    from hdr.engine import config as config_mod

    request = {"action": "train", "config": config_mod.dump(cfg), "config_name": name,
               "info": fold_fields(folder.name, fold, k, cfg.training.seed)}
    return executors.Job(f"fold-{fold}", f"fold {fold}/{k}", request, folder, meta={"fold": fold})


def resume_job(run: Path, fold: int, k: int) -> executors.Job:
    epochs = len(rundir.read_history(run / rundir.HISTORY))
    return executors.Job(f"fold-{fold}", f"fold {fold}/{k}", {"action": "resume", "run": str(run)}, run.parent,
                         run=run, epochs=epochs, meta={"fold": fold})


def _load(folder: Path) -> dict:
    path = folder / "cv.json"
    if not path.is_file():
        raise UsageError(f"{folder} is not a cv folder (no cv.json); cv folders are in RUNS_DIR/cv/")
    try:
        info = rundir.read_json(path)
        info["config"], info["overrides"], info["folds"], info["results"]  # noqa: B018  (present)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UsageError(f"{path} is damaged ({type(e).__name__}: {e}); the cross-validation cannot be resumed") from None
    return info


def run(config, overrides, k, options, runs_dir, resume_dir, quiet):
    """What `hdr cv` does with its parsed options (hdr/cli/cv.py): plan or reload the folds, train
    those not done on the executor, then summarise."""
    config, overrides, k, info = _settings(config, overrides, k, resume_dir)
    cfg, name = _validated(config, overrides, info)
    if info is None:
        folds = _folds(cfg, k, quiet)  # the data is read once, before any folder
        # The executor before the folder: a cluster that cannot be reached leaves nothing behind.
        ex = executors.make(options, executors.no_pruning, k, log=executors.to_stderr)
        folder = rundir.create(runs_dir / "cv", name)
        with resuming.hold(folder, "cross-validation") as lock:
            info = _record(folder, config, overrides, k, cfg, name, folds)
            rundir.write_json(folder / "cv.json", info)  # at once: from now on the folder can be resumed
            results: dict = {}
            jobs = [fold_job(cfg, name, folder, f, k) for f in range(1, k + 1)]
            signum = _train(ex, options, lock, jobs, info, results, folder, k, quiet)
            _conclude(folder, info, results, k, name, cfg, signum)
    else:
        folder = resume_dir
        options = options.resumed(info.get("options") or info)
        options.check()
        with resuming.hold(folder, "cross-validation") as lock:
            results, jobs = _todo(folder, info, cfg, name, k)
            signum = None
            if jobs:
                ex = executors.make(options, executors.no_pruning, len(jobs), log=executors.to_stderr)
                signum = _train(ex, options, lock, jobs, info, results, folder, k, quiet)
            _conclude(folder, info, results, k, name, cfg, signum)


def _todo(folder: Path, info: dict, cfg, name: str, k: int) -> tuple[dict, list[executors.Job]]:
    """A resumed cv's results so far and its jobs: each fold not yet a result is adopted (its run
    completed after cv.json last heard of it), resumed from its last epoch, or trained."""
    results = {r["fold"]: r for r in info["results"] if r.get("status") in (rundir.COMPLETED, rundir.FAILED)}
    found = resuming.index(folder, {}, "fold")
    jobs = []
    for f in range(1, k + 1):
        if f in results:
            continue
        what, run = resuming.state(found.get(str(f)))
        if what == "done":
            ran = rundir.read_info(run)
            results[f] = _result(info, f, run, ran.get("status"), ran.get("reason"))[0]
        elif what == "resume":
            jobs.append(resume_job(run, f, k))
        else:
            jobs.append(fold_job(cfg, name, folder, f, k))
    return results, jobs


def _result(info: dict, i: int, run: Path | None, status: str, error: str | None) -> tuple[dict, str]:
    """A fold's entry in cv.json and the line that reports it."""
    k = info["folds"]
    result = {"fold": i, "val_size": info["fold_sizes"][i - 1], "status": status, "run": run.name if run else None}
    if status == rundir.COMPLETED:
        m = rundir.read_json(run / rundir.METRICS)
        result.update(val_accuracy=m[rundir.VAL_ACCURACY], best_val_accuracy=m.get(rundir.BEST_VAL_ACCURACY),
                      test_accuracy=m[rundir.TEST_ACCURACY])
        return result, (f"fold {i}/{k}: validation accuracy {numbers.percent(m[rundir.VAL_ACCURACY])}, "
                        f"test accuracy {numbers.percent(m[rundir.TEST_ACCURACY])} ({run.name})")
    if status == rundir.INTERRUPTED:  # the last line says how to finish it: hdr cv --resume
        epochs = len(rundir.read_history(run / rundir.HISTORY)) if run else 0
        return result, f"fold {i}/{k}: stopped after {epochs} epoch{'s' if epochs != 1 else ''}"
    result["error"] = error
    return result, f"fold {i}/{k}: {status}: {error}"


def _settings(config, overrides, k, resume_dir):
    """(config, overrides, folds, the cv.json of a cv to resume or None), checked."""
    info = None
    if resume_dir is not None:
        if config or overrides:
            raise UsageError("--resume takes only the cv folder (and executor options); its config is in cv.json")
        info = _load(resume_dir)
        config, overrides, k = info["config"], info["overrides"], info["folds"]
    elif not config:
        raise UsageError("missing CONFIG: give a YAML config file (see configs/) or --resume CV")
    if k < 2:
        raise UsageError(f"--folds {k}: cross-validation needs at least 2 folds (5 is usual)")
    return config, list(overrides), k, info


def _validated(config, overrides, info):
    """The config, validated, and its name; for a resumed cv, refused when it changed since."""
    from hdr.engine import config as config_mod

    cfg = config_mod.load(config, overrides)
    if info is not None and config_mod.fingerprint(cfg) != info.get("config_fingerprint", config_mod.fingerprint(cfg)):
        raise UsageError(f"{config} changed since the cross-validation started; resume needs the config it began with")
    return cfg, Path(config).stem


def _folds(cfg, k: int, quiet: bool) -> list:
    """The k stratified folds of the training set; refused when the rarest digit cannot fill them."""
    from hdr.core import data as data_mod

    labels = data_mod.load(cfg.dataset.name, quiet=quiet).train.y
    counts = np.bincount(labels)
    smallest = int(counts[counts > 0].min())
    if k > smallest:
        raise UsageError(f"--folds {k}: the rarest digit has only {smallest} training examples, so some folds "
                         f"would lack it; use at most {smallest} folds")
    return stratified_folds(labels, k, cfg.training.seed)


def _record(folder: Path, config, overrides, k: int, cfg, name: str, folds) -> dict:
    """A new cv's cv.json, before any fold trains."""
    from hdr.engine import config as config_mod

    return {
        "id": folder.name, "status": rundir.RUNNING, "config": config, "config_name": name,
        "overrides": list(overrides), "folds": k, "seed": cfg.training.seed, "dataset": cfg.dataset.name,
        "fold_sizes": [len(f) for f in folds], "config_fingerprint": config_mod.fingerprint(cfg),
        "note": "each fold is the validation set of its run; dataset.validation_split does not apply",
        "started": rundir.now_iso(), "ended": None, "command": rundir.command_line(), "cwd": os.getcwd(),
        "results": [],
    }


def _conclude(folder: Path, info: dict, results: dict, k: int, name: str, cfg, signum) -> None:
    """cv.json's ending, the summary and box plot, what is printed, and the exit (stopped, failed)."""
    info["results"] = [results[f] for f in sorted(results)]
    completed = [results[f] for f in sorted(results) if results[f]["status"] == rundir.COMPLETED]
    failed = [f"fold {f}: {results[f].get('error')}" for f in sorted(results) if results[f]["status"] == rundir.FAILED]
    if signum is not None:
        info.update(status=rundir.INTERRUPTED, ended=rundir.now_iso())
        rundir.write_json(folder / "cv.json", info)
        click.echo(str(folder))  # the last line printed is the cv folder, stopped or not
        raise Stopped(f"cross-validation stopped: {len(completed)} of {k} folds completed ({folder}/cv.json); "
                      f"finish it with: hdr cv --resume {folder}", signum)
    summary = {key: stats.summary([r[key] for r in completed]) for key in (rundir.VAL_ACCURACY, rundir.TEST_ACCURACY)}
    info.update(status=rundir.FAILED if failed else rundir.COMPLETED, ended=rundir.now_iso(), summary=summary,
                std="sample standard deviation over folds (ddof=1)")
    rundir.write_json(folder / "cv.json", info)
    if completed:
        figures.box_plot(summary, folder / "folds.png", f"{k}-fold cross-validation: {name} ({cfg.dataset.name})")
        v, t = summary[rundir.VAL_ACCURACY], summary[rundir.TEST_ACCURACY]
        click.echo(f"accuracy: mean={numbers.percent(v['mean'])} std={numbers.percent(v['std'])} n={v['n']}")
        click.echo(f"test accuracy: mean={numbers.percent(t['mean'])} std={numbers.percent(t['std'])} n={t['n']}")
    click.echo(str(folder))
    if failed:
        raise HdrError(f"{len(failed)} of {k} folds failed: {'; '.join(failed)} (see {folder}/cv.json)")


def _train(ex, options, lock: int, jobs, info: dict, results: dict, folder: Path, k: int, quiet: bool) -> int | None:
    """Train the folds' jobs on the executor (its workers keep the cv folder's lock)."""
    ex.keep_open((lock,))
    try:
        return _run_folds(ex, options, jobs, info, results, folder, k, quiet)
    finally:
        ex.close()


def _run_folds(ex, options, jobs, info: dict, results: dict, folder: Path, k: int, quiet: bool) -> int | None:
    def save():
        info["results"] = [results[f] for f in sorted(results)]
        rundir.write_json(folder / "cv.json", info)

    def on_done(job, answer):
        i = job.meta["fold"]
        if answer["status"] == rundir.NOT_RUN:
            return None, True
        run = Path(answer["run"]) if answer.get("run") else (job.run or resuming.find_run(folder, {"fold": i}))
        status = resuming.settled(answer["status"], run)
        error = answer.get("error") if status == answer["status"] else rundir.read_info(run).get("reason")
        result, line = _result(info, i, run, status, error)
        if status in (rundir.COMPLETED, rundir.FAILED):  # a stopped fold is not a result: resume finishes it
            results[i] = result
        if status == rundir.COMPLETED:
            click.echo(line)
            line = None
        save()
        return line, status != rundir.COMPLETED

    info.update(status=rundir.RUNNING, ended=None, **ex.settings(), options=options.record())
    save()
    if not quiet:
        click.echo(f"cv {folder.name}: {len(jobs)} of {k} folds to train, {ex.describe()}", err=True)
    pending = iter(jobs)
    return executors.drive(ex, lambda: next(pending, None), on_done, executors.Progress(len(jobs), quiet, "fold"))
