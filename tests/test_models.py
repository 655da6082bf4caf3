"""Model builders: every type and every shipped config on 28x28 and 16x16 input."""

from __future__ import annotations

import numpy as np
import pytest

from hdr import config
from hdr.errors import UsageError
from tests.conftest import CONFIGS

models = pytest.importorskip("hdr.models")

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


@pytest.mark.parametrize("name", config.OPTIMIZERS)
def test_every_optimizer_builds_with_recorded_values(name):
    cfg = cfg_of({"type": "slp"}, optimizer=name)
    opt = models.build_optimizer(cfg, steps_per_epoch=10)
    assert type(opt).__name__.lower() == name
    assert abs(float(np.asarray(opt.learning_rate)) - cfg.optimizer.learning_rate) < 1e-9


def test_cosine_schedule_with_warmup():
    cfg = config.validate({"dataset": {"name": "mnist"}, "model": {"type": "slp"},
                           "optimizer": {"name": "sgd", "learning_rate": 0.1, "schedule": "cosine",
                                         "warmup_epochs": 1}, "training": {"epochs": 4}})
    opt = models.build_optimizer(cfg, steps_per_epoch=10)
    sched = opt._learning_rate
    assert float(sched(0)) == pytest.approx(0.0, abs=1e-6)
    assert float(sched(10)) == pytest.approx(0.1, rel=1e-3)
    assert float(sched(40)) == pytest.approx(0.0, abs=1e-3)
