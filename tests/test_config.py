"""Config loading and validation: every kind of mistake is one clear line naming the key."""

from __future__ import annotations

import inspect

import pytest
import yaml

from hdr.engine import config
from hdr.core.errors import UsageError
from tests.conftest import CONFIGS

BASE = {
    "dataset": {"name": "mnist"},
    "model": {"type": "cnn"},
    "optimizer": {"name": "adam"},
    "training": {"epochs": 1},
}


def write(tmp_path, data, name="c.yaml"):
    p = tmp_path / name
    if isinstance(data, (bytes, str)):
        p.write_bytes(data if isinstance(data, bytes) else data.encode())
    else:
        p.write_text(yaml.safe_dump(data))
    return p


def error_of(tmp_path, data, overrides=()):
    with pytest.raises(UsageError) as e:
        config.load(write(tmp_path, data), list(overrides))
    msg = str(e.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize("path", sorted(CONFIGS.rglob("*.yaml")), ids=lambda p: str(p.relative_to(CONFIGS)))
def test_every_shipped_config_is_valid(path):
    cfg = config.load(path)
    resolved = cfg.resolved()
    # Round trip: the resolved config is itself a valid config describing the same run.
    assert config.validate(yaml.safe_load(config.dump(cfg))).resolved() == resolved


def test_defaults_are_written_out():
    cfg = config.validate(BASE)
    r = cfg.resolved()
    assert r["optimizer"] == {"name": "adam", "learning_rate": 0.001, "schedule": "constant",
                              "warmup_epochs": 0.0, "decay_rate": 0.1, "decay_epochs": 10.0, "clipnorm": None,
                              "weight_decay": None, "ema_momentum": None, "beta_1": 0.9, "beta_2": 0.999,
                              "epsilon": 1e-7, "amsgrad": False}
    assert r["dataset"]["validation_split"] == 0.2
    assert all(block["activation"] == "relu" for block in r["model"]["conv"])
    assert r["training"]["seed"] == 1


@pytest.mark.parametrize("name", config.OPTIMIZERS)
def test_optimizer_defaults_match_keras(name):
    """The defaults hdr writes into a run must be the ones Keras would use."""
    from hdr.core.backend import quiet_import

    keras = quiet_import()
    cls = getattr(keras.optimizers, config.OPTIMIZERS[name].__name__)
    sig = inspect.signature(cls.__init__).parameters
    ours = config.validate({**BASE, "optimizer": {"name": name}}).resolved()["optimizer"]
    # hdr's own keys: the schedule's, and the EMA's momentum (null: Keras's use_ema=False).
    for key, value in ours.items():
        if key in ("name", "schedule", "warmup_epochs", "decay_rate", "decay_epochs", "ema_momentum"):
            continue
        assert key in sig, f"{name}: keras has no argument {key}"
        assert sig[key].default == value, f"{name}.{key}: hdr {value!r} vs keras {sig[key].default!r}"


def test_adadelta_learning_rate_is_recorded():
    r = config.validate({**BASE, "optimizer": {"name": "adadelta"}}).resolved()
    assert r["optimizer"]["learning_rate"] == 0.001
    r = config.load(CONFIGS / "mlp_adadelta.yaml").resolved()
    assert r["optimizer"]["learning_rate"] == 1.0


def test_overrides_by_dotted_path(tmp_path):
    p = write(tmp_path, {**BASE, "model": {"type": "cnn", "conv": [{"filters": 4}]}})
    cfg = config.load(p, ["training.epochs=3", "optimizer.name=sgd", "dataset.validation_split=null",
                          "model.conv.0.filters=8", "model.dense=[32, 16]"])
    assert cfg.training.epochs == 3
    assert cfg.optimizer.name == "sgd" and cfg.optimizer.learning_rate == 0.01
    assert cfg.dataset.validation_split is None
    assert cfg.model.conv[0].filters == 8
    assert cfg.model.dense == [32, 16]


@pytest.mark.parametrize("data, overrides, expected", [
    ({**BASE, "trainng": {}}, (), "trainng: unknown key; allowed keys: dataset, model, optimizer, training"),
    ({**BASE, "model": {"type": "cnn", "layerz": 3}}, (), "model.layerz: unknown key"),
    ({**BASE, "optimizer": {"name": "adam", "momentum": 0.9}}, (), "optimizer.momentum: unknown key"),
    ({**BASE, "optimizer": {"name": "adamm"}}, (), "optimizer.name: unknown optimizer name 'adamm'"),
    ({**BASE, "model": {"type": "rnn"}}, (), "model.type: unknown model type 'rnn'"),
    ({**BASE, "dataset": {"name": "cifar"}}, (), "dataset.name: 'cifar' is not allowed; allowed: 'mnist' or 'usps'"),
    (BASE, ("training.epochs=0",), "training.epochs: 0 is invalid"),
    (BASE, ("training.epochs=-3",), "training.epochs: -3 is invalid"),
    (BASE, ("training.batch_size=0",), "training.batch_size: 0 is invalid"),
    (BASE, ("training.epochs=ten",), "training.epochs: 'ten' is invalid"),
    (BASE, ("training.epochs=2.5",), "training.epochs: 2.5 is invalid"),
    (BASE, ("dataset.validation_split=0",), "dataset.validation_split: 0 is invalid"),
    (BASE, ("dataset.validation_split=1.0",), "dataset.validation_split: 1.0 is invalid"),
    (BASE, ("dataset.validation_split=-0.1",), "dataset.validation_split: -0.1 is invalid"),
    (BASE, ("optimizer.learning_rate=-1",), "optimizer.learning_rate: -1 is invalid"),
    ({**BASE, "model": {"type": "cnn", "conv": [{"filters": 4}]}}, ("model.conv.0.filters=0",),
     "model.conv.0.filters: 0 is invalid"),
    (BASE, ("model.conv.0.filters=0",), "model.conv is not in the config"),
    (BASE, ("model.activation=relu6",), "model.activation: 'relu6' is not allowed"),
    ({k: v for k, v in BASE.items() if k != "optimizer"}, (), "optimizer: required key is missing"),
    ({**BASE, "model": {"hidden": [3]}}, (), "model.type: required key is missing"),
    ({**BASE, "model": "cnn"}, (), "model: must be a mapping"),
    ({**BASE, "model": {"type": "mlp", "hidden": [8, 8], "dropout": [0.1]}}, (), "one rate per hidden layer"),
    (BASE, ("training.epochs",), "is not KEY=VALUE"),
    ({**BASE, "model": {"type": "cnn", "conv": [{"filters": 4}]}}, ("model.conv.9.filters=3",), "index 9 out of range"),
])
def test_invalid_configs_name_the_key(tmp_path, data, overrides, expected):
    msg = error_of(tmp_path, data, overrides)
    assert expected in msg
    assert str(tmp_path) in msg or "override" in msg  # names the file or the override


@pytest.mark.parametrize("content, expected", [
    (b"", "empty"),
    (b"   \n\n", "empty"),
    (b"# only a comment\n", "empty"),
    (b"\x00\x01\x02\xff\xfe binary", "not a text file"),
    (b"dataset: {name: mnist\nmodel: [", "YAML syntax error at line"),
    (b"- a\n- b\n", "must be a mapping"),
    (b"just a string", "must be a mapping"),
])
def test_bad_files(tmp_path, content, expected):
    assert expected in error_of(tmp_path, content)


def test_missing_file(tmp_path):
    with pytest.raises(UsageError, match="config file not found"):
        config.load(tmp_path / "nope.yaml")
