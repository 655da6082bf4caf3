"""Run labels (hdr train --label, hdr runs --set-label, shown and filtered by hdr runs and hdr
compare), archiving and deleting runs (hdr runs --archive/--delete: asked first, every run checked
before any is touched, nothing outside the runs folder removed), and the epoch's progress bar on a
terminal that reports no size."""

from __future__ import annotations

import json
import os
import pty
import sys
from pathlib import Path

from hdr.runs import rundir
from tests.test_compare import make_run
from tests.test_train_cli import CONFIGS


def names(result) -> list[str]:
    return [line.split()[0] for line in result.stdout.splitlines()[2:]]


def label_of(folder: Path):
    return json.loads((folder / "run.json").read_text()).get("label")


def test_train_records_a_label_and_refuses_a_bad_one(cli_run, tiny_data, tmp_path):
    runs = tmp_path / "runs"
    r = cli_run("train", CONFIGS / "slp_sgd.yaml", "training.epochs=1", "--runs-dir", runs, "-q", "--label", "baseline")
    assert r.exit_code == 0, r.stderr
    assert label_of(Path(r.stdout.strip().splitlines()[-1])) == "baseline"
    for bad in ("two\nlines", "x" * (rundir.MAX_LABEL + 1), "\x1b[31mred"):
        r = cli_run("train", CONFIGS / "slp_sgd.yaml", "--runs-dir", tmp_path / "other", "-q", "--label", bad)
        assert r.exit_code == 2 and "--label" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "other").exists()  # refused before any folder was made


def test_runs_shows_filters_and_sets_labels(cli_run, tmp_path):
    a = make_run(tmp_path, "a", info={"label": "baseline"})
    b = make_run(tmp_path, "b", info={"label": "baseline-wide"})
    c = make_run(tmp_path, "c")
    r = cli_run("runs", tmp_path)
    assert r.stdout.splitlines()[0].split()[-1] == "label" and "baseline-wide" in r.stdout
    assert names(cli_run("runs", tmp_path, "--label", "baseline")) == ["a"]  # exact
    assert names(cli_run("runs", tmp_path, "--label", "base*")) == ["a", "b"]  # a shell pattern
    assert json.loads(cli_run("runs", tmp_path, "--json", "--label", "baseline").stdout)[0]["label"] == "baseline"
    assert "no runs" in cli_run("runs", tmp_path, "--label", "nope").stdout

    r = cli_run("runs", "--set-label", "mine", c, a)
    assert r.exit_code == 0, r.stderr
    assert label_of(c) == "mine" and label_of(a) == "mine"
    assert cli_run("runs", "--set-label", "", a).exit_code == 0 and label_of(a) is None
    r = cli_run("runs", "--set-label", "a\tb", b)
    assert r.exit_code == 2 and label_of(b) == "baseline-wide"
    # a run in training rewrites its run.json: its label waits; nothing of the others changed either
    with rundir.owned(b):
        r = cli_run("runs", "--set-label", "late", c, b)
    assert r.exit_code == 2 and "training" in r.stderr and label_of(c) == "mine"


