"""hdr ensemble: average the predicted probabilities of several runs and evaluate the average.

The analysis and the evaluation folder are hdr.analysis.evaluate's (analyse, write_folder); this module
adds the checks that the members can be averaged, the members table and the agreement counts."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hdr.core import numbers
from hdr.analysis import evaluate as ev_mod
from hdr.runs import rundir
from hdr.core.errors import UsageError


@dataclass
class Member:
    folder: Path
    info: dict
    cfg: object


# ---------------------------------------------------------------- which runs

def expand(paths) -> list[Path]:
    """Run folders named by the arguments: a run folder, or a sweep/cv/runs folder for its runs.
    Anything else, and a run named twice, is a usage error."""
    from hdr.runs.listing import expand as expand_one

    def refuse(msg):
        raise UsageError(f"{msg} (give run folders such as runs/<id>, or a sweep folder)")

    out, seen = [], {}
    for arg in paths:
        for f in expand_one([arg], refuse):
            f = Path(os.path.normpath(f))  # a sweep names its runs as ../../<id>
            key = f.resolve()
            if key in seen:
                raise UsageError(f"run {f} is given twice (also as {seen[key]}); name each member once")
            seen[key] = arg
            out.append(f)
    return out


def _model_digest(folder: Path) -> str:
    with open(folder / rundir.MODEL, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def drop_copies(folders: list[Path], note) -> list[Path]:
    """The folders less those that are copies of an earlier one (cp -a: the same run id in
    run.json, or the same model.keras), each named in a note: a copy would count one model twice."""
    out, seen = [], {}
    for f in folders:
        info = rundir.read_info(f)
        keys = [("run id", info.get("id"))]
        if (f / rundir.MODEL).is_file():
            keys.append((rundir.MODEL, _model_digest(f)))
        first = next(((what, seen[k]) for what, k in keys if k is not None and k in seen), None)
        if first is not None:
            note(f"leaving out {f}: a copy of {first[1]} (the same {first[0]})")
            continue
        seen.update({k: f for _, k in keys if k is not None})
        out.append(f)
    return out


def load_members(paths, note=lambda msg: None) -> list[Member]:
    from hdr.engine import config as config_mod

    folders = drop_copies([rundir.open_run(f) for f in expand(paths)], note)
    if len(folders) < 2:
        raise UsageError(f"an ensemble needs at least two runs, got {len(folders)}; "
                         "name more runs or a sweep folder (hdr sweep CONFIG --seeds 5)")
    members = []
    for f in folders:
        info = rundir.read_info(f)
        status = rundir.effective_status(info)
        if status != rundir.COMPLETED:
            raise UsageError(f"run {f} is {status}, not completed; finish it (hdr train --resume {f}) "
                             "or leave it out")
        if not (f / rundir.MODEL).is_file():
            raise UsageError(f"run {f} has no model.keras; leave it out")
        members.append(Member(f, info, config_mod.load_run_config(f / rundir.CONFIG)))
    datasets = sorted({m.cfg.dataset.name for m in members})
    if len(datasets) > 1:
        raise UsageError(f"the runs were trained on different datasets ({', '.join(datasets)}); "
                         "ensemble runs of one dataset")
    return members


def val_problem(members: list[Member]) -> str | None:
    """Why the members' validation rows may differ, or None when they are the same rows."""
    if any(m.info.get("fold") is not None for m in members):
        return "some runs are cross-validation folds, which hold out different rows"
    splits = {m.cfg.dataset.validation_split for m in members}
    if splits == {None} or None in splits or 0 in splits:
        return "some runs were trained without a validation split"
    if len(splits) > 1:
        return f"the runs used different dataset.validation_split ({', '.join(map(str, sorted(splits)))})"
    seeds = {m.cfg.training.seed for m in members}
    if len(seeds) > 1:
        return f"the runs used different training.seed ({', '.join(map(str, sorted(seeds)))}), so different rows"
    return None


# ---------------------------------------------------------------- numbers

def agreement(y: np.ndarray, ensemble_pred: np.ndarray, best_pred: np.ndarray) -> dict:
    """Digits the ensemble gets right that the best member gets wrong, and the reverse."""
    ens_ok, best_ok = ensemble_pred == y, best_pred == y
    return {"ensemble_right_best_wrong": int(np.sum(ens_ok & ~best_ok)),
            "best_right_ensemble_wrong": int(np.sum(best_ok & ~ens_ok))}


def members_table(names: list[str], member_probs: list[np.ndarray], y: np.ndarray, split: str) -> list[dict]:
    """Each member's accuracy on the split, from its own probabilities."""
    return [{"run": n, f"{split}_accuracy": float(np.mean(p.argmax(axis=1) == y))}
            for n, p in zip(names, member_probs)]


