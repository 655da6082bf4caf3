"""Run folders with odd contents, as other tools, copies and people leave them: a field hdr never
writes (a 401-digit accuracy, "high", NaN, a negative count) skips that run, named with the field;
a long history is read in one pass and epochs past the run's plan are damage; a read-only run
folder is one line; a symlinked tensorboard/ or eval/ is never written through; a folder without
run.json is named; a cp -a copy of a run is neither a second ensemble member nor the original's
MLflow run."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hdr.runs import rundir
from hdr.runs.rundir import write_history, write_json
from tests.conftest import CONFIGS, run_cli, use_data_dir, write_tiny_data
from tests.test_compare import make_run
from tests.test_recipes import _train

USPS_SLP = [CONFIGS / "slp_sgd.yaml", "dataset.name=usps", "training.batch_size=32", "training.epochs=2"]


def warnings_of(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def edit_json(path: Path, **fields) -> None:
    write_json(path, {**json.loads(path.read_text()), **fields})


def digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------ fields out of range

HISTORY = [{"epoch": 1, "loss": 0.5, "accuracy": 0.8, "val_loss": 0.4, "val_accuracy": 0.85, "learning_rate": 0.01,
            "seconds": 1.0}]
DAMAGE = {
    "accuracy of 401 digits": (rundir.METRICS, {"test_accuracy": 10 ** 400}, "test_accuracy"),
    "accuracy in words": (rundir.METRICS, {"val_accuracy": "high"}, "val_accuracy"),
    "accuracy above 1": (rundir.METRICS, {"best_val_accuracy": 1.5}, "best_val_accuracy"),
    "accuracy a flag": (rundir.METRICS, {"test_accuracy": True}, "test_accuracy"),
    "negative loss": (rundir.METRICS, {"test_loss": -0.5}, "test_loss"),
    "NaN loss": (rundir.METRICS, {"test_loss": float("nan")}, "test_loss"),
    "infinite time": (rundir.METRICS, {"train_seconds": float("inf")}, "train_seconds"),
    "half a parameter": (rundir.METRICS, {"params": 12.5}, "params"),
    "unknown status": (rundir.RUN, {"status": "done"}, "status"),
    "no status": (rundir.RUN, {"status": None}, "status"),
    "negative epochs": (rundir.RUN, {"epochs_completed": -1}, "epochs_completed"),
    "epochs in words": (rundir.RUN, {"epochs_planned": "ten"}, "epochs_planned"),
    "runtime a list": (rundir.RUN, {"runtime": ["keras"]}, "runtime"),
    "history accuracy above 1": (rundir.HISTORY, [{**HISTORY[0], "val_accuracy": 1.5}], "val_accuracy"),
    "history NaN loss": (rundir.HISTORY, [{**HISTORY[0], "loss": float("nan")}], "loss"),
    "history negative seconds": (rundir.HISTORY, [{**HISTORY[0], "seconds": -1.0}], "seconds"),
    "history epoch 0": (rundir.HISTORY, [{**HISTORY[0], "epoch": 0}], "epoch"),
    "history epoch twice": (rundir.HISTORY, [HISTORY[0], HISTORY[0]], "epoch 1 after epoch 1"),
    "history not text": (rundir.HISTORY, b"epoch,loss\n1,\xff\xfe\n", "codec"),
    "history field past csv's limit": (rundir.HISTORY, b"epoch,loss\n1," + b"9" * 200_000 + b"\n", "field limit"),
    "a key that drives the terminal": (rundir.METRICS, {"\x1b[2Jtest_accuracy": 2}, "\\u001b[2Jtest_accuracy"),
}


def damage(folder: Path, name: str, change) -> None:
    if isinstance(change, bytes):
        (folder / name).write_bytes(change)
    elif name == rundir.HISTORY:
        write_history(folder / name, change)
    else:
        edit_json(folder / name, **change)


@pytest.mark.parametrize("case", list(DAMAGE), ids=list(DAMAGE))
def test_a_field_out_of_range_skips_that_run_named_with_the_field(cli_run, tmp_path, case):
    name, change, field = DAMAGE[case]
    make_run(tmp_path, "a-good")
    damage(make_run(tmp_path, "b-bad"), name, change)
    for args in (("runs", tmp_path), ("runs", tmp_path, "--json"), ("compare", tmp_path)):
        r = cli_run(*args)
        assert r.exit_code == 0, (args, r.output)
        assert "a-good" in r.stdout and "b-bad" not in r.stdout, (args, r.stdout)
        lines = warnings_of(r)
        assert len(lines) == 1, (args, lines)
        assert lines[0].startswith("hdr: warning: skipping") and "b-bad" in lines[0], lines
        assert name in lines[0] and field in lines[0] and "\x1b" not in r.output, lines


@pytest.mark.parametrize("command", ["evaluate", "track"])
def test_a_damaged_field_refuses_the_run_named_in_one_line(cli_run, tmp_path, command):
    bad = make_run(tmp_path, "bad")
    edit_json(bad / rundir.METRICS, test_accuracy=10 ** 400)
    r = cli_run(command, bad, *(["--uri", f"sqlite:///{tmp_path / 'mlflow.db'}"] if command == "track" else []))
    lines = warnings_of(r)
    assert r.exit_code == 2 and len(lines) == 1, r.output
    assert "test_accuracy" in lines[0] and str(bad / rundir.METRICS) in lines[0], lines
    assert not (tmp_path / "mlflow.db").exists()


# ------------------------------------------------------------------------------ a long history

def long_history(folder: Path, n: int, best_epoch: int) -> None:
    with open(folder / rundir.HISTORY, "w") as f:
        f.write(",".join(rundir.HISTORY_FIELDS) + "\n")
        for e in range(1, n + 1):
            f.write(f"{e},0.3,0.9,0.35,{0.99 if e == best_epoch else 0.5},0.01,0.5\n")


def test_a_long_history_is_read_in_one_pass_and_epochs_past_the_plan_are_damage(cli_run, tmp_path):
    n = 200_000
    ok = make_run(tmp_path, "a-long", val_acc=(0.5,))
    long_history(ok, n, best_epoch=123_457)
    edit_json(ok / rundir.RUN, epochs_planned=n, epochs_completed=n)
    over = make_run(tmp_path, "b-over", overrides={"training.epochs": 1}, val_acc=(0.5,))
    long_history(over, n, best_epoch=7)
    extended = make_run(tmp_path, "c-extended", val_acc=(0.5, 0.6, 0.7, 0.8, 0.9))  # training.epochs raised on resume
    edit_json(extended / rundir.RUN, epochs_planned=3, epochs_completed=5)

    r = cli_run("runs", tmp_path, "--json")
    assert r.exit_code == 0, r.output
    runs = {x["id"]: x for x in json.loads(r.stdout)}
    assert set(runs) == {"a-long", "c-extended"}
    assert runs["a-long"]["best_epoch"] == 123_457 and runs["a-long"]["best_val_accuracy"] == 0.99
    assert runs["a-long"]["epochs_completed"] == n
    assert runs["c-extended"]["epochs_completed"] == 5
    lines = warnings_of(r)
    assert len(lines) == 1 and "b-over" in lines[0] and rundir.HISTORY in lines[0], lines
    assert "line 3: epoch 2 is beyond the 1 epochs" in lines[0], lines

    r = cli_run("compare", over)
    assert r.exit_code == 2 and "epoch 2 is beyond the 1 epochs" in r.stderr, r.output


# ------------------------------------------------------------------------------ folders without run.json

def test_a_folder_with_a_runs_files_but_no_run_json_is_named(cli_run, tmp_path):
    make_run(tmp_path, "a-good")
    lost = make_run(tmp_path, "b-lost")
    (lost / rundir.RUN).unlink()
    (tmp_path / "sweeps" / "s1").mkdir(parents=True)  # folders that are no runs: not named
    (tmp_path / "notes").mkdir()
    for args in (("runs", tmp_path), ("compare", tmp_path)):
        r = cli_run(*args)
        assert r.exit_code == 0, r.output
        lines = warnings_of(r)
        assert len(lines) == 1 and "b-lost" in lines[0] and f"no {rundir.RUN}" in lines[0], (args, lines)
    r = cli_run("runs", tmp_path, "--all", "--json")
    statuses = {x["id"]: x["status"] for x in json.loads(r.stdout)}
    assert statuses == {"a-good": "completed", "b-lost": "damaged", "notes": "not a run", "sweeps": "not a run"}


# ------------------------------------------------------------------------------ trained runs

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two runs on tiny USPS (seeds 1 and 2, 2 epochs), the first with TensorBoard logging."""
    root = tmp_path_factory.mktemp("hostile")
    with pytest.MonkeyPatch.context() as mp:
        use_data_dir(mp, write_tiny_data(root / "data", mnist=None))
        mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        a = _train(run_cli, root / "a", *USPS_SLP, "training.seed=1", "training.tensorboard=true")
        b = _train(run_cli, root / "b", *USPS_SLP, "training.seed=2")
        yield {"a": a, "b": b}