def test_compare_shows_and_filters_labels(cli_run, tmp_path):
    make_run(tmp_path, "a", overrides={"optimizer.learning_rate": 0.1}, info={"label": "fast"})
    make_run(tmp_path, "b", overrides={"optimizer.learning_rate": 0.01}, info={"label": "slow"})
    make_run(tmp_path, "c", overrides={"optimizer.learning_rate": 0.001})
    r = cli_run("compare", tmp_path)
    assert r.exit_code == 0, r.stderr
    assert "label" in r.stdout.splitlines()[0] and "fast" in r.stdout and "slow" in r.stdout
    r = cli_run("compare", tmp_path, "--label", "fast", "--label", "sl*", "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert sorted(x["run"] for x in doc["runs"]) == ["a", "b"]
    assert {x["run_label"] for x in doc["runs"]} == {"fast", "slow"}
    r = cli_run("compare", tmp_path, "--label", "none")
    assert r.exit_code == 2 and "labelled none" in r.stderr


def test_archive_asks_moves_and_hides_the_run(cli_run, tmp_path):
    a = make_run(tmp_path, "a")
    make_run(tmp_path, "b")
    r = cli_run("runs", "--archive", a, input="n\n")
    assert r.exit_code == 1 and a.is_dir() and str(a) in r.stderr  # the prompt lists what goes
    r = cli_run("runs", "--archive", a, input="y\n")
    assert r.exit_code == 0, r.stderr
    assert not a.exists() and (tmp_path / "archive" / "a" / "run.json").is_file()
    assert names(cli_run("runs", tmp_path)) == ["b"]
    assert names(cli_run("runs", tmp_path, "--all")) == ["b"]
    assert names(cli_run("runs", tmp_path / "archive")) == ["a"]
    r = cli_run("runs", "--archive", "--yes", tmp_path / "archive" / "a")
    assert r.exit_code == 2 and "archived already" in r.stderr


def test_delete_removes_only_the_run_and_refuses_what_is_not_one(cli_run, tmp_path):
    runs = tmp_path / "runs"
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    a = make_run(runs, "a")
    (a / "tensorboard").symlink_to(outside)  # a link inside the run: removed, never followed
    b = make_run(runs, "b")
    (runs / "link").symlink_to(b)
    (runs / "notes").mkdir()
    for target, why in ((runs / "link", "symbolic link"), (runs / "notes", "not a run folder"),
                        (runs / "gone", "no such folder"), (outside, "not a run folder")):
        r = cli_run("runs", "--delete", "--yes", a, target)
        assert r.exit_code == 2 and why in r.stderr, r.stderr
        assert a.is_dir()  # every run is checked before any goes
    with rundir.owned(b):
        r = cli_run("runs", "--delete", "--yes", a, b)
    assert r.exit_code == 2 and "training" in r.stderr and a.is_dir() and b.is_dir()

    r = cli_run("runs", "--delete", "--yes", a)
    assert r.exit_code == 0, r.stderr
    assert not a.exists() and (outside / "keep.txt").read_text() == "mine" and b.is_dir()
    assert sorted(p.name for p in runs.iterdir()) == ["b", "link", "notes"]  # no trash left behind


def test_delete_leaves_no_half_run_when_the_removal_fails(cli_run, tmp_path, monkeypatch):
    import shutil

    a = make_run(tmp_path, "a")
    make_run(tmp_path, "b")
    real = shutil.rmtree

    def failing(path, ignore_errors=False, **kw):  # a removal that stops half-way: the files go, not the folders
        for p in Path(path).rglob("*"):
            if p.is_file():
                p.unlink()

    monkeypatch.setattr(shutil, "rmtree", failing)
    r = cli_run("runs", "--delete", "--yes", a)
    monkeypatch.setattr(shutil, "rmtree", real)
    assert r.exit_code == 0 and not a.exists()
    assert names(cli_run("runs", tmp_path, "--all")) == ["b"]  # the remains are in the trash, not listed
    assert cli_run("runs", "--delete", "--yes", tmp_path / "b").exit_code == 0
    assert not (tmp_path / rundir.TRASH).exists()  # the next delete takes the remains too


def test_runs_refuses_mixed_actions_and_several_dirs(cli_run, tmp_path):
    a = make_run(tmp_path, "a")
    for args, what in ((["--archive", "--delete", a], "cannot be combined"), (["--delete"], "needs the run folders"),
                       (["--delete", "--json", a], "--json"), ([tmp_path, a], "one DIR"), (["--yes", tmp_path], "--yes")):
        r = cli_run("runs", *args)
        assert r.exit_code == 2 and what in r.stderr, (args, r.stderr)
    assert a.is_dir()


def test_the_progress_bar_shows_on_a_terminal_that_reports_no_size(tmp_path):
    # pty.openpty() gives a window of 0x0, as script(1) run outside a terminal and some consoles do:
    # tqdm then drew nothing
    code = ("import sys, time; from hdr.engine.train import _progress; "
            "b = _progress(4, 1, 2, False); b.update(2); b.refresh(); b.close()")
    main, child = pty.openpty()
    pid = os.fork()
    if pid == 0:
        os.dup2(child, 2)
        os.execv(sys.executable, [sys.executable, "-c", code])
    os.close(child)
    out = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.waitpid(pid, 0)
    assert b"epoch 1/2" in out and b"2/4" in out, out
