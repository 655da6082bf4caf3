"""The run-folder format has one owner (hdr/runs/rundir.py): no other module spells a run's file
names, and no output path a user gives may write over what a run owns."""

from __future__ import annotations

import ast
import hashlib
import shutil
from pathlib import Path

import pytest

from hdr.runs import rundir
from tests.conftest import REPO, realdata  # noqa: F401

OWNER = REPO / "hdr" / "runs" / "rundir.py"
NAMES = {rundir.CONFIG, rundir.RUN, rundir.HISTORY, rundir.METRICS, rundir.MODEL, rundir.SUMMARY,
         *rundir.CURVES.values(), rundir.LOCK, *rundir.EVAL_FILES.values(), *rundir.EXPORT_FILES.values(),
         rundir.STATUSES, rundir.VAL_ACCURACY, rundir.VAL_LOSS, rundir.TEST_ACCURACY, rundir.TEST_LOSS,
         rundir.BEST_VAL_ACCURACY, rundir.BEST_EPOCH, rundir.TRAIN_SECONDS, rundir.EPOCHS_PLANNED,
         rundir.EPOCHS_COMPLETED} - {rundir.EXPORT_FILES["savedmodel"]}
NAMES = {n for n in NAMES if isinstance(n, str)} | set(rundir.STATUSES)


def literals(path: Path):
    """Every string constant of a module's code, the pieces of f-strings included; docstrings aside."""
    tree = ast.parse(path.read_text())
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
            and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            yield node.lineno, node.value


def test_no_module_but_the_owner_spells_a_run_folder_name_status_or_metric_key():
    found = []
    for path in sorted((REPO / "hdr").rglob("*.py")):
        if path == OWNER:
            continue
        for line, text in literals(path):
            hit = [n for n in NAMES if text == n or (n.endswith((".json", ".csv", ".keras", ".yaml", ".txt", ".png"))
                                                      and n in text and f"/{n}" in f"/{text}")]
            if hit:
                found.append(f"{path.relative_to(REPO)}:{line}: {text!r}")
    assert not found, "\n".join(found)


def digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def run_copy(mnist_mlp_run, tmp_path) -> Path:
    dest = tmp_path / "runs" / mnist_mlp_run.name
    shutil.copytree(mnist_mlp_run, dest)
    return dest


def test_an_output_path_onto_what_a_run_owns_is_refused_and_nothing_is_written(run_copy, cli_run, tmp_path):
    run = run_copy
    other = tmp_path / "runs"
    before = digest(run)
    attempts = [
        ["export", run, "--format", "onnx", "--out", run / rundir.RUN],
        ["export", run, "--format", "onnx", "--out", run / rundir.MODEL],
        ["export", run, "--format", "onnx", "--out", run / rundir.CHECKPOINTS / "x.onnx"],
        ["compare", other, "--out", run],
        ["compare", other, "--out", run / rundir.EVAL],
        ["ensemble", run, run, "--out", run / rundir.EVAL],
        ["data", "describe", "usps", "--out", run / rundir.TENSORBOARD],
        ["predict", run, REPO / "examples" / "seven.png", "--output", run / rundir.METRICS],
        ["predict", run, REPO / "examples" / "seven.png", "--save-preprocessed", run / rundir.EVAL],
    ]
    link = tmp_path / "into-the-run"
    link.symlink_to(run)  # through a symlink, too
    attempts.append(["compare", other, "--out", link / "report"])
    for args in attempts:
        r = cli_run(*args)
        assert r.exit_code == 2, (args, r.output)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and ("belongs to the run" in lines[0] or "the run folder" in lines[0]), (args, r.stderr)
        assert digest(run) == before, args
    r = cli_run("evaluate", run, "-q")  # and the run still evaluates
    assert r.exit_code == 0, r.output
    assert (run / rundir.EVAL / rundir.METRICS).is_file()


def test_exports_own_folder_in_a_run_is_still_allowed(run_copy):
    rundir.refuse_run_owned(run_copy / rundir.EXPORT / "mine.onnx", "--out", allowed=rundir.EXPORT)
    with pytest.raises(rundir.UsageError):
        rundir.refuse_run_owned(run_copy / rundir.EXPORT, "--out", allowed=rundir.EXPORT)
    rundir.refuse_run_owned(run_copy.parent / "elsewhere.onnx")  # beside the run: not the run's
