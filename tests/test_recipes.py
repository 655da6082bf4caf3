"""Training recipes from the config: augmentation, schedules, label smoothing, weight decay, EMA,
batch norm in MLPs. Every one is off by default, and the shipped configs train as before."""

from __future__ import annotations

import signal

import numpy as np
import pytest

from hdr.engine import config
from hdr.engine import models
from hdr.runs import rundir
from hdr.core.backend import quiet_import
from tests.conftest import CONFIGS

keras = quiet_import()
BASE = {"dataset": {"name": "mnist"}, "model": {"type": "slp"}, "training": {"epochs": 10}}


def cfg_with(optimizer=None, training=None, augment=None, model=None):
    data = {**BASE, "optimizer": {"name": "sgd", "learning_rate": 0.1, **(optimizer or {})}}
    data["training"] = {**BASE["training"], **(training or {})}
    if augment:
        data["augment"] = augment
    if model:
        data["model"] = model
    return config.validate(data)


def lr_at(opt, step: int) -> float:
    lr = opt.learning_rate if not callable(getattr(opt, "_learning_rate", None)) else opt._learning_rate
    return float(keras.ops.convert_to_numpy(lr(step) if callable(lr) else lr))


@pytest.mark.parametrize("schedule,step,expected", [
    ("constant", 500, 0.1),
    ("exponential", 0, 0.1),
    ("exponential", 500, 0.1 * 0.5 ** 0.5),        # half of decay_epochs (10 steps a epoch)
    ("step", 990, 0.1),                             # still in the first decay_epochs
    ("step", 1000, 0.1 * 0.5),                      # one full decay period: one drop
    ("onecycle", 0, 0.1 / 25),                      # starts low
    ("onecycle", 30, 0.1),                          # 30% of 100 steps: the peak
    ("onecycle", 100, 0.1 / 25000),                 # ends near 0
])
def test_schedules_follow_their_definition(schedule, step, expected):
    cfg = cfg_with({"schedule": schedule, "decay_rate": 0.5, "decay_epochs": 100})
    opt = models.build_optimizer(cfg, steps_per_epoch=10)
    assert lr_at(opt, step) == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("schedule", ["constant", "exponential", "step"])
def test_warm_up_rises_linearly_then_hands_over(schedule):
    cfg = cfg_with({"schedule": schedule, "warmup_epochs": 2, "decay_rate": 0.5, "decay_epochs": 100})
    opt = models.build_optimizer(cfg, steps_per_epoch=10)
    assert lr_at(opt, 0) == 0.0
    assert lr_at(opt, 10) == pytest.approx(0.05, rel=1e-5)
    assert lr_at(opt, 20) == pytest.approx(0.1, rel=1e-5)  # the schedule starts where the warm-up ends


def test_cosine_keeps_keras_warm_up_as_before():
    cfg = cfg_with({"schedule": "cosine", "warmup_epochs": 1})
    opt = models.build_optimizer(cfg, steps_per_epoch=10)
    assert lr_at(opt, 10) == pytest.approx(0.1, rel=1e-5)
    assert lr_at(opt, 55) == pytest.approx(0.05, rel=1e-4)  # halfway through the decay
    assert isinstance(opt._learning_rate, keras.optimizers.schedules.CosineDecay)


@pytest.mark.parametrize("schedule", ["onecycle", "step"])
def test_schedules_survive_a_save_and_load(tmp_path, schedule):
    """A checkpoint's optimizer is rebuilt from its config on resume: hdr's own schedules must
    deserialize to the same values."""
    cfg = cfg_with({"schedule": schedule, "warmup_epochs": 1})
    model = models.compile_model(models.build(cfg, (28, 28, 1)), cfg, steps_per_epoch=10)
    model.save(tmp_path / "m.keras")
    back = keras.models.load_model(tmp_path / "m.keras")
    for step in (0, 5, 37, 99):
        assert lr_at(back.optimizer, step) == pytest.approx(lr_at(model.optimizer, step), rel=1e-6)


def test_label_smoothing_is_cross_entropy_against_smoothed_labels():
    cfg = cfg_with(training={"label_smoothing": 0.1})
    loss = models.loss_for(cfg)
    probs = np.array([[0.7, 0.2, 0.1] + [0.0] * 7], "float32") + 1e-3
    probs /= probs.sum()
    target = np.full(10, 0.1 / 10)
    target[1] += 0.9
    expected = -np.sum(target * np.log(probs[0]))
    assert float(loss(np.array([1]), probs)) == pytest.approx(expected, rel=1e-4)
    assert models.loss_for(cfg_with()) == "sparse_categorical_crossentropy"  # off: as before


