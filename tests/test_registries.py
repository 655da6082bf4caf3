"""One place for each fact: a dataset, an optimizer, a model type and a schedule are declared once,
and everything else (training, evaluation, describe, compare, the CLI, the README) follows.

The extra-dataset test is the proof: a 12-class, 20x20 IDX dataset that hdr has never heard of is
added as one record plus its files, then trained, evaluated, described and compared through the
real commands."""

from __future__ import annotations

import csv
import gzip
import json
import re
from pathlib import Path

import numpy as np
import pytest

from hdr.engine import config
from hdr.core import data
from tests.conftest import REPO, idx_bytes

CLASSES = tuple("ABCDEFGHIJKL")  # 12 classes: more than ten digits
SIZE = 20                         # neither MNIST's 28 nor USPS's 16


def glyphs(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Learnable fake images: class k lights up its own 5x5 block of a 4x4 grid of blocks."""
    y = np.arange(n) % len(CLASSES)
    rng.shuffle(y)
    x = rng.integers(0, 30, size=(n, SIZE, SIZE)).astype(np.uint8)
    for i, label in enumerate(y):
        r, c = divmod(int(label), 4)
        x[i, r * 5:(r + 1) * 5, c * 5:(c + 1) * 5] = 240
    return x, y.astype(np.uint8)


@pytest.fixture
def letters(tmp_path, monkeypatch):
    """The new dataset: one DatasetSpec registered, and its four IDX files in a data dir."""
    rng = np.random.default_rng(0)
    files = {}
    folder = tmp_path / "data" / "letters12"
    folder.mkdir(parents=True)
    for part, n in (("train", 480), ("test", 120)):
        x, y = glyphs(n, rng)
        for role, arr in ((f"{part}_images", x), (f"{part}_labels", y)):
            name = f"letters12-{role.replace('_', '-')}-idx.gz"
            (folder / name).write_bytes(gzip.compress(idx_bytes(arr)))
            files[role] = data.FileSpec(name)
    spec = data.DatasetSpec("letters12", files, mirrors=(), decode=data.decode_idx, image_size=(SIZE, SIZE),
                            class_names=CLASSES, value_range="uint8 0-255", framing="fill",
                            sizes={"train": 480, "test": 120})
    monkeypatch.setitem(data.DATASETS, spec.name, spec)
    monkeypatch.setenv("HDR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HDR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("HDR_NO_VERIFY", raising=False)
    return spec


def test_a_new_dataset_is_one_record_plus_its_files(letters, cli_run, tmp_path):
    runs = tmp_path / "runs"
    folders = []
    for lr in ("0.001", "0.003"):
        r = cli_run("train", REPO / "configs" / "mlp_adam.yaml", "dataset.name=letters12", "model.hidden=[32]",
                    "training.epochs=4", "training.batch_size=32", f"optimizer.learning_rate={lr}",
                    "--runs-dir", runs, "-q")
        assert r.exit_code == 0, r.output
        folders.append(Path(r.stdout.strip().splitlines()[-1]))
    run = folders[0]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["dataset"] == "letters12" and metrics["test_size"] == 120
    assert metrics["test_accuracy"] > 0.5  # learned, over 12 classes (chance: 0.083)
    assert "(None, 12)" in (run / "summary.txt").read_text()  # a 12-way softmax, from the record

    e = cli_run("evaluate", run, "-q")
    assert e.exit_code == 0, e.output
    rows = list(csv.reader((run / "eval" / "confusion_matrix.csv").open()))
    assert len(rows) == 13 and len(rows[0]) == 13  # header + 12x12
    assert np.array([[int(v) for v in r[1:]] for r in rows[1:]]).sum() == 120
    per_class = list(csv.DictReader((run / "eval" / "per_class.csv").open()))
    assert [int(r["label"]) for r in per_class] == list(range(12))
    assert json.loads((run / "eval" / "metrics.json").read_text())["test_accuracy"] == \
        pytest.approx(metrics["test_accuracy"], abs=1e-6)

    d = cli_run("data", "describe", "letters12", "--out", tmp_path / "describe")
    assert d.exit_code == 0, d.output
    assert "480 train + 120 test images, 20x20 pixels" in d.stdout
    assert "check: ok (labels 0-11" in d.stdout
    table = [line.split() for line in d.stdout.splitlines() if line[:1] in CLASSES]
    assert [row[0] for row in table] == list(CLASSES) and sum(int(row[1]) for row in table) == 480
    assert (tmp_path / "describe" / "letters12-samples.png").read_bytes()[:4] == b"\x89PNG"

    c = cli_run("compare", *folders, "--wide")
    assert c.exit_code == 0, c.output
    assert "optimizer.learning_rate" in c.stdout and "0.001" in c.stdout and "0.003" in c.stdout

    unknown = cli_run("data", "describe", "letters13")
    assert unknown.exit_code == 2 and "letters12" in unknown.stderr  # the CLI's choices follow the registry


def test_labels_beyond_the_records_classes_are_a_corrupt_file(letters, tmp_path):
    """The label check comes from the record's class list, not from a hard-coded 10."""
    folder = tmp_path / "data" / "letters12"
    y = np.full(480, 12, np.uint8)  # one past the last class
    (folder / letters.files["train_labels"].name).write_bytes(gzip.compress(idx_bytes(y)))
    with pytest.raises(data.DataError, match="labels outside 0-11"):
        data.load("letters12")


def test_config_dataset_names_follow_the_registry():
    allowed = " or ".join(repr(n) for n in data.DATASETS)
    with pytest.raises(config.UsageError, match=re.escape(f"allowed: {allowed}")):
        config.validate({"dataset": {"name": "cifar"}, "model": {"type": "slp"}, "optimizer": {"name": "sgd"}})


def test_every_optimizer_model_type_and_schedule_is_implemented():
    """Adding an optimizer is one config class in hdr.engine.config.OPTIMIZERS: it must name a Keras
    optimizer that takes every field of the class."""
    from hdr.engine import models

    base = {"dataset": {"name": "mnist"}, "model": {"type": "slp"}, "training": {"epochs": 2}}
    for name, cls in config.OPTIMIZERS.items():
        for schedule in config.SCHEDULES:
            cfg = config.validate({**base, "optimizer": {"name": name, "schedule": schedule, "clipnorm": 1.0}})
            opt = models.build_optimizer(cfg, steps_per_epoch=10)
            assert type(opt).__name__ == cls.__name__
            for field in set(cls.model_fields) - {"name", "schedule", "warmup_epochs", "learning_rate",
                                                  "decay_rate", "decay_epochs", "weight_decay", "ema_momentum"}:
                assert getattr(opt, field) == pytest.approx(getattr(cfg.optimizer, field)), (name, field)
    assert set(models.SCHEDULES) == set(config.SCHEDULES)
    assert set(models.BUILDERS) == set(config.MODEL_TYPES.values())


def test_readme_lists_what_the_tables_hold():
    readme = (REPO / "README.md").read_text()
    assert f"name: adam               # {' | '.join(config.OPTIMIZERS)}" in readme
    assert f"# {' | '.join(config.MODEL_TYPES)}" in readme
    assert f"schedule: constant       # {' | '.join(config.SCHEDULES)}" in readme
    assert f"name: mnist              # {' | '.join(data.DATASETS)}" in readme
