"""A newcomer's first hour (issue 23): refusals that come before any framework import, a missing
Keras backend, mistakes said where they are with the nearest valid name, hdr evaluate of a folder
of runs, --debug after the command. Each answer one line, exit 2, nothing created."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hdr.engine import config
from hdr.runs import rundir
from tests.conftest import CONFIGS, REPO

BASE = {"dataset": {"name": "mnist"}, "model": {"type": "slp"}, "optimizer": {"name": "sgd"},
        "training": {"epochs": 3}}

# `hdr ARGS...` in a fresh process, then which frameworks it had imported by the time it answered.
PROBE = r"""
import sys
from hdr.cli.main import cli
code = 0
try:
    cli(sys.argv[1:], prog_name="hdr")
except SystemExit as e:
    code = e.code
heavy = [m for m in ("keras", "tensorflow", "jax", "torch") if m in sys.modules]
print(f"PROBE exit={code} imported={','.join(heavy) or '-'}", file=sys.stderr)
"""


def probe(*args, env: dict | None = None, hide: str = "") -> tuple[int, str, str]:
    """(exit code, the one line said, the frameworks imported) of `hdr ARGS` in a subprocess.
    hide: a module made unimportable there (a backend surely missing)."""
    code = (f"import sys; sys.modules[{hide!r}] = None\n" if hide else "") + PROBE
    p = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, cwd=REPO,
                       env={**os.environ, **(env or {})}, timeout=300)
    *said, last = p.stderr.strip().splitlines()
    assert last.startswith("PROBE "), p.stderr[-2000:]
    fields = dict(f.split("=", 1) for f in last.split()[1:])
    assert len(said) <= 1, said  # one line, never a traceback
    return int(fields["exit"]), said[0] if said else "", fields["imported"]


def fake_run(folder: Path, status: str, epochs_done: int = 2, checkpoint: bool = True) -> Path:
    """A run folder as hdr train leaves it (config, run.json, history, a checkpoint), without training."""
    cfg = config.validate(BASE)
    folder.mkdir(parents=True)
    rundir.write(folder, rundir.CONFIG, config.dump(cfg))
    rundir.write_json(folder / rundir.RUN, {"status": status, rundir.EPOCHS_COMPLETED: epochs_done,
                                            "config_fingerprint": config.fingerprint(cfg)})
    rundir.write_history(folder / rundir.HISTORY, [
        {rundir.EPOCH: e, rundir.LOSS: 1.0, rundir.ACCURACY: 0.5, rundir.VAL_LOSS: 1.0, rundir.VAL_ACCURACY: 0.5,
         rundir.LEARNING_RATE: 0.01, rundir.SECONDS: 1.0} for e in range(1, epochs_done + 1)])
    if checkpoint:
        (folder / rundir.CHECKPOINTS).mkdir()
        rundir.checkpoint(folder, epochs_done).write_bytes(b"stands for a checkpoint")
    return folder


# ---------------------------------------------------------------- refusals before any framework import

def test_resuming_a_completed_run_is_refused_before_keras(tmp_path):
    run = fake_run(tmp_path / "done", rundir.COMPLETED, epochs_done=config.validate(BASE).training.epochs)
    code, line, imported = probe("train", "--resume", run)
    assert (code, imported) == (2, "-"), line
    done = config.validate(BASE).training.epochs
    assert line.startswith(f"hdr: error: {run} is already completed ({done} epochs); nothing to resume")


def test_resuming_a_run_in_use_is_refused_before_keras(tmp_path):
    run = fake_run(tmp_path / "busy", rundir.INTERRUPTED)
    fd = os.open(run / rundir.LOCK, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as the process training it holds it
        code, line, imported = probe("train", "--resume", run)
    finally:
        os.close(fd)
    assert (code, imported) == (2, "-"), line
    assert line == f"hdr: error: {run} is in use by another hdr process; wait for it to end (hdr runs shows its status)"


@pytest.mark.parametrize("damage, words", [
    ("edited", "config.yaml was changed after the run started"),
    ("no checkpoint", "has no checkpoint of a completed epoch to resume from"),
])
def test_resume_refusals_read_files_only(tmp_path, damage, words):
    run = fake_run(tmp_path / "run", rundir.INTERRUPTED, checkpoint=damage != "no checkpoint")
    if damage == "edited":
        rundir.write(run, rundir.CONFIG, (run / rundir.CONFIG).read_text().replace("learning_rate: 0.01", "learning_rate: 0.02"))
    before = {p.name for p in run.rglob("*")} - {rundir.LOCK}
    code, line, imported = probe("train", "--resume", run)
    assert (code, imported) == (2, "-") and words in line, line
    assert json.loads((run / rundir.RUN).read_text())["status"] == rundir.INTERRUPTED
    assert {p.name for p in run.rglob("*")} - {rundir.LOCK} == before


@pytest.mark.parametrize("runs_dir, words", [
    ("/proc/nope", "cannot create runs folder /proc/nope: No such file or directory"),
    ("FILE/below", "is not a folder"),
])
def test_an_unusable_runs_dir_is_refused_before_keras_and_leaves_nothing(tmp_path, runs_dir, words):
    (tmp_path / "FILE").write_text("a file")
    runs = runs_dir if runs_dir.startswith("/") else tmp_path / runs_dir
    code, line, imported = probe("train", CONFIGS / "slp_sgd.yaml", "--runs-dir", runs)
    assert (code, imported) == (2, "-") and words in line and "--runs-dir" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["FILE"]


def test_a_runs_dir_to_be_made_is_made_only_by_the_run(tmp_path):
    """The check of a runs folder that does not exist yet leaves no trace of it."""
    from hdr.cli.options import check_runs_dir

    check_runs_dir(tmp_path / "new" / "runs")
    assert list(tmp_path.iterdir()) == []
    read_only = tmp_path / "ro"
    read_only.mkdir(mode=0o500)
    if os.geteuid() != 0:  # root writes anywhere
        with pytest.raises(config.UsageError, match="not writable|Permission denied"):
            check_runs_dir(read_only / "runs")


@pytest.mark.parametrize("override, words", [
    ("model.hidden=[" + ",".join(["1"] * 20_000) + "]", "model.hidden: 20,000 items, more than hdr accepts (at most 100)"),
    ("training.epochs=100000000000000000000", "at most 100,000"),
    ("trainng.epochs=3", "override 'trainng.epochs=3': trainng: unknown key; did you mean training?"),
])
def test_config_refusals_come_before_keras(tmp_path, override, words):
    """A list of 20,000 layers ran past 120 s and 2.2 GB with no output: now a line at validation."""
    code, line, imported = probe("train", CONFIGS / "mlp_adam.yaml", override, "--runs-dir", tmp_path / "runs")
    assert (code, imported) == (2, "-") and words in line, line
    assert len(line) < 400 and not (tmp_path / "runs").exists()


# ---------------------------------------------------------------- the Keras backend

@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_a_missing_backend_is_one_line_saying_how_to_install_it(tmp_path, backend):
    code, line, _ = probe("train", CONFIGS / "slp_sgd.yaml", "--runs-dir", tmp_path / "runs",
                          env={"KERAS_BACKEND": backend}, hide=backend)
    assert code == 2, line
    assert line.startswith(f"hdr: error: KERAS_BACKEND={backend}, but {backend} is not installed"), line
    assert f"-m pip install {backend}" in line and "unset KERAS_BACKEND" in line
    assert not (tmp_path / "runs").exists()


def test_an_unknown_backend_is_one_line(tmp_path):
    code, line, _ = probe("train", CONFIGS / "slp_sgd.yaml", "--runs-dir", tmp_path / "runs",
                          env={"KERAS_BACKEND": "tensorflw"})
    assert code == 2 and line == ("hdr: error: KERAS_BACKEND='tensorflw' is not a backend hdr runs on; use one of "
                                  "tensorflow, jax, torch (unset: tensorflow)"), line


# ---------------------------------------------------------------- where a mistake is, and what was meant

@pytest.mark.parametrize("command, args, words", [
    ("train", ["--epochs", "3"], "No such option '--epochs'; config keys are set as KEY=VALUE after the config: "
                                 "training.epochs=3 (see "),
    ("train", ["--batch-size=64"], "training.batch_size=64"),
    ("train", ["--learning-rate"], "optimizer.learning_rate=VALUE"),
    ("train", ["--dropout", "0.3"], "model.dropout=0.3 or model.conv.N.dropout=0.3"),
    ("sweep", ["--epochs", "2"], "training.epochs=2"),
    ("cv", ["--seed", "7"], "training.seed=7"),
])
def test_an_option_that_is_a_config_key_points_to_the_override(cli_run, command, args, words):
    r = cli_run(command, CONFIGS / "mlp_adam.yaml", *args)
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1
    assert words in r.stderr, r.stderr


def test_an_option_no_key_resembles_gets_no_hint(cli_run):
    for args in (["train", CONFIGS / "mlp_adam.yaml", "--bogus"], ["evaluate", "--epochs", "3", "x"]):
        r = cli_run(*args)
        assert r.exit_code == 2 and "No such option" in r.stderr and "KEY=VALUE" not in r.stderr, r.stderr


def test_an_override_typo_is_blamed_on_the_override(cli_run, tmp_path):
    r = cli_run("train", CONFIGS / "mlp_adam.yaml", "trainng.epochs=3", "--runs-dir", tmp_path / "runs")
    assert r.exit_code == 2 and r.stderr.strip() == (
        "hdr: error: override 'trainng.epochs=3': trainng: unknown key; did you mean training? "
        "(allowed keys: dataset, model, optimizer, training, augment)")


@pytest.mark.parametrize("dist, words", [
    ("log_uniform(1e-4,1e-1)", "unknown distribution log_uniform; did you mean loguniform? "
                               "(loguniform, uniform, int, choice)"),
    ("gaussian(0,1)", "not a distribution; use loguniform(a,b), uniform(a,b), int(a,b[,log]) or choice(v1,v2,...)"),
])
def test_a_misspelt_distribution_is_named(cli_run, tmp_path, dist, words):
    r = cli_run("tune", CONFIGS / "mlp_adam.yaml", f"optimizer.learning_rate={dist}", "--trials", "2",
                "--runs-dir", tmp_path / "runs")
    assert r.exit_code == 2 and r.stderr.strip() == f"hdr: error: optimizer.learning_rate={dist}: {words}"
    assert not (tmp_path / "runs").exists()
    from hdr.orchestration import tune

    with pytest.raises(config.UsageError, match="did you mean loguniform"):
        tune.parse_space({"optimizer.learning_rate": "log_uniform(1e-4,1e-1)"}, [])  # a config's search: block


# ---------------------------------------------------------------- hdr evaluate FOLDER, --debug anywhere

def train_quick(cli_run, runs: Path, *overrides) -> Path:
    r = cli_run("train", CONFIGS / "slp_sgd.yaml", "training.epochs=1", *overrides, "--runs-dir", runs, "-q")
    assert r.exit_code == 0, r.stderr
    return Path(r.stdout.strip().splitlines()[-1])


def test_evaluate_a_folder_of_runs_evaluates_each(cli_run, tiny_data, tmp_path):
    runs = tmp_path / "runs"
    a, b = train_quick(cli_run, runs), train_quick(cli_run, runs, "training.seed=2")
    unfinished = fake_run(runs / "unfinished", rundir.INTERRUPTED)  # no model.keras: named, and left
    r = cli_run("evaluate", runs)
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert [line.split(": ", 1)[0] for line in lines] == [str(a / rundir.EVAL), str(b / rundir.EVAL)]
    assert all("mnist test (100 digits): loss" in line for line in lines)
    assert (a / rundir.EVAL / rundir.METRICS).is_file() and (b / rundir.EVAL / rundir.METRICS).is_file()
    assert f"skipping {unfinished}" in r.stderr and not (unfinished / rundir.EVAL).exists()

    # a sweep folder stands for the runs its sweep.json names
    sweep = tmp_path / "sweeps" / "s1"
    sweep.mkdir(parents=True)
    (sweep / "sweep.json").write_text(json.dumps({"points": [{"label": "b", "run": f"../../runs/{b.name}"}]}))
    r = cli_run("evaluate", sweep, "--split", "val", "-q")
    assert r.exit_code == 0 and r.stdout.strip().splitlines() == [str(b / rundir.eval_name("val"))], r.output


def test_evaluate_a_folder_without_runs_still_says_what_a_run_folder_is(cli_run, tmp_path):
    r = cli_run("evaluate", tmp_path)
    assert r.exit_code == 2 and "not a complete run folder" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_debug_after_the_command_shows_the_traceback(cli_run, tmp_path):
    r = cli_run("evaluate", tmp_path / "nope", "--debug")
    assert r.exit_code == 2 and "Traceback (most recent call last)" in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("hdr: error: run folder not found")
    assert "Traceback" not in cli_run("evaluate", tmp_path / "nope").stderr


def test_every_command_takes_debug_after_it(cli_run):
    from hdr.cli.main import LAZY_COMMANDS

    for name in [*LAZY_COMMANDS, "data describe"]:
        r = cli_run(*name.split(), "--debug", "--help")
        assert r.exit_code == 0, (name, r.output)
