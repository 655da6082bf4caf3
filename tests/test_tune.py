"""hdr tune: distributions and their checks, and a real search on tiny data: eight trials with a
median pruner, stopped by a real SIGINT to a real `hdr tune` process and resumed, whose best.yaml
trains to the value the search recorded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hdr.orchestration import tune
from hdr.core.errors import UsageError
from tests.conftest import CONFIGS, REPO

SLP = CONFIGS / "slp_sgd.yaml"


def test_distributions_parse_and_print_back():
    d = tune.parse_dist("optimizer.learning_rate", "loguniform(1e-4, 1e-1)")
    assert (d.kind, d.low, d.high) == ("loguniform", 1e-4, 0.1) and d.text() == "loguniform(0.0001,0.1)"
    assert tune.parse_dist(d.key, d.text()) == d
    i = tune.parse_dist("training.batch_size", "int(32,512,log)")
    assert (i.low, i.high, i.log) == (32, 512, True) and i.text() == "int(32,512,log)"
    c = tune.parse_dist("model.hidden", "choice([64],[128, 128])")
    assert c.choices == ("[64]", "[128, 128]")
    assert tune.parse_dist("model.dropout", "uniform(0,0.5)").corners() == ["0.0", "0.5"]


@pytest.mark.parametrize("text, message", [
    ("loguniform(0,1)", "above 0"), ("uniform(1,1)", "below the high end"), ("int(1.5,4)", "not an integer"),
    ("uniform(1)", "low and a high end"), ("choice()", "values separated"), ("choice(a,a)", "listed twice"),
    ("uniform(a,b)", "not a number"), ("normal(0,1)", "not a distribution"),
])
def test_bad_distributions_are_usage_errors(text, message):
    with pytest.raises(UsageError, match=message):
        tune.parse_dist("k", text)


def test_numbers_go_back_as_yaml_numbers():
    import yaml

    for v in (1e-05, 0.1, 3e20, 2, 0.000123456):
        assert yaml.safe_load(tune.yaml_value(v)) == v


def test_grid_cuts_ranges_into_about_the_budget():
    space = {"a": tune.parse_dist("a", "loguniform(1e-4,1e-1)"), "b": tune.parse_dist("b", "choice(sgd,adam)")}
    grid = tune.grid_space(space, 8)
    assert grid["b"] == ["sgd", "adam"] and len(grid["a"]) == 4
    assert grid["a"][0] == pytest.approx(1e-4) and grid["a"][-1] == pytest.approx(0.1)


@pytest.mark.parametrize("config, args, message", [
    ("slp_sgd", ["optimizer.learnin_rate=loguniform(1e-4,1e-1)"], "learnin_rate"),
    ("slp_sgd", ["optimizer.learning_rate=uniform(-1,1)"], "optimizer.learning_rate=-1.0"),
    ("mlp_sgd", ["model.hidden=choice([64],[0])"], "model.hidden=[0]"),
    ("slp_sgd", ["optimizer.learning_rate=loguniform(1e-4,1e-1)", "dataset.validation_split=null"],
     "validation_split"),
    ("slp_sgd", [], "nothing to search"),
    ("slp_sgd", ["optimizer.learning_rate=loguniform(1e-4,1e-1)", "--storage", "nosuchdb://x"], "--storage"),
])
def test_a_wrong_search_is_one_line_exit_2_and_creates_nothing(cli_run, tmp_path, config, args, message):
    r = cli_run("tune", CONFIGS / f"{config}.yaml", *args, "--runs-dir", tmp_path / "runs")
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("hdr: error: ") and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert message in r.stderr
    assert not (tmp_path / "runs").exists()


def test_search_block_in_the_config_is_checked_too(cli_run, tmp_path):
    config = tmp_path / "search.yaml"
    config.write_text(SLP.read_text() + "\nsearch:\n  optimizer.momentum: uniform(0, 1.5)\n")
    r = cli_run("tune", config, "--runs-dir", tmp_path / "runs")
    assert r.exit_code == 2 and "optimizer.momentum=1.5" in r.stderr, r.output
    assert not (tmp_path / "runs").exists()


def test_help_compare_and_runs_import_neither_optuna_nor_ray(tmp_path):
    probe = ("import sys\nfrom hdr.cli.main import cli\ntry:\n    cli.main(args=sys.argv[1:], prog_name='hdr')\n"
             "except SystemExit:\n    pass\nprint('HEAVY', sorted(m for m in ('optuna', 'ray') if m in sys.modules))")
    (tmp_path / "runs").mkdir()
    for args in (["--help"], ["tune", "--help"], ["runs", str(tmp_path / "runs")],
                 ["compare", str(tmp_path / "runs")]):
        out = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, cwd=REPO,
                             timeout=120)
        assert "HEAVY []" in out.stdout, (args, out.stdout[-500:], out.stderr[-500:])


def _study(folder: Path):
    import optuna

    info = json.loads((folder / "tune.json").read_text())
    return optuna.load_study(study_name=info["study"], storage=info["storage"])


def test_tune_prunes_resumes_after_sigint_and_best_yaml_trains_to_the_recorded_value(cli_run, make_tiny_data,
                                                                                     tmp_path):
    import optuna

    make_tiny_data(mnist=(300, 100), usps=None, style="bars")
    runs = tmp_path / "runs"
    args = [str(SLP), "optimizer.learning_rate=loguniform(1e-4,1)", "training.epochs=4", "training.batch_size=64",
            "--trials", "8", "--startup-trials", "2", "--pruner", "median"]
    proc = subprocess.Popen([sys.executable, "-m", "hdr", "tune", *args, "--runs-dir", str(runs)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=dict(os.environ))
    try:
        # Stop it while a trial trains, after two trials have finished.
        deadline = time.time() + 300
        while time.time() < deadline:
            infos = []
            for p in runs.glob("tune/*/*/run.json"):
                try:
                    infos.append(json.loads(p.read_text()))
                except ValueError:
                    continue
            ended = [i for i in infos if i["status"] != "running"]
            if len(ended) >= 2 and any(i["status"] == "running" and i["epochs_completed"] >= 1 for i in infos):
                break
            time.sleep(0.05)
        else:
            pytest.fail("the search never got two trials done and a third under way")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-3000:]
    assert "continue with: hdr tune --resume" in err.strip().splitlines()[-1]
    folder = Path(out.strip().splitlines()[-1])
    stopped = _study(folder)
    running = [t for t in stopped.trials if t.state == optuna.trial.TrialState.RUNNING]
    assert len(running) == 1 and len(stopped.trials) < 8
    interrupted = [json.loads(p.read_text()) for p in folder.glob("*/run.json")]
    interrupted = [i for i in interrupted if i["status"] == "interrupted"]
    assert len(interrupted) == 1 and interrupted[0]["trial"] == running[0].number
    assert interrupted[0]["epochs_completed"] >= 1

    r = cli_run("tune", "--resume", folder, "-q")
    assert r.exit_code == 0, r.output
    study = _study(folder)
    states = [t.state for t in study.trials]
    assert len(states) == 8 and optuna.trial.TrialState.RUNNING not in states
    # The resumed search went on with the sampler's proposals, not from its start again.
    rates = [t.params["optimizer.learning_rate"] for t in study.trials]
    assert len(set(rates)) == 8, rates
    assert states.count(optuna.trial.TrialState.PRUNED) >= 1 and optuna.trial.TrialState.COMPLETE in states
    # Every trial is one run folder, tagged with the study and its number; none ran twice.
    infos = [json.loads(p.read_text()) for p in folder.glob("*/run.json")]
    assert sorted(i["trial"] for i in infos) == list(range(8))
    assert {i["study"] for i in infos} == {folder.name}
    for i in infos:
        t = study.trials[i["trial"]]
        assert i["status"] == {"COMPLETE": "completed", "PRUNED": "pruned"}[t.state.name]
    resumed = next(i for i in infos if i["trial"] == running[0].number)
    assert resumed["resumed"][0]["at_epoch"] == interrupted[0]["epochs_completed"]  # resumed, not restarted
    listed = cli_run("runs", folder, "--status", "pruned")
    assert listed.exit_code == 0 and listed.stdout.count("pruned") == states.count(optuna.trial.TrialState.PRUNED)

    for name in ("best.yaml", "trials.csv", "trials.md", "history.png", "importance.png", "study.db"):
        assert (folder / name).is_file(), name
    assert "test" not in (folder / "trials.md").read_text()  # chosen on validation: no test column
    assert r.stdout.count("test accuracy of the best trial (reported once, not used to choose)") == 1
    best = study.best_trial
    again = cli_run("train", folder / "best.yaml", "--runs-dir", tmp_path / "again", "-q")
    assert again.exit_code == 0, again.output
    metrics = json.loads((Path(again.stdout.strip().splitlines()[-1]) / "metrics.json").read_text())
    assert metrics["best_val_accuracy"] == best.value


def test_grid_sampler_tries_each_point_once_and_stops(cli_run, make_tiny_data, tmp_path):
    make_tiny_data(mnist=(300, 100), usps=None)
    r = cli_run("tune", SLP, "optimizer.learning_rate=choice(0.05,0.5)", "training.epochs=1", "--sampler", "grid",
                "--trials", "5", "--jobs", "2", "--runs-dir", tmp_path, "-q")
    assert r.exit_code == 0, r.output
    study = _study(Path(r.stdout.strip().splitlines()[-1]))
    assert sorted(t.params["optimizer.learning_rate"] for t in study.trials) == ["0.05", "0.5"]
    assert all(t.state.name == "COMPLETE" for t in study.trials)
