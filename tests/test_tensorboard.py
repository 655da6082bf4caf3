"""TensorBoard event files in the run folder (hdr/tensorboard_log.py), read back by TensorBoard's
own reader and by a real `tensorboard` server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from hdr.runs import rundir
from hdr.engine import tensorboard_log
from tests.conftest import CONFIGS
from tests.test_recipes import _train

USPS_SLP = [CONFIGS / "slp_sgd.yaml", "dataset.name=usps", "training.batch_size=32"]
TAGS = {"train": {"epoch_loss": "loss", "epoch_accuracy": "accuracy", "epoch_learning_rate": "learning_rate"},
        "validation": {"epoch_loss": "val_loss", "epoch_accuracy": "val_accuracy"}}


def read_scalars(logdir: Path) -> dict[str, list[tuple[int, float, float]]]:
    """tag -> [(step, value, wall time)] as TensorBoard's reader sees the folder, every event kept
    (purge_orphaned_data off: the reader would otherwise hide a step written twice)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "images": 0}, purge_orphaned_data=False)
    acc.Reload()
    return {tag: [(e.step, e.value, e.wall_time) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def assert_logs_equal_history(folder: Path) -> None:
    history = rundir.read_history(folder / "history.csv")
    assert history
    for series, tags in TAGS.items():
        scalars = read_scalars(folder / "tensorboard" / series)
        assert set(scalars) == set(tags)
        for tag, column in tags.items():
            steps = [s for s, _, _ in scalars[tag]]
            assert steps == [r["epoch"] for r in history], (series, tag)        # each epoch once, in order
            assert [v for _, v, _ in scalars[tag]] == [np.float32(r[column]) for r in history], (series, tag)
            times = [t for _, _, t in scalars[tag]]
            assert times == sorted(times)


def test_event_files_equal_history_across_an_interrupt_and_resume(cli_run, tiny_data, tmp_path):
    """Stopped after epoch 2, with the logs damaged both ways a crash can leave them (the
    validation file missing epoch 2, as if the process died between history.csv and the hook;
    the train file holding an epoch 3 that history.csv never committed), then resumed: every
    epoch once, equal to history.csv, and the file that only lacked its end grew in place."""
    folder = _train(cli_run, tmp_path / "runs", *USPS_SLP, "training.epochs=4", stop_after=2)
    assert [r["epoch"] for r in rundir.read_history(folder / "history.csv")] == [1, 2]
    assert_logs_equal_history(folder)

    [val] = tensorboard_log.event_files(folder / "tensorboard" / "validation")
    whole = val.read_bytes()
    one = tensorboard_log.framed(tensorboard_log.series_events(
        "validation", tensorboard_log.started(rundir.read_json(folder / "run.json")),
        rundir.read_history(folder / "history.csv")[:1]))
    assert whole.startswith(one) and len(whole) > len(one)
    val.write_bytes(one)
    inode = val.stat().st_ino
    [train] = tensorboard_log.event_files(folder / "tensorboard" / "train")
    ghost = {"epoch": 3, "loss": 99.0, "accuracy": 0.0, "learning_rate": 1.0, "seconds": 1.0}
    with open(train, "ab") as f:
        f.write(tensorboard_log.framed([tensorboard_log._epoch_event("train", ghost, time.time())]))
    assert max(s for s, _, _ in read_scalars(train.parent)["epoch_loss"]) == 3
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    live = EventAccumulator(str(train.parent), size_guidance={"scalars": 0})  # as a TensorBoard left open reads
    live.Reload()

    r = cli_run("train", "--resume", folder, "-q")
    assert r.exit_code == 0, r.stderr
    history = rundir.read_history(folder / "history.csv")
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]
    assert_logs_equal_history(folder)
    assert tensorboard_log.event_files(val.parent) == [val]
    assert val.stat().st_ino == inode   # appended to, not replaced: a live TensorBoard keeps reading it
    assert len(tensorboard_log.event_files(train.parent)) == 1   # the ghost's file replaced by a later one,
    live.Reload()                                                # which the open reader moves on to
    assert [(e.step, e.value) for e in live.Scalars("epoch_loss")] == [(h["epoch"], np.float32(h["loss"]))
                                                                      for h in history]

    # hdr evaluate adds its figures and pictures; a second evaluation replaces them
    for _ in range(2):
        r = cli_run("evaluate", folder, "-q")
        assert r.exit_code == 0, r.stderr
    acc = EventAccumulator(str(folder / "tensorboard" / "eval"), size_guidance={"images": 0, "scalars": 0},
                           purge_orphaned_data=False)
    acc.Reload()
    for name in ("confusion_matrix", "misclassified"):
        [image] = acc.Images(name)
        assert image.encoded_image_string == (folder / "eval" / f"{name}.png").read_bytes()
        assert image.step == 4
    [acc_event] = acc.Scalars("test_accuracy")
    assert acc_event.value == np.float32(rundir.read_json(folder / "eval" / "metrics.json")["test_accuracy"])
    assert_logs_equal_history(folder)   # evaluation left the curves as they were


def test_tensorboard_off_writes_nothing(cli_run, tiny_data, tmp_path):
    folder = _train(cli_run, tmp_path / "runs", *USPS_SLP, "training.epochs=1", "training.tensorboard=false")
    r = cli_run("evaluate", folder, "-q")
    assert r.exit_code == 0, r.stderr
    assert not (folder / "tensorboard").exists()


def test_hyperparameters_are_the_config_keys_and_the_group_fields():
    config = {"optimizer": {"name": "sgd", "learning_rate": 0.1, "clipnorm": None},
              "model": {"type": "mlp", "hidden": [64, 64], "conv": [{"filters": 8}]},
              "training": {"tensorboard": True, "seed": 3}}
    info = {"id": "r1", "sweep_id": "s1", "sweep_point": "optimizer.learning_rate=0.1", "sweep_index": 2,
            "fold": 1, "folds": 3, "cv_id": "c1", "study": "st", "trial_number": 4, "pid": 1, "host": "h",
            "status": "completed"}
    assert tensorboard_log.hparams(config, info) == {
        "optimizer.name": "sgd", "optimizer.learning_rate": 0.1, "model.type": "mlp",
        "model.hidden": "[64, 64]", "model.conv.0.filters": 8, "training.seed": 3,
        "sweep_id": "s1", "sweep_point": "optimizer.learning_rate=0.1", "sweep_index": 2,
        "fold": 1, "folds": 3, "cv_id": "c1", "study": "st", "trial_number": 4}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, data: dict | None = None):
    body = None if data is None else json.dumps(data).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"} if body else {})
    with urllib.request.urlopen(req, timeout=30) as f:
        return json.loads(f.read())


