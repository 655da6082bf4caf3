"""`hdr cv`: stratified K-fold cross-validation over the training set.

Each fold holds out one K-th of the training set, the same share of every digit, as its
validation data and trains on the rest; the test set is never used for the folds' choice, only
scored. Every fold is a complete run folder inside the cv folder, <runs-dir>/cv/<cv-id>/,
next to cv.json (per-fold and summary numbers) and folds.png (box plot of the accuracies).
The configured dataset.validation_split does not apply: the fold is the validation set.
"""

from __future__ import annotations

import os
import shutil
import statistics
from pathlib import Path

import click
import numpy as np

from hdr import executors, rundir
from hdr.errors import HdrError, Stopped, UsageError


def stratified_folds(y: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """K disjoint index arrays covering y, each with the same class proportions (to within one
    example per class) and sizes differing by at most one. Seeded, so a cv is repeatable.

    Each class is shuffled, the classes are laid end to end and position i goes to fold i % k:
    every class is dealt round-robin over the folds."""
    rng = np.random.default_rng(seed)
    order = []
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        rng.shuffle(idx)
        order.append(idx)
    order = np.concatenate(order) if order else np.array([], int)
    fold_of = np.empty(len(y), dtype=int)
    fold_of[order] = np.arange(len(order)) % k
    return [np.flatnonzero(fold_of == f) for f in range(k)]


# A fold's run records which fold it held out; hdr evaluate --split val reads it back. Both go
# through these two functions, so the numbering (1-based, as printed) is decided here only.

def fold_fields(cv_id: str, fold: int, folds: int, seed: int) -> dict:
    """The run.json fields of the run that holds out fold number `fold` (1..folds)."""
    return {"cv_id": cv_id, "fold": fold, "folds": folds, "fold_seed": seed}


def held_out_rows(info: dict, labels: np.ndarray) -> np.ndarray | None:
    """The training-set rows a cross-validation run held out, from its run.json; None for a run
    that is not a fold."""
    if info.get("fold") is None:
        return None
    try:
        fold, folds, seed = int(info["fold"]), int(info["folds"]), int(info["fold_seed"])
    except (KeyError, TypeError, ValueError):
        raise UsageError("run.json names a cross-validation fold without a valid fold, folds and fold_seed; "
                         "run hdr cv again") from None
    if not 1 <= fold <= folds:
        raise UsageError(f"run.json names fold {fold} of {folds}; run hdr cv again")
    return stratified_folds(labels, folds, seed)[fold - 1]


def _stats(values: list[float]) -> dict:
    if not values:
        return {"n": 0, "values": []}
    return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "n": len(values), "values": values}


def box_plot(summary: dict, path: Path, title: str) -> None:
    from hdr.plots import _pyplot, save_figure

    plt = _pyplot()
    series = [(name, [100 * v for v in summary[key]["values"]])
              for name, key in (("validation\n(held-out fold)", "val_accuracy"), ("test set", "test_accuracy"))
              if summary[key]["n"]]
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.boxplot([v for _, v in series], widths=0.45, showmeans=True,
               meanprops={"marker": "D", "markerfacecolor": "white", "markeredgecolor": "black"})
    ax.set_xticks(range(1, len(series) + 1), [name for name, _ in series])
    rng = np.random.default_rng(0)  # jitter only, so the fold points do not sit on each other
    for i, (_, values) in enumerate(series, start=1):
        ax.scatter(i + rng.uniform(-0.08, 0.08, len(values)), values, s=18, color="tab:blue", alpha=0.8, zorder=3)
    ax.set_ylabel("accuracy (%)")
    ax.set_xlabel("dots: folds, line: median, diamond: mean, box: quartiles", fontsize=8, color="dimgray")
    ax.set_title(title)
    ax.yaxis.get_major_formatter().set_useOffset(False)
    ax.grid(axis="y", alpha=0.3)
    save_figure(fig, path)


