"""`hdr train` end to end on tiny generated data: the run folder and every file in it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import CONFIGS

TINY_CNN = ["model.conv=[{filters: 4, kernel: 3, pool: 2}]", "model.dense=[16]", "training.epochs=2",
            "training.batch_size=32"]


def train(cli_run, tmp_path, config="cnn_adam.yaml", *overrides, quiet=True):
    args = ["train", CONFIGS / config, *overrides, "--runs-dir", tmp_path / "runs"]
    if quiet:
        args.append("-q")
    return cli_run(*args)


def test_train_writes_complete_run_folder(cli_run, tiny_data, tmp_path):
    r = train(cli_run, tmp_path, "cnn_adam.yaml", *TINY_CNN)
    assert r.exit_code == 0, r.stderr
    folder = Path(r.stdout.strip().splitlines()[-1])
    assert folder.parent == tmp_path / "runs"
    assert folder.name.split("-")[2] == "cnn_adam"
    for name in ("config.yaml", "run.json", "history.csv", "accuracy.png", "loss.png", "model.keras",
                 "summary.txt", "metrics.json"):
        assert (folder / name).is_file() and (folder / name).stat().st_size > 0, name
    assert not list(folder.glob(".*tmp*")), "temporary files left behind"

    cfg = yaml.safe_load((folder / "config.yaml").read_text())
    assert cfg["model"]["conv"] == [{"filters": 4, "kernel": 3, "stride": 1, "activation": "relu", "padding": "valid",
                                     "pool": 2, "dropout": 0.0, "batch_norm": False}]
    assert cfg["optimizer"]["beta_2"] == 0.999 and cfg["training"]["epochs"] == 2

    info = json.loads((folder / "run.json").read_text())
    assert info["status"] == "completed"
    assert info["started"] <= info["ended"]
    assert isinstance(info["command"], list) and info["command"]
    assert info["runtime"]["keras"].startswith("3.") and info["runtime"]["backend"]
    assert info["versions"]["python"].startswith("3.")
    assert info["seed"] == 1 and info["epochs_completed"] == 2
    assert set(info["data_checksums"]) == {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                           "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}

    rows = list(csv.DictReader((folder / "history.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert list(rows[0]) == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds"]
    assert float(rows[0]["learning_rate"]) == pytest.approx(0.001)

    m = json.loads((folder / "metrics.json").read_text())
    assert 0 <= m["test_accuracy"] <= 1 and m["test_loss"] > 0
    assert m["test_size"] == 100 and m["val_size"] == 60 and m["train_size"] == 240
    assert m["val_accuracy"] == pytest.approx(float(rows[-1]["val_accuracy"]))
    assert "Total params" in (folder / "summary.txt").read_text()
    for png in ("accuracy.png", "loss.png"):
        assert (folder / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # the saved model predicts like the one that was evaluated
    from hdr.core.backend import quiet_import
    from hdr.core import data

    keras = quiet_import()
    model = keras.models.load_model(folder / "model.keras")
    d = data.load("mnist", verify=False)
    loss, acc = model.evaluate(d.test.x, d.test.y, verbose=0)
    assert acc == pytest.approx(m["test_accuracy"], abs=1e-6)


def test_learning_on_tiny_data(cli_run, tiny_data, tmp_path):
    """The tiny data is learnable: a few epochs of an MLP get well above chance."""
    r = train(cli_run, tmp_path, "mlp_adam.yaml", "model.hidden=[32]", "training.epochs=8", "training.batch_size=16")
    assert r.exit_code == 0, r.stderr
    m = json.loads((Path(r.stdout.strip().splitlines()[-1]) / "metrics.json").read_text())
    assert m["test_accuracy"] >= 0.8


def test_same_seed_same_history(cli_run, tiny_data, tmp_path):
    folders = []

    def history(*extra):
        r = train(cli_run, tmp_path, "mlp_dropout_adam.yaml", "model.hidden=[32, 32]", "training.epochs=2",
                  "training.batch_size=16", *extra)
        assert r.exit_code == 0, r.stderr
        folders.append(Path(r.stdout.strip().splitlines()[-1]))
        rows = list(csv.DictReader((folders[-1] / "history.csv").open()))
        return [(x["loss"], x["accuracy"], x["val_loss"], x["val_accuracy"]) for x in rows]

    a, b = history(), history()
    assert a == b
    assert history("training.seed=2") != a
    # Three runs of one config into one runs folder: three folders, none reused.
    assert len(set(folders)) == 3 and sorted((tmp_path / "runs").iterdir()) == sorted(folders)
    assert [json.loads((f / "run.json").read_text())["seed"] for f in folders] == [1, 1, 2]


def test_progress_and_summary_when_not_quiet(cli_run, tiny_data, tmp_path):
    r = train(cli_run, tmp_path, "slp_sgd.yaml", "training.epochs=2", quiet=False)
    assert r.exit_code == 0, r.stderr
    assert "epoch 1/2" in r.stderr and "epoch 2/2" in r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0].startswith("test accuracy")
    assert Path(lines[-1]).is_dir()


def test_usps_input_shape_follows_dataset(cli_run, tiny_data, tmp_path):
    r = train(cli_run, tmp_path, "usps_cnn.yaml", "training.epochs=1")
    assert r.exit_code == 0, r.stderr
    folder = Path(r.stdout.strip().splitlines()[-1])
    assert "(None, 16, 16, 1)" in (folder / "summary.txt").read_text()
    # the same model config runs on MNIST too
    r = train(cli_run, tmp_path, "usps_cnn.yaml", "training.epochs=1", "dataset.name=mnist")
    assert r.exit_code == 0, r.stderr


def test_no_validation_split(cli_run, tiny_data, tmp_path):
    r = train(cli_run, tmp_path, "slp_sgd.yaml", "training.epochs=1", "dataset.validation_split=null")
    assert r.exit_code == 0, r.stderr
    folder = Path(r.stdout.strip().splitlines()[-1])
    m = json.loads((folder / "metrics.json").read_text())
    assert m["val_size"] == 0 and m["val_accuracy"] is None and m["train_size"] == 300


def test_run_folder_names_sort_by_start_time(tmp_path):
    """Folder names start with the start time, so a listing sorted by name is in the order the
    runs started (across seconds; within one second the random tail decides)."""
    import time

    from hdr.runs import rundir

    first = rundir.create(tmp_path, "b_config")
    time.sleep(1.05)
    second = rundir.create(tmp_path, "a_config")
    assert first.name < second.name
    assert first.name.split("-")[2] == "b_config" and second.name.split("-")[2] == "a_config"


@pytest.mark.parametrize("args, expected", [
    (["training.epochs=0"], "training.epochs: 0 is invalid"),
    (["optimizer.name=adamw2"], "optimizer.name: unknown optimizer name 'adamw2'"),
    (["model.typo=1"], "model.typo: unknown key"),
    (["dataset.name=emnist"], "dataset.name: 'emnist' is not allowed"),
    (["dataset.validation_split=1.5"], "dataset.validation_split: 1.5 is invalid"),
])
def test_bad_config_exits_2_and_creates_nothing(cli_run, tiny_data, tmp_path, args, expected):
    r = train(cli_run, tmp_path, "slp_sgd.yaml", *args)
    assert r.exit_code == 2
    assert expected in r.stderr
    assert r.stderr.startswith("hdr: error:") and len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_missing_config_file(cli_run, tmp_path):
    r = cli_run("train", tmp_path / "nope.yaml", "--runs-dir", tmp_path / "runs")
    assert r.exit_code == 2 and "config file not found" in r.stderr


def test_corrupt_data_is_one_line_and_no_run_folder(cli_run, tiny_data, tmp_path):
    p = tiny_data / "mnist" / "train-images-idx3-ubyte.gz"
    p.write_bytes(p.read_bytes()[:100])
    r = train(cli_run, tmp_path, "slp_sgd.yaml", "training.epochs=1")
    assert r.exit_code == 1
    assert "corrupt or truncated" in r.stderr and str(p) in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize("args, expected", [
    (["train"], "missing CONFIG"),
    (["train", "--bogus"], "No such option '--bogus'"),
    (["nocmd"], "No such command 'nocmd'"),
    (["runs", "/nonexistent/runs"], "runs folder not found"),
    (["train", str(CONFIGS / "slp_sgd.yaml"), "epochs"], "is not KEY=VALUE"),
])
def test_usage_mistakes_are_one_line_exit_2(cli_run, args, expected):
    r = cli_run(*args)
    assert r.exit_code == 2
    assert r.stderr.startswith("hdr: error:") and expected in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