def cp_a(src: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", str(src), str(dest)], check=True)
    return dest


@pytest.fixture
def read_only(tmp_path):
    """mount(folder) -> the folder, bind-mounted read-only (EROFS) at a new path. Needs root (CI
    runs as root), for whom permission bits alone make nothing read-only; skipped elsewhere."""
    mounted = []

    def mount(folder: Path) -> Path:
        if os.geteuid() != 0:
            pytest.skip("a read-only bind mount needs root")
        mnt = tmp_path / f"ro-{len(mounted)}" / folder.name
        mnt.mkdir(parents=True)
        if subprocess.run(["mount", "--bind", str(folder), str(mnt)]).returncode != 0:
            pytest.skip("cannot bind-mount here")
        mounted.append(mnt)
        if subprocess.run(["mount", "-o", "remount,bind,ro", str(mnt)]).returncode != 0:
            pytest.skip("cannot remount read-only here")
        return mnt

    yield mount
    for mnt in reversed(mounted):
        subprocess.run(["umount", "-l", str(mnt)])


def test_a_read_only_run_folder_is_one_line(trained, read_only, tmp_path):
    run = read_only(cp_a(trained["a"], tmp_path / "runs" / trained["a"].name))
    before = digest(run)
    db = tmp_path / "mlflow.db"
    for args in (("evaluate", run), ("track", run, "--uri", f"sqlite:///{db}")):
        r = run_cli(*args)
        lines = warnings_of(r)
        assert r.exit_code == 2 and len(lines) == 1, (args, r.output)
        assert str(run) in lines[0] and "cannot be written" in lines[0] and "writable" in lines[0], lines
    assert digest(run) == before and not db.exists()


def test_links_out_of_a_run_are_replaced_never_written_through(trained, tmp_path):
    run = cp_a(trained["a"], tmp_path / "runs" / trained["a"].name)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.move(run / rundir.TENSORBOARD, outside / rundir.TENSORBOARD)
    (run / rundir.TENSORBOARD).symlink_to(outside / rundir.TENSORBOARD)
    (outside / "evaluations").mkdir()
    (outside / "evaluations" / "keep.txt").write_text("not the run's")
    (run / rundir.EVAL).symlink_to(outside / "evaluations")
    before = digest(outside)

    r = run_cli("evaluate", run, "-q")
    assert r.exit_code == 0, r.output
    assert digest(outside) == before
    for name in (rundir.TENSORBOARD, rundir.EVAL):
        assert (run / name).is_dir() and not (run / name).is_symlink(), name
    assert list((run / rundir.TENSORBOARD / rundir.EVAL).glob("*tfevents*"))
    assert list((run / rundir.TENSORBOARD / "train").glob("*tfevents*"))
    assert not [p.name for p in run.iterdir() if p.name.startswith(".") and p.name != rundir.LOCK]


def test_a_copy_of_a_run_is_not_a_second_ensemble_member(trained, tmp_path):
    a, b = trained["a"], trained["b"]
    copy = cp_a(a, tmp_path / "copies" / a.name)  # the same name elsewhere, as a backup is
    renamed = cp_a(a, tmp_path / "copies" / "renamed")
    r = run_cli("ensemble", a, b, copy, renamed, "--out", tmp_path / "ens")
    assert r.exit_code == 0, r.output
    members = [m["run"] for m in json.loads((tmp_path / "ens" / rundir.METRICS).read_text())["members"]]
    assert members == [a.name, b.name]
    notes = warnings_of(r)
    assert len(notes) == 2 and all(n.startswith("hdr: note: leaving out") for n in notes), notes
    assert str(copy) in notes[0] and str(renamed) in notes[1] and all(f"a copy of {a}" in n for n in notes), notes


def test_tracking_a_copy_makes_its_own_mlflow_run(trained, tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    original = cp_a(trained["b"], tmp_path / "runs" / trained["b"].name)
    r = run_cli("track", original, "--uri", uri)
    assert r.exit_code == 0 and "(new)" in r.stdout, r.output
    first = rundir.read_info(original)["mlflow"][uri]["run_id"]
    client = MlflowClient(tracking_uri=uri)
    tags_before = client.get_run(first).data.tags

    copy = cp_a(original, tmp_path / "runs" / "copy")
    r = run_cli("track", copy, "--uri", uri)
    assert r.exit_code == 0 and "(new)" in r.stdout, r.output
    assert f"names MLflow run {first} of {original.resolve()}" in r.stderr and "copy" in r.stderr, r.stderr
    second = rundir.read_info(copy)["mlflow"][uri]["run_id"]
    assert second != first and rundir.read_info(original)["mlflow"][uri]["run_id"] == first
    assert client.get_run(first).data.tags == tags_before  # the original's MLflow run is untouched
    assert client.get_run(second).data.tags["hdr.folder"] == str(copy.absolute())

    for folder, run_id in ((original, first), (copy, second)):  # each updates its own
        r = run_cli("track", folder, "--uri", uri)
        assert r.exit_code == 0 and f"MLflow run {run_id} (updated)" in r.stdout and "copy" not in r.stderr, r.output
    moved = tmp_path / "moved" / original.name
    moved.parent.mkdir()
    original.rename(moved)  # a run moved keeps its MLflow run
    r = run_cli("track", moved, "--uri", uri)
    assert r.exit_code == 0 and f"MLflow run {first} (updated)" in r.stdout, r.output


def test_track_skips_a_damaged_run_of_a_folder_and_names_it(trained, tmp_path):
    pytest.importorskip("mlflow")
    runs = tmp_path / "runs"
    good = cp_a(trained["b"], runs / "a-good")
    bad = cp_a(trained["b"], runs / "b-bad")
    write_json(bad / rundir.RUN, {**rundir.read_info(bad), "id": "b-bad"})
    edit_json(bad / rundir.METRICS, test_loss=-1)
    r = run_cli("track", runs, "--uri", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert r.exit_code == 0, r.output
    assert str(good) in r.stdout and str(bad) not in r.stdout, r.stdout
    lines = warnings_of(r)
    assert len(lines) == 1 and str(bad) in lines[0] and "test_loss" in lines[0], lines


def test_compare_takes_a_runtime_of_any_json(cli_run, tmp_path):
    make_run(tmp_path, "a", runtime={"keras": "3.0", "backend": "tensorflow"})
    make_run(tmp_path, "b", runtime={"keras": ["3", "1"], "backend": "tensorflow"})  # written by another tool
    r = cli_run("compare", tmp_path)
    assert r.exit_code == 0 and "fairness" in r.stdout and "keras (3.0, ['3', '1'])" in r.stdout.replace("\n", " "), r.output