def fold_job(cfg, name: str, folder: Path, fold: int, k: int) -> executors.Job:
    from hdr import config as config_mod

    request = {"action": "train", "config": config_mod.dump(cfg), "config_name": name,
               "info": fold_fields(folder.name, fold, k, cfg.training.seed),
               "fold": {"fold": fold, "folds": k, "seed": cfg.training.seed}}
    # A fold is never resumed with train.resume, which would validate on the configured split
    # instead of the fold: a stopped or lost fold starts again (the same history, from epoch 1).
    return executors.Job(f"fold-{fold}", f"fold {fold}/{k}", request, folder, resumable=False, meta={"fold": fold})


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


@click.command()
@click.argument("config", required=False, type=click.Path(dir_okay=False, path_type=str))
@click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")
@click.option("--folds", "-k", "k", default=5, show_default=True, type=int,
              help="Number of folds (at least 2).")
@executors.options
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="The cv folder is created in RUNS_DIR/cv/.")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False, path_type=Path), metavar="CV",
              help="Finish a stopped cross-validation: train the folds it did not complete.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output; print the results and the cv folder.")
def command(config, overrides, k, executor, jobs, address, cpus_per_run, gpus_per_run, runs_dir, resume_dir, quiet):
    """Stratified K-fold cross-validation of CONFIG over the training set.

    Each fold is trained and scored as its own run; the mean ± std of the folds' validation
    accuracy is printed and a box plot written. The last line printed is the cv folder.

    \b
      hdr cv configs/cnn_adam.yaml --folds 5 training.epochs=3
      hdr cv configs/cnn_adam.yaml --folds 5 --executor ray --address HEAD:6379
      hdr cv --resume runs/cv/<id>
    """
    from hdr import config as config_mod

    if resume_dir is not None:
        if config or overrides:
            raise UsageError("--resume takes only the cv folder (and executor options); its config is in cv.json")
        info = _load(resume_dir)
        config, overrides, k = info["config"], info["overrides"], info["folds"]
    elif not config:
        raise UsageError("missing CONFIG: give a YAML config file (see configs/) or --resume CV")
    if k < 2:
        raise UsageError(f"--folds {k}: cross-validation needs at least 2 folds (5 is usual)")
    cfg = config_mod.load(config, list(overrides))
    name = Path(config).stem
    if resume_dir is None:
        from hdr import data as data_mod

        data = data_mod.load(cfg.dataset.name, quiet=quiet)
        counts = np.bincount(data.train.y)
        smallest = int(counts[counts > 0].min())
        if k > smallest:
            raise UsageError(f"--folds {k}: the rarest digit has only {smallest} training examples, so some folds "
                             f"would lack it; use at most {smallest} folds")
        folds = stratified_folds(data.train.y, k, cfg.training.seed)
        del data
    else:
        folder = resume_dir
        if config_mod.fingerprint(cfg) != info.get("config_fingerprint", config_mod.fingerprint(cfg)):
            raise UsageError(f"{config} changed since the cross-validation started; resume needs the config it began with")

    executors.check(executor, jobs, address)
    results = {r["fold"]: r for r in info["results"]} if resume_dir is not None else {}
    done = {f for f, r in results.items() if r.get("status") in ("completed", "failed")}
    todo = [f for f in range(1, k + 1) if f not in done]
    ex = None
    if todo:  # before the folder: a cluster that cannot be reached leaves nothing behind
        ex = executors.make(executor, jobs, address, cpus_per_run, gpus_per_run, lambda job, epoch, row: None,
                            len(todo), log=lambda msg: click.echo(msg, err=True))
    try:
        if resume_dir is None:
            folder = rundir.create(runs_dir / "cv", name)
            info = {
                "id": folder.name, "status": "running", "config": config, "config_name": name,
                "overrides": list(overrides), "folds": k, "seed": cfg.training.seed, "dataset": cfg.dataset.name,
                "fold_sizes": [len(f) for f in folds], "config_fingerprint": config_mod.fingerprint(cfg),
                "note": "each fold is the validation set of its run; dataset.validation_split does not apply",
                "started": rundir.now_iso(), "ended": None, "command": rundir.command_line(), "cwd": os.getcwd(),
                "results": [],
            }
        for f in todo:  # a fold stopped before it completed starts again (see fold_job)
            old = _fold_run(folder, f)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
            results.pop(f, None)
        signum = _run_folds(ex, [fold_job(cfg, name, folder, f, k) for f in todo], info, results, folder, k, quiet) \
            if todo else None
    finally:
        if ex is not None:
            ex.close()

    completed = [results[f] for f in sorted(results) if results[f]["status"] == "completed"]
    failed = [f"fold {f}: {results[f].get('error')}" for f in sorted(results) if results[f]["status"] == "failed"]
    if signum is not None:
        info.update(status="interrupted", ended=rundir.now_iso())
        rundir.write_json(folder / "cv.json", info)
        raise Stopped(f"cross-validation stopped: {len(completed)} of {k} folds completed ({folder}/cv.json); "
                      f"finish it with: hdr cv --resume {folder}", signum)
    summary = {key: _stats([r[key] for r in completed]) for key in ("val_accuracy", "test_accuracy")}
    info.update(status="failed" if failed else "completed", ended=rundir.now_iso(), summary=summary,
                std="sample standard deviation over folds (ddof=1)")
    rundir.write_json(folder / "cv.json", info)
    if completed:
        box_plot(summary, folder / "folds.png", f"{k}-fold cross-validation: {name} ({cfg.dataset.name})")
        v, t = summary["val_accuracy"], summary["test_accuracy"]
        click.echo(f"accuracy: mean={100 * v['mean']:.3f}% std={100 * v['std']:.3f}% n={v['n']}")
        click.echo(f"test accuracy: mean={100 * t['mean']:.3f}% std={100 * t['std']:.3f}% n={t['n']}")
    click.echo(str(folder))
    if failed:
        raise HdrError(f"{len(failed)} of {k} folds failed: {'; '.join(failed)} (see {folder}/cv.json)")