def test_a_tensorboard_server_shows_the_runs_and_a_cv_in_the_hparams_view(cli_run, tiny_data, tmp_path):
    """`tensorboard --logdir runs` on 127.0.0.1: every run is listed, a run's curve over HTTP is its
    history.csv, the model's conceptual graph is there, and the folds of a cross-validation are
    sessions of the HParams view with their config keys and fold numbers as hyperparameters."""
    runs = tmp_path / "runs"
    r = cli_run("cv", *USPS_SLP, "training.epochs=2", "--folds", "2", "--runs-dir", runs, "-q")
    assert r.exit_code == 0, r.stderr
    folds = sorted(p for p in (runs / "cv").glob("*/*") if (p / "run.json").is_file())
    assert len(folds) == 2

    port = _free_port()
    exe = Path(sys.executable).parent / "tensorboard"
    server = subprocess.Popen([str(exe), "--logdir", str(runs), "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    base = f"http://127.0.0.1:{port}"
    try:
        names = {f: os.path.relpath(f / "tensorboard", runs) for f in folds}
        deadline = time.monotonic() + 120
        while True:   # up, and done with its first pass over the folder
            assert server.poll() is None, server.stderr.read()[-2000:]
            try:
                listed = _get(f"{base}/data/runs")
                if all(f"{n}/validation" in listed for n in names.values()):
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "tensorboard did not list the runs within 120 s"
            time.sleep(0.5)
        for folder, name in names.items():
            assert {name, f"{name}/train", f"{name}/validation"} <= set(listed)
        first, name = next(iter(names.items()))
        history = rundir.read_history(first / "history.csv")
        q = urllib.parse.urlencode({"run": f"{name}/validation", "tag": "epoch_accuracy"})
        points = _get(f"{base}/data/plugin/scalars/scalars?{q}")
        assert [(s, np.float32(v)) for _, s, v in points] == [(h["epoch"], np.float32(h["val_accuracy"]))
                                                               for h in history]
        graphs = _get(f"{base}/data/plugin/graphs/info")
        assert graphs[name]["tags"]["keras"]["conceptual_graph"] is True

        groups = _get(f"{base}/data/plugin/hparams/session_groups", {
            "experimentName": "", "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE",
                                                      "STATUS_RUNNING"],
            "colParams": [], "startIndex": 0, "sliceSize": 100})["sessionGroups"]
        by_run = {g["sessions"][0]["name"]: g for g in groups}
        assert set(by_run) == set(names.values())
        for folder, name in names.items():
            hp = by_run[name]["hparams"]
            info = rundir.read_json(folder / "run.json")
            assert hp["fold"] == info["fold"] and hp["cv_id"] == info["cv_id"]
            assert hp["optimizer.learning_rate"] == pytest.approx(0.01) and hp["dataset.name"] == "usps"
            val_acc = {m["name"]["tag"]: m["value"] for m in by_run[name]["metricValues"]
                       if m["name"]["group"] == "validation"}["epoch_accuracy"]
            assert np.float32(val_acc) == np.float32(rundir.read_history(folder / "history.csv")[-1]["val_accuracy"])
        assert {g["hparams"]["fold"] for g in groups} == {1, 2}
    finally:
        server.terminate()
        server.wait(30)


def test_writing_needs_no_tensorflow(tmp_path):
    """The event files come from tensorboardX's builders, protos and record writer alone: opening a
    run's log and logging an epoch imports neither TensorFlow nor Keras (so JAX and torch runs
    write the same files), and what it wrote reads back."""
    from hdr.engine import config

    cfg = config.validate({"dataset": {"name": "usps"}, "model": {"type": "slp"}, "optimizer": {"name": "sgd"}})
    (tmp_path / "config.yaml").write_text(config.dump(cfg))
    rundir.RunInfo.start(tmp_path, config_name="slp", seed=1, command=["hdr"])
    rows = [{"epoch": e, "loss": 1.0 / e, "accuracy": 0.5, "val_loss": 1.5 / e, "val_accuracy": 0.4,
             "learning_rate": 0.01, "seconds": 2.0} for e in (1, 2, 3)]
    rundir.write_history(tmp_path / "history.csv", rows[:2])
    code = ("import sys, json; from hdr.engine import tensorboard_log as t; log = t.open_log(sys.argv[1]); "
            f"r = log(3, {rows[2]!r}); "
            "print(json.dumps([r, sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'keras', 'jax', 'torch'))]))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout) == [None, []]   # the hook returns None: it never prunes a run
    rundir.write_history(tmp_path / "history.csv", rows)
    assert_logs_equal_history(tmp_path)