def test_weight_decay_and_ema_reach_every_optimizer():
    for name in config.OPTIMIZERS:
        cfg = config.validate({**BASE, "optimizer": {"name": name, "weight_decay": 0.01, "ema_momentum": 0.99}})
        opt = models.build_optimizer(cfg, steps_per_epoch=10)
        assert opt.weight_decay == pytest.approx(0.01) and opt.use_ema and opt.ema_momentum == pytest.approx(0.99)


def test_augmentation_acts_in_training_only():
    cfg = cfg_with(augment={"rotation": 20, "translation": 0.1, "zoom": 0.1, "shear": 0.1, "elastic": 0.5})
    layer = models.augmentation(cfg.augment)
    assert [type(x).__name__ for x in layer.layers] == [
        "RandomRotation", "RandomTranslation", "RandomZoom", "RandomShear", "RandomElasticTransform"]
    x = np.zeros((4, 28, 28, 1), "float32")
    x[:, 8:20, 12:16] = 1.0
    assert np.array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), x)
    changed = keras.ops.convert_to_numpy(layer(x, training=True))
    assert not np.allclose(changed, x) and changed.min() >= 0 and changed.max() <= 1.0001
    model = models.build(cfg, (28, 28, 1))
    assert "augment" in [l.name for l in model.layers]


def test_shipped_configs_train_as_before():
    """No shipped config turns a recipe on: no augmentation layer, the plain loss, no EMA or decay;
    except usps_cnn.yaml, whose augmentation is what reproduces write-up 001 (RECORDS.md)."""
    for path in sorted(CONFIGS.glob("*.yaml")):
        cfg = config.load(path)
        assert cfg.augment.active() is (path.name == "usps_cnn.yaml"), path.name
        assert cfg.training.label_smoothing == 0, path.name
        assert cfg.training.early_stopping is None and cfg.optimizer.ema_momentum is None, path.name
        assert cfg.optimizer.weight_decay is None or cfg.optimizer.name == "adamw", path.name


def test_mlp_batch_norm():
    cfg = cfg_with(model={"type": "mlp", "hidden": [32, 16], "batch_norm": True})
    model = models.build(cfg, (16, 16, 1))
    kinds = [type(l).__name__ for l in model.layers]
    assert kinds.count("BatchNormalization") == 2
    assert all(not l.use_bias for l in model.layers if type(l).__name__ == "Dense" and l.name != "digits")


@pytest.mark.parametrize("override,words", [
    ("augment.rotation=181", "augment.rotation"),
    ("augment.zoom=-1", "augment.zoom"),
    ("augment.flip=true", "augment.flip: unknown key"),
    ("training.early_stopping={patience: 0}", "training.early_stopping.patience"),
])
def test_impossible_recipes_are_refused(cli_run, tmp_path, override, words):
    r = cli_run("train", CONFIGS / "slp_sgd.yaml", override, "--runs-dir", tmp_path / "runs")
    assert r.exit_code == 2 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "runs").exists()


def test_early_stopping_needs_a_validation_split():
    with pytest.raises(config.UsageError, match="early_stopping watches the validation split"):
        config.validate({**BASE, "optimizer": {"name": "sgd"}, "dataset": {"name": "mnist", "validation_split": None},
                         "training": {"early_stopping": {"patience": 3}}})


def test_describe_draws_the_augmentation(cli_run, tiny_data, tmp_path):
    cfg = tmp_path / "aug.yaml"
    cfg.write_text("dataset: {name: usps}\nmodel: {type: slp}\noptimizer: {name: sgd}\naugment: {rotation: 30}\n")
    r = cli_run("data", "describe", "usps", "--out", tmp_path / "out", "--augment", cfg)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "out" / "usps-augmented.png").read_bytes()[:4] == b"\x89PNG"
    plain = tmp_path / "plain.yaml"
    plain.write_text("dataset: {name: usps}\nmodel: {type: slp}\noptimizer: {name: sgd}\n")
    for args, words in (((cfg,), "give --out DIR too"), ((plain, "--out", tmp_path / "o2"), "has no augmentation")):
        r = cli_run("data", "describe", "usps", "--augment", *args)
        assert r.exit_code == 2 and words in r.stderr, r.output