def _fold_run(cv_folder: Path, fold: int) -> Path | None:
    """The run folder of a fold that failed or stopped after creating it."""
    for child in cv_folder.iterdir():
        try:
            if rundir.read_json(child / "run.json").get("fold") == fold:
                return child
        except (OSError, ValueError):
            continue
    return None


def _run_folds(ex, jobs, info: dict, results: dict, folder: Path, k: int, quiet: bool) -> int | None:
    def save():
        info["results"] = [results[f] for f in sorted(results)]
        rundir.write_json(folder / "cv.json", info)

    def on_done(job, answer):
        i = job.meta["fold"]
        result = {"fold": i, "val_size": info["fold_sizes"][i - 1], "status": answer["status"]}
        run = Path(answer["run"]) if answer.get("run") else _fold_run(folder, i)
        result["run"] = run.name if run else None
        line = None
        if answer["status"] == "completed":
            m = rundir.read_json(run / "metrics.json")
            result.update(val_accuracy=m["val_accuracy"], best_val_accuracy=m.get("best_val_accuracy"),
                          test_accuracy=m["test_accuracy"])
            click.echo(f"fold {i}/{k}: validation accuracy {100 * m['val_accuracy']:.3f}%, "
                       f"test accuracy {100 * m['test_accuracy']:.3f}% ({run.name})")
        elif answer["status"] != "not run":
            result["error"] = answer["error"]
            line = f"fold {i}/{k}: {answer['status']}: {answer['error']}"
        if answer["status"] in ("completed", "failed"):  # a stopped fold is not a result: resume trains it
            results[i] = result
        save()
        return line, answer["status"] != "completed"

    info.update(status="running", ended=None, **ex.settings())
    save()
    if not quiet:
        click.echo(f"cv {folder.name}: {len(jobs)} of {k} folds to train, {ex.describe()}", err=True)
    pending = iter(jobs)
    return executors.drive(ex, lambda: next(pending, None), on_done, executors.Progress(len(jobs), quiet, "fold"))