def gather(members: list[Member], split: str):
    """(Evaluation of the mean probabilities, each member's probabilities)."""
    from hdr.core import data as data_mod

    first = members[0]
    recorded = first.info.get("data_dir")
    data = data_mod.load(first.cfg.dataset.name, quiet=True, recorded_dir=recorded)
    if split == "val":
        index = ev_mod.validation_rows(first.folder, first.cfg, data.train.y)
        x, y = data.train.x[index], data.train.y[index]
    else:
        x, y, index = data.test.x, data.test.y, np.arange(len(data.test.y))
    probs, shapes = [], {}
    for m in members:
        model = rundir.load_model(m.folder)
        shapes[m.folder.name] = tuple(model.input_shape[1:])
        if shapes[m.folder.name] != tuple(x.shape[1:]):
            raise UsageError(f"run {m.folder} takes {shapes[m.folder.name]} inputs but {first.cfg.dataset.name} "
                             f"has {tuple(x.shape[1:])}; ensemble runs with the same input size")
        probs.append(np.asarray(model.predict(x, batch_size=m.cfg.training.eval_batch_size, verbose=0),
                                dtype=np.float64))
    if len({p.shape for p in probs}) > 1:
        raise UsageError("the runs' models give different numbers of classes; ensemble runs of one dataset")
    mean = np.mean(probs, axis=0)
    return ev_mod.Evaluation(first.cfg.dataset.name, split, x, np.asarray(y), mean, index), probs


# ---------------------------------------------------------------- files

def report_md(metrics: dict, cm, classes, pages) -> str:
    m, split = metrics, metrics["split"]
    lines = [f"# Ensemble of {len(m['members'])} runs", "",
             f"Mean of the members' predicted probabilities on the **{m['dataset']} {split} split** "
             f"({m['size']} digits), {m['evaluated']}.", "", "## Members", "",
             ev_mod._md_table(m["members"] + [{"run": "ensemble", f"{split}_accuracy": m[f"{split}_accuracy"]}]), "",
             f"Best member: {m['best_member']}. The ensemble gets {m['ensemble_right_best_wrong']} digits right "
             f"that the best member gets wrong, and {m['best_right_ensemble_wrong']} wrong that it gets right.", "",
             "## Metrics", ""]
    rows = [{"metric": k, "value": numbers.metric(k, m[k])} for k in
            (f"{split}_loss", f"{split}_accuracy", "error_rate", "macro_precision", "macro_recall", "macro_f1")]
    rows.insert(3, {"metric": "errors", "value": f"{m['errors']} of {m['size']}"})
    lines += [ev_mod._md_table(rows, colalign=("left", "right")), ""]
    lines += ["## Confusion matrix", "", f"![confusion matrix]({rundir.EVAL_FILES['confusion_png']})", "",
              f"Rows: true label; columns: predicted label ([{rundir.EVAL_FILES['confusion_csv']}]({rundir.EVAL_FILES['confusion_csv']})).", "",
              "## Per class", "", f"([{rundir.EVAL_FILES['per_class']}]({rundir.EVAL_FILES['per_class']}))", "", ev_mod._md_table(classes), "",
              "## Misclassified digits", "", f"{m['errors']} of {m['size']} digits, the most confident first.", "",
              f"![misclassified page 1]({rundir.EVAL_FILES['misclassified']})", ""]
    if len(pages) > 1:
        lines += ["More pages: " + ", ".join(f"[{i + 2}]({p})" for i, p in enumerate(pages[1:])), ""]
    return "\n".join(lines)


def ensemble(paths, split: str = "test", out: Path | None = None, note=lambda msg: None) -> tuple[Path, dict]:
    """Evaluate the mean of the runs' predictions into a new folder; (the folder, its metrics).
    note: said a line of each run left out (a copy of another)."""
    if out is not None:
        rundir.refuse_run_owned(out)
    members = load_members(paths, note)
    if split == "val":
        why = val_problem(members)
        if why:
            raise UsageError(f"--split val needs every run validated on the same rows, but {why}; use --split test")
    if out is not None and Path(out).exists():
        raise UsageError(f"{out} already exists; choose a new --out folder (hdr ensemble never overwrites)")
    ev, probs = gather(members, split)
    cm, classes, metrics = ev_mod.analyse(ev)
    names = [m.folder.name for m in members]
    table = members_table(names, probs, ev.y, split)
    best = max(range(len(table)), key=lambda i: table[i][f"{split}_accuracy"])  # first of equals
    metrics.update(model_dataset=members[0].cfg.dataset.name, evaluated=rundir.now_iso(),
                   members=table, member_folders=[str(m.folder) for m in members],
                   best_member=names[best], **agreement(ev.y, ev.pred, probs[best].argmax(axis=1)))

    if out is None:
        dest = rundir.create(members[0].folder.parent / rundir.ENSEMBLES, f"{len(members)}runs")
        parent, name = dest.parent, dest.name
        dest.rmdir()  # reserved the unique name; the complete folder is renamed onto it
    else:
        parent, name = Path(out).parent, Path(out).name
        parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{name}.tmp-{os.getpid()}-"))
    try:
        ev_mod.write_folder(tmp, ev, cm, classes, metrics, f"ensemble of {len(members)} on {ev.dataset} {split}",
                            lambda pages: report_md(metrics, cm, classes, pages))
        os.chmod(tmp, rundir.plain_mode(folder=True))
        os.rename(tmp, parent / name)  # fails rather than replace a folder that appeared meanwhile
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return parent / name, metrics


def summary_text(metrics: dict) -> str:
    """Each member's accuracy, then the ensemble's with its agreement counts."""
    key = f"{metrics['split']}_accuracy"
    lines = [f"{row['run']}  {numbers.percent(row[key])}" for row in metrics["members"]]
    lines.append(f"ensemble  {numbers.percent(metrics[key])}  (right where the best member is wrong: "
                 f"{metrics['ensemble_right_best_wrong']}, wrong where it is right: {metrics['best_right_ensemble_wrong']})")
    return "\n".join(lines)
