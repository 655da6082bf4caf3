"""Model builders: every type and every shipped config on 28x28 and 16x16 input."""

from __future__ import annotations

import numpy as np
import pytest

from hdr.engine import config
from hdr.engine import models
from hdr.core.errors import UsageError
from tests.conftest import CONFIGS

SHAPES = [(28, 28, 1), (16, 16, 1)]


def cfg_of(model: dict, optimizer="adam"):
    return config.validate({"dataset": {"name": "mnist"}, "model": model, "optimizer": {"name": optimizer}})


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_configs_build_for_both_sizes(path, shape):
    cfg = config.load(path)
    m = models.build(cfg, shape)
    assert m.input_shape == (None, *shape)
    assert m.output_shape == (None, 10)
    x = np.random.default_rng(0).integers(0, 256, size=(3, *shape), dtype=np.uint8)
    p = np.asarray(m.predict(x, verbose=0))
    assert p.shape == (3, 10)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)


def test_slp_has_784x10_weights():
    m = models.build(cfg_of({"type": "slp"}), (28, 28, 1))
    assert m.count_params() == 784 * 10 + 10
    assert models.build(cfg_of({"type": "slp"}), (16, 16, 1)).count_params() == 256 * 10 + 10


def test_seed_003_cnn_parameter_count():
    # The seed's own model summary reports 159,254 parameters.
    assert models.build(config.load(CONFIGS / "cnn_adam.yaml"), (28, 28, 1)).count_params() == 159254


def test_seed_004_dropout_mlp_layers():
    m = models.build(config.load(CONFIGS / "mlp_dropout_adam.yaml"), (28, 28, 1))
    kinds = [type(layer).__name__ for layer in m.layers]
    assert kinds.count("Dropout") == 2 and kinds.count("Dense") == 3
    assert m.count_params() == 784 * 512 + 512 + 512 * 512 + 512 + 512 * 10 + 10


def test_leaky_relu_and_initializer_are_applied():
    cfg = cfg_of({"type": "cnn", "activation": "leaky_relu", "leaky_relu_slope": 0.1,
                  "initializer": "he_uniform", "conv": [{"filters": 4, "kernel": 5, "pool": 2}], "dense": [8]})
    m = models.build(cfg, (16, 16, 1))
    leaky = [layer for layer in m.layers if type(layer).__name__ == "LeakyReLU"]
    assert len(leaky) == 2 and all(abs(float(layer.negative_slope) - 0.1) < 1e-9 for layer in leaky)
    conv = [layer for layer in m.layers if type(layer).__name__ == "Conv2D"][0]
    assert type(conv.kernel_initializer).__name__ == "HeUniform"


def test_per_layer_dropout_rates():
    m = models.build(cfg_of({"type": "mlp", "hidden": [16, 16], "dropout": [0.1, 0.4]}), (28, 28, 1))
    rates = [layer.rate for layer in m.layers if type(layer).__name__ == "Dropout"]
    assert rates == [0.1, 0.4]


def test_too_deep_cnn_for_16x16_is_a_config_error():
    blocks = [{"filters": 4, "kernel": 3, "pool": 2}] * 3
    cfg = cfg_of({"type": "cnn", "conv": blocks})
    models.build(cfg, (28, 28, 1))  # 28 -> 13 -> 5 -> 1: fits
    with pytest.raises(UsageError, match=r"model\.conv\.2\.(kernel|pool)"):
        models.build(cfg, (16, 16, 1))  # 16 -> 7 -> 2 -> does not fit


# A value other than Keras's default for every optimizer argument hdr's configs have: what the
# user wrote must reach the optimizer (a builder that fell back on Keras's defaults would pass
# with the defaults).
NOT_DEFAULT = {"learning_rate": 0.0123, "clipnorm": 2.5, "momentum": 0.5, "nesterov": True, "beta_1": 0.8,
               "beta_2": 0.99, "epsilon": 1e-5, "amsgrad": True, "weight_decay": 0.02,
               "initial_accumulator_value": 0.25, "rho": 0.8, "centered": True, "ema_momentum": 0.95}


@pytest.mark.parametrize("name", config.OPTIMIZERS)
def test_every_optimizer_builds_with_the_configured_values(name):
    # The schedule's own keys are tested with the schedules (tests/test_recipes.py).
    fields = set(config.OPTIMIZERS[name].model_fields) - {"name", "schedule", "warmup_epochs", "decay_rate",
                                                          "decay_epochs"}
    assert fields <= set(NOT_DEFAULT), f"give {sorted(fields - set(NOT_DEFAULT))} a test value"
    given = {k: NOT_DEFAULT[k] for k in fields}
    cfg = config.validate({"dataset": {"name": "mnist"}, "model": {"type": "slp"},
                           "optimizer": {"name": name, **given}})
    opt = models.build_optimizer(cfg, steps_per_epoch=10)
    assert type(opt).__name__.lower() == name
    assert float(np.asarray(opt.learning_rate)) == pytest.approx(0.0123, rel=1e-6)
    for key in fields - {"learning_rate"}:
        assert getattr(opt, key) == pytest.approx(given[key]), key
    assert opt.use_ema
    # and with nothing given, Keras's own defaults (hdr.engine.config writes them out; test_config checks them)
    default = models.build_optimizer(cfg_of({"type": "slp"}, optimizer=name), steps_per_epoch=10)
    assert float(np.asarray(default.learning_rate)) == pytest.approx(0.01 if name == "sgd" else 0.001)


def test_cosine_schedule_with_warmup():
    cfg = config.validate({"dataset": {"name": "mnist"}, "model": {"type": "slp"},
                           "optimizer": {"name": "sgd", "learning_rate": 0.1, "schedule": "cosine",
                                         "warmup_epochs": 1}, "training": {"epochs": 4}})
    opt = models.build_optimizer(cfg, steps_per_epoch=10)
    sched = opt._learning_rate
    assert float(sched(0)) == pytest.approx(0.0, abs=1e-6)
    assert float(sched(10)) == pytest.approx(0.1, rel=1e-3)
    assert float(sched(40)) == pytest.approx(0.0, abs=1e-3)
