"""`hdr track` (hdr/apps/track.py) against a real MLflow tracking server on 127.0.0.1 and against the
default local SQLite store, read back through MLflow's client and compared with the run folders."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from hdr.runs import rundir
from hdr.runs.listing import flatten
from tests.conftest import CONFIGS, run_cli, use_data_dir, write_tiny_data
from tests.test_recipes import _train

pytest.importorskip("mlflow")
USPS_SLP = [CONFIGS / "slp_sgd.yaml", "dataset.name=usps", "training.batch_size=32"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs on tiny USPS, trained once for the module: `done` (2 epochs, evaluated) and `cut`
    (stopped after epoch 1 of 2: interrupted)."""
    root = tmp_path_factory.mktemp("track")
    with pytest.MonkeyPatch.context() as mp:
        use_data_dir(mp, write_tiny_data(root / "data", mnist=None))
        mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        done = _train(run_cli, root / "runs" / "a", *USPS_SLP, "training.epochs=2")
        assert run_cli("evaluate", done, "-q").exit_code == 0
        cut = _train(run_cli, root / "runs" / "b", *USPS_SLP, "training.epochs=2", stop_after=1)
        yield {"done": done, "cut": cut, "root": root, "mp": mp}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`mlflow server` on a free port of 127.0.0.1 with a SQLite backend, artifacts served by it."""
    root = tmp_path_factory.mktemp("mlflow-server")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = Path(sys.executable).parent / "mlflow"
    proc = subprocess.Popen([str(exe), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                             "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
                             "--artifacts-destination", str(root / "artifacts")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    try:
        while True:
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            try:
                urllib.request.urlopen(f"{uri}/health", timeout=5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "mlflow server did not answer within 180 s"
                time.sleep(0.5)
        yield uri
    finally:
        os.killpg(proc.pid, signal.SIGKILL)   # the server and its workers: their own process group
        proc.wait(30)


def client(uri):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def mlflow_runs(uri, experiment):
    c = client(uri)
    exp = c.get_experiment_by_name(experiment)
    return {r.data.tags["hdr.run"]: r for r in c.search_runs([exp.experiment_id])} if exp else {}


def assert_run_equals_folder(uri, run, folder, status):
    c = client(uri)
    assert run.info.status == status and run.info.run_name == folder.name
    config = flatten(yaml.safe_load((folder / "config.yaml").read_text()))
    assert set(run.data.params) == set(config)
    assert run.data.params["optimizer.learning_rate"] == "0.01" and run.data.params["dataset.name"] == "usps"
    history = rundir.read_history(folder / "history.csv")
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"):
        points = sorted((m.step, m.value) for m in c.get_metric_history(run.info.run_id, key))
        assert points == [(r["epoch"], r[key]) for r in history], key   # each epoch once
    names = {a.path for a in c.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "history.csv", "run.json"} <= names
    if status == "FINISHED":
        m = rundir.read_json(folder / "metrics.json")
        assert run.data.metrics["test_accuracy"] == m["test_accuracy"]
        assert run.data.metrics["eval/test_accuracy"] == rundir.read_json(folder / "eval" / "metrics.json")["test_accuracy"]
        assert {"accuracy.png", "loss.png", "model", "eval"} <= names
        assert {a.path for a in c.list_artifacts(run.info.run_id, "eval")} >= {"eval/confusion_matrix.png",
                                                                            "eval/report.md"}
        local = c.download_artifacts(run.info.run_id, "model/model.keras", str(folder.parent / "dl"))
        assert Path(local).read_bytes() == (folder / "model.keras").read_bytes()
    else:
        assert "test_accuracy" not in run.data.metrics


def test_track_into_a_server_twice_and_after_a_resume(runs, server):
    done, cut = runs["done"], runs["cut"]
    r = run_cli("track", done, cut, "--uri", server, "--experiment", "tiny")
    assert r.exit_code == 0, r.output
    found = mlflow_runs(server, "tiny")
    assert set(found) == {done.name, cut.name}
    assert_run_equals_folder(server, found[done.name], done, "FINISHED")
    assert_run_equals_folder(server, found[cut.name], cut, "KILLED")
    ids = {name: run.info.run_id for name, run in found.items()}
    for folder in (done, cut):
        assert rundir.read_json(folder / "run.json")["mlflow"][server]["run_id"] == ids[folder.name]

    # again: the same MLflow runs, nothing doubled
    r = run_cli("track", done, cut, "--uri", server, "--experiment", "tiny")
    assert r.exit_code == 0, r.output
    again = mlflow_runs(server, "tiny")
    assert {n: run.info.run_id for n, run in again.items()} == ids
    assert_run_equals_folder(server, again[done.name], done, "FINISHED")

    # the interrupted run is finished, then tracked: its MLflow run is brought up to date
    r = run_cli("train", "--resume", cut, "-q")
    assert r.exit_code == 0, r.stderr
    assert run_cli("evaluate", cut, "-q").exit_code == 0
    r = run_cli("track", cut, "--uri", server, "--experiment", "tiny")
    assert r.exit_code == 0, r.output
    after = mlflow_runs(server, "tiny")
    assert {n: run.info.run_id for n, run in after.items()} == ids
    assert_run_equals_folder(server, after[cut.name], cut, "FINISHED")


def test_track_into_the_default_local_store(runs):
    """No --uri and no MLFLOW_TRACKING_URI: a SQLite store beside the runs, artifacts beside it."""
    done = runs["done"]
    for _ in range(2):
        r = run_cli("track", done)
        assert r.exit_code == 0, r.output
    db = done.parent / "mlflow.db"
    uri = f"sqlite:///{db}"
    assert db.is_file() and (done.parent / "mlartifacts").is_dir()
    found = mlflow_runs(uri, "hdr")
    assert list(found) == [done.name]
    assert_run_equals_folder(uri, found[done.name], done, "FINISHED")
    assert rundir.read_json(done / "run.json")["mlflow"][uri]["run_id"] == found[done.name].info.run_id


def test_bad_input_is_one_line_and_logs_nothing(runs, tmp_path):
    done = runs["done"]
    before = (done / "run.json").read_bytes()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]   # nothing listens there once the socket is closed
    running = tmp_path / "running"
    running.mkdir()
    (running / "config.yaml").write_text((done / "config.yaml").read_text())
    info = {**rundir.read_json(done / "run.json"), "status": "running", **rundir.this_process()}
    rundir.write_json(running / "run.json", info)
    cases = [
        ((tmp_path / "missing",), 2, "not found"),
        ((running,), 2, "still running"),
        ((done, "--uri", f"http://127.0.0.1:{closed}"), 1, "cannot reach the MLflow tracking server"),
        ((done, "--uri", "nosuch://x"), 2, "not a tracking URI"),
    ]
    for args, code, words in cases:
        r = run_cli("track", *args)
        assert r.exit_code == code, (args, r.output)
        assert words in r.stderr and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
    assert (done / "run.json").read_bytes() == before
    assert not (tmp_path / "mlflow.db").exists()
