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
    ({**BASE, "trainng": {}}, (), "trainng: unknown key; did you mean training? (allowed keys: dataset, model, "
                                  "optimizer, training, augment)"),
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
    # names where the mistake is: each override here is the culprit, else the file
    assert msg.startswith(f"override {overrides[-1]!r}" if overrides else f"{tmp_path / 'c.yaml'}: "), msg


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


# ---------------------------------------------------------------- where a mistake is, and the near name

@pytest.mark.parametrize("data, overrides, where, expected", [
    (BASE, ("trainng.epochs=3",), "override 'trainng.epochs=3'",
     "trainng: unknown key; did you mean training? (allowed keys: dataset, model, optimizer, training, augment)"),
    ({**BASE, "trainng": {"epochs": 3}}, ("training.epochs=3",), "FILE", "trainng: unknown key; did you mean training?"),
    (BASE, ("training.epochs=2", "training.epohcs=3"), "override 'training.epohcs=3'",
     "training.epohcs: unknown key; did you mean epochs?"),
    (BASE, ("optimizer.learnig_rate=0.1",), "override 'optimizer.learnig_rate=0.1'", "did you mean learning_rate?"),
    (BASE, ("model.conv=[{filters: 4, kernal: 3}]",), "override 'model.conv=[{filters: 4, kernal: 3}]'",
     "model.conv.0.kernal: unknown key; did you mean kernel?"),
    (BASE, ("optimizer.name=adamm",), "override 'optimizer.name=adamm'",
     "unknown optimizer name 'adamm'; did you mean 'adam'? (allowed: 'sgd', 'adam'"),
    ({**BASE, "optimizer": {"name": "adamm"}}, ("optimizer.learning_rate=0.1",), "FILE", "did you mean 'adam'?"),
    (BASE, ("model.type=mpl",), "override 'model.type=mpl'", "unknown model type 'mpl'; did you mean 'mlp'?"),
    (BASE, ("model.activation=rleu",), "override 'model.activation=rleu'",
     "model.activation: 'rleu' is not allowed; did you mean 'relu'?"),
    (BASE, ("dataset.name=mnsit",), "override 'dataset.name=mnsit'",
     "dataset.name: 'mnsit' is not allowed; did you mean 'mnist'? (allowed: 'mnist' or 'usps')"),
    (BASE, ("model={type: mlp, hidden: [8], dropout: [0.1, 0.2]}",), "override 'model={type: mlp, hidden",
     "model.dropout has 2 rates but model.hidden has 1 layers"),
    (BASE, ("model=cnn",), "override 'model=cnn'", "model: must be a mapping"),
    ({**BASE, "model": {"type": "mlp", "dropout": "x"}}, (), "FILE", "model.dropout: 'x' is invalid"),
])
def test_a_mistake_names_where_it_is_and_the_nearest_name(tmp_path, data, overrides, where, expected):
    msg = error_of(tmp_path, data, overrides)
    assert msg.startswith((str(tmp_path / "c.yaml") if where == "FILE" else where)), msg
    assert expected in msg, msg


def test_no_near_name_lists_what_is_allowed(tmp_path):
    msg = error_of(tmp_path, BASE, ["zzz.epochs=1"])
    assert msg.endswith("zzz: unknown key; allowed keys: dataset, model, optimizer, training, augment"), msg


def test_every_key_path_is_settable():
    """key_paths lists what the CLI points an unknown --option to: each one a key of the schema."""
    keys = config.key_paths()
    assert {"training.epochs", "optimizer.learning_rate", "model.hidden", "model.conv.N.filters",
            "training.early_stopping.patience", "augment.rotation", "dataset.validation_split"} <= set(keys)
    assert len(keys) == len(set(keys))
    assert all(k.split(".")[0] in config.Config.model_fields for k in keys)


# ---------------------------------------------------------------- bounded sizes