def test_early_stop_reads_the_history():
    from hdr.runs.history import early_stop

    rows = [{"epoch": e, "val_accuracy": a, "val_loss": 1 - a} for e, a in enumerate([0.5, 0.7, 0.69, 0.7, 0.65], 1)]
    assert early_stop(rows[:3], "val_accuracy", 2) == (2, False)
    assert early_stop(rows[:4], "val_accuracy", 2) == (2, True)     # a tie is no improvement
    assert early_stop(rows, "val_loss", 3) == (2, True)
    assert early_stop(rows[:4], "val_accuracy", 2, min_delta=0.25) == (1, True)
    assert early_stop(rows[:1], "val_accuracy", 1) == (1, False)


def _stop_after(train_mod, n):
    real = train_mod.Trainer.commit_epoch

    def commit(self, epoch, logs, model):
        real(self, epoch, logs, model)
        if epoch == n:
            self.signal_received = signal.SIGINT  # what Ctrl-C's handler sets
    return real, commit


def _train(cli_run, runs, *args, stop_after=None):
    from hdr.engine import train as train_mod

    real = train_mod.Trainer.commit_epoch
    if stop_after:
        train_mod.Trainer.commit_epoch = _stop_after(train_mod, stop_after)[1]
    try:
        r = cli_run("train", *args, "--runs-dir", runs, "-q")
    finally:
        train_mod.Trainer.commit_epoch = real
    assert r.exit_code == (130 if stop_after else 0), r.stderr
    return [p for p in runs.iterdir() if p.is_dir()][-1]


CURVES = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")


def curves(folder):
    return [{k: r[k] for k in CURVES} for r in rundir.read_history(folder / "history.csv")]


def test_augmented_run_resumed_equals_the_uninterrupted_one(cli_run, tiny_data, tmp_path):
    """Every augmentation layer draws from (seed, epoch): stopped after epoch 2 and resumed, the
    run's curves and final weights equal those of the run left alone."""
    args = [CONFIGS / "cnn_small_adam.yaml", "training.epochs=4", "training.batch_size=32",
            "augment={rotation: 15, translation: 0.1, zoom: 0.1, shear: 0.1, elastic: 0.5}"]
    alone = _train(cli_run, tmp_path / "alone", *args)
    cut = _train(cli_run, tmp_path / "cut", *args, stop_after=2)
    assert len(rundir.read_history(cut / "history.csv")) == 2
    r = cli_run("train", "--resume", cut, "-q")
    assert r.exit_code == 0, r.stderr
    assert curves(cut) == curves(alone)
    a, b = (rundir.read_json(f / "metrics.json") for f in (alone, cut))
    assert a["test_loss"] == b["test_loss"]
    # and the augmentation did something: without it the same run learns differently
    plain = _train(cli_run, tmp_path / "plain", *args[:-1])
    assert curves(plain) != curves(alone)


def test_early_stopping_restores_the_best_epoch_and_survives_a_resume(cli_run, real_data, tmp_path):
    """USPS perceptron with a bar no later epoch can clear (min_delta 0.5): it stops after
    `patience` epochs past epoch 1 and ends with epoch 1's weights, also when interrupted on the way."""
    args = [CONFIGS / "slp_sgd.yaml", "dataset.name=usps", "training.epochs=20",
            "training.early_stopping={patience: 2, min_delta: 0.5}"]
    alone = _train(cli_run, tmp_path / "alone", *args)
    rows = rundir.read_history(alone / "history.csv")
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    m = rundir.read_json(alone / "metrics.json")
    assert m["early_stopping"] == {"monitor": "val_accuracy", "patience": 2, "min_delta": 0.5, "best_epoch": 1,
                                   "stopped_epoch": 3, "restored_best": True}
    assert m["val_accuracy"] == rows[0]["val_accuracy"] and m["epochs"] == 3
    r = cli_run("evaluate", alone, "--split", "val")
    assert r.exit_code == 0, r.stderr
    ev = rundir.read_json(alone / "eval-val" / "metrics.json")
    assert ev["val_accuracy"] == pytest.approx(rows[0]["val_accuracy"], abs=1e-6)  # epoch 1's weights, not 3's
    assert not (alone / "checkpoint").exists()

    cut = _train(cli_run, tmp_path / "cut", *args, stop_after=2)
    r = cli_run("train", "--resume", cut, "-q")
    assert r.exit_code == 0, r.stderr
    assert curves(cut) == curves(alone)
    assert rundir.read_json(cut / "metrics.json")["test_loss"] == m["test_loss"]