@pytest.mark.parametrize("override, expected", [
    ("model.hidden=[" + ",".join(["1"] * 20_000) + "]", "model.hidden: 20,000 items, more than hdr accepts (at most 100)"),
    ("model.hidden=[16385]", "model.hidden.0: 16385 is more than hdr accepts (at most 16,384)"),
    ("model.dropout=[" + ",".join(["0.1"] * 101) + "]", "model.dropout: 101 items, more than hdr accepts (at most 100)"),
    ("training.epochs=100000000000000000000",
     "training.epochs: 100000000000000000000 is more than hdr accepts (at most 100,000)"),
    ("training.batch_size=1000001", "training.batch_size: 1000001 is more than hdr accepts (at most 1,000,000)"),
    ("training.eval_batch_size=10000000", "training.eval_batch_size: 10000000 is more than hdr accepts"),
    ("training.steps_per_execution=1000000", "at most 10,000"),
    ("training.early_stopping={patience: 1000000}", "training.early_stopping.patience: 1000000 is more than hdr"),
    ("optimizer.warmup_epochs=1e9", "optimizer.warmup_epochs: 1000000000.0 is more than hdr accepts"),
    ("optimizer.decay_epochs=1e9", "optimizer.decay_epochs: 1000000000.0 is more than hdr accepts"),
])
def test_sizes_no_experiment_needs_are_refused_with_the_limit(tmp_path, override, expected):
    data = {**BASE, "model": {"type": "mlp"}}
    msg = error_of(tmp_path, data, [override])
    assert expected in msg, msg
    assert len(msg) < 400


@pytest.mark.parametrize("model, expected", [
    ({"type": "cnn", "conv": [{"filters": 4}] * 101}, "model.conv: 101 items, more than hdr accepts (at most 100)"),
    ({"type": "cnn", "dense": [8] * 101}, "model.dense: 101 items"),
    ({"type": "cnn", "dense": [100_000]}, "model.dense.0: 100000 is more than hdr accepts (at most 16,384)"),
    ({"type": "cnn", "conv": [{"filters": 10**6}]}, "model.conv.0.filters: 1000000 is more than hdr accepts"),
    ({"type": "cnn", "conv": [{"filters": 4, "kernel": 10**6, "padding": "same"}]},
     "model.conv.0.kernel: 1000000 is more than hdr accepts (at most 64)"),
    ({"type": "cnn", "conv": [{"filters": 4, "stride": 65}]}, "model.conv.0.stride: 65 is more than hdr accepts"),
    ({"type": "cnn", "conv": [{"filters": 4, "pool": 65}]}, "model.conv.0.pool: 65 is more than hdr accepts"),
])
def test_model_sizes_are_bounded(tmp_path, model, expected):
    assert expected in error_of(tmp_path, {**BASE, "model": model})


def test_the_limits_themselves_are_accepted():
    cfg = config.validate({
        **BASE,
        "model": {"type": "mlp", "hidden": [config.MAX_WIDTH] + [1] * (config.MAX_LAYERS - 1),
                  "dropout": [0.0] * config.MAX_LAYERS},
        "training": {"epochs": config.MAX_EPOCHS, "batch_size": config.MAX_BATCH,
                     "eval_batch_size": config.MAX_BATCH, "steps_per_execution": config.MAX_STEPS_PER_EXECUTION,
                     "early_stopping": {"patience": config.MAX_EPOCHS}},
    })
    assert cfg.training.epochs == config.MAX_EPOCHS and len(cfg.model.hidden) == config.MAX_LAYERS
    config.validate({**BASE, "model": {"type": "cnn", "conv": [
        {"filters": config.MAX_WIDTH, "kernel": config.MAX_WINDOW, "stride": config.MAX_WINDOW,
         "pool": config.MAX_WINDOW, "padding": "same"}] * config.MAX_LAYERS}})


def test_the_readme_states_every_limit():
    from tests.conftest import REPO

    text = (REPO / "README.md").read_text()
    reference = text[text.index("## Config reference"):text.index("## Configs and the experiments")]
    for name in ("MAX_LAYERS", "MAX_WIDTH", "MAX_WINDOW", "MAX_EPOCHS", "MAX_BATCH", "MAX_STEPS_PER_EXECUTION"):
        assert f"at most {getattr(config, name):,}" in reference, name
