"""Model builders: one function per model type, all taking uint8 images of any size.

Scaling to [0, 1] is the model's first layer, so data stays uint8 in memory and a saved
model takes raw pixels.
"""

from __future__ import annotations

import math

from hdr.core.backend import quiet_import

keras = quiet_import()
from keras import layers  # noqa: E402

from hdr.core import data as data_mod
from hdr.engine.config import CNN, MLP, SLP, Augment, Config
from hdr.core.errors import UsageError


def _activation(name: str, slope: float):
    if name == "leaky_relu":
        return layers.LeakyReLU(negative_slope=slope)
    return layers.Activation(name)


def _head(x, initializer, classes: int):
    # float32 softmax even under mixed precision: keeps the loss numerically sound.
    return layers.Dense(classes, activation="softmax", kernel_initializer=initializer,
                        dtype="float32", name="digits")(x)


@keras.saving.register_keras_serializable("hdr")
class RandomShear(layers.RandomShear):
    """Keras's RandomShear, loadable: its get_config writes the factors as (-f, f) ranges that its
    own constructor then refuses (Keras 3.15), so no saved model with shear could be read back."""

    @classmethod
    def from_config(cls, config):
        for k in ("x_factor", "y_factor"):
            if isinstance(config.get(k), (list, tuple)):
                config[k] = max(abs(v) for v in config[k])
        return super().from_config(config)


def augmentation(a: Augment) -> keras.Sequential:
    """Training-only random changes to images scaled to [0, 1] (Keras's preprocessing layers pass
    images through untouched at inference). Empty space is background (0). float32 even under
    mixed precision."""
    fill = {"fill_mode": "constant", "fill_value": 0.0, "dtype": "float32"}
    steps = []
    if a.rotation:
        steps.append(layers.RandomRotation(a.rotation / 360, **fill))
    if a.translation:
        steps.append(layers.RandomTranslation(a.translation, a.translation, **fill))
    if a.zoom:
        steps.append(layers.RandomZoom((-a.zoom, a.zoom), **fill))
    if a.shear:
        steps.append(RandomShear(a.shear, a.shear, **fill))
    if a.elastic:
        steps.append(layers.RandomElasticTransform(factor=1.0, scale=a.elastic, value_range=(0, 1), **fill))
    return keras.Sequential(steps, name="augment")


def build_slp(m: SLP, x, classes: int):
    return _head(layers.Flatten()(x), m.initializer, classes)


def build_mlp(m: MLP, x, classes: int):
    x = layers.Flatten()(x)
    rates = m.dropout if isinstance(m.dropout, list) else [m.dropout] * len(m.hidden)
    for units, rate in zip(m.hidden, rates):
        x = layers.Dense(units, kernel_initializer=m.initializer, use_bias=not m.batch_norm)(x)
        if m.batch_norm:
            x = layers.BatchNormalization()(x)
        x = _activation(m.activation, m.leaky_relu_slope)(x)
        if rate:
            x = layers.Dropout(rate)(x)
    return _head(x, m.initializer, classes)


def build_cnn(m: CNN, x, classes: int):
    size = tuple(x.shape[1:3])
    for i, block in enumerate(m.conv):
        if x.shape[1] < block.kernel and block.padding == "valid":
            raise UsageError(
                f"model.conv.{i}.kernel: {block.kernel}x{block.kernel} does not fit the {x.shape[1]}x{x.shape[2]} "
                f"feature map of a {size[0]}x{size[1]} input; use padding: same or a smaller kernel")
        x = layers.Conv2D(block.filters, block.kernel, strides=block.stride, padding=block.padding,
                          kernel_initializer=m.initializer, use_bias=not block.batch_norm)(x)
        if block.batch_norm:
            x = layers.BatchNormalization()(x)
        x = _activation(block.activation, m.leaky_relu_slope)(x)
        if block.pool:
            if x.shape[1] < block.pool or x.shape[2] < block.pool:
                raise UsageError(
                    f"model.conv.{i}.pool: the feature map is {x.shape[1]}x{x.shape[2]} before this "
                    f"{block.pool}x{block.pool} pooling, too small for {size[0]}x{size[1]} input; "
                    "use fewer blocks, padding: same, or smaller kernels")
            x = layers.MaxPooling2D(block.pool)(x)
        if block.dropout:
            x = layers.Dropout(block.dropout)(x)
    x = layers.Flatten()(x)
    for units in m.dense:
        x = layers.Dense(units, kernel_initializer=m.initializer)(x)
        x = _activation(m.activation, m.leaky_relu_slope)(x)
        if m.dropout:
            x = layers.Dropout(m.dropout)(x)
    return _head(x, m.initializer, classes)


BUILDERS = {SLP: build_slp, MLP: build_mlp, CNN: build_cnn}  # one per hdr.engine.config.MODEL_TYPES


def build(cfg: Config, input_shape) -> keras.Model:
    """The model a config describes, for uint8 images of input_shape (h, w, 1) and the classes
    of the config's dataset: scaling to [0, 1], the training-time augmentation, then the type's
    layers."""
    inputs = keras.Input(shape=tuple(input_shape), name="pixels")
    x = layers.Rescaling(1.0 / 255, name="scale")(inputs)
    if cfg.augment.active():
        x = augmentation(cfg.augment)(x)
    outputs = BUILDERS[type(cfg.model)](cfg.model, x, data_mod.get(cfg.dataset.name).num_classes)
    return keras.Model(inputs, outputs, name=cfg.model.type)


# ---------------------------------------------------------------- learning-rate schedules

@keras.saving.register_keras_serializable(package="hdr")
class WarmUp(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to where `after` starts, then `after`, shifted by the warm-up."""

    def __init__(self, after, warmup_steps: int):
        self.after = after
        self.warmup_steps = warmup_steps

    def _after(self, step):
        return self.after(step) if callable(self.after) else keras.ops.cast(self.after, "float32")

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        start = self._after(keras.ops.zeros_like(step))
        later = self._after(keras.ops.maximum(step - self.warmup_steps, 0.0))
        return keras.ops.where(step < self.warmup_steps, start * step / self.warmup_steps, later)

    def get_config(self):
        after = (keras.optimizers.schedules.serialize(self.after)
                 if isinstance(self.after, keras.optimizers.schedules.LearningRateSchedule) else self.after)
        return {"after": after, "warmup_steps": self.warmup_steps}

    @classmethod
    def from_config(cls, config):
        after = config["after"]
        if isinstance(after, dict):
            after = keras.optimizers.schedules.deserialize(after)
        return cls(after, config["warmup_steps"])


@keras.saving.register_keras_serializable(package="hdr")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """Smith's one-cycle policy: linear from peak/25 up to peak over warmup_steps, then cosine
    down to peak/25000 at total_steps."""

    def __init__(self, peak: float, total_steps: int, warmup_steps: int):
        self.peak, self.total_steps, self.warmup_steps = peak, total_steps, warmup_steps

    def __call__(self, step):
        ops = keras.ops
        step = ops.cast(step, "float32")
        start, end = self.peak / 25, self.peak / 25000
        up = start + (self.peak - start) * step / max(1, self.warmup_steps)
        t = ops.clip((step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps), 0.0, 1.0)
        down = end + (self.peak - end) * 0.5 * (1 + ops.cos(3.141592653589793 * t))
        return ops.where(step < self.warmup_steps, up, down)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps}


def _exponential(o, total: int, warmup: int, steps_per_epoch: int, staircase: bool = False):
    return keras.optimizers.schedules.ExponentialDecay(
        o.learning_rate, decay_steps=max(1, round(o.decay_epochs * steps_per_epoch)), decay_rate=o.decay_rate,
        staircase=staircase)


def _cosine(o, total: int, warmup: int, steps_per_epoch: int):
    # Keras's own warm-up, as hdr has always run cosine: runs made before stay reproducible.
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else o.learning_rate, decay_steps=max(1, total - warmup),
        warmup_target=o.learning_rate if warmup else None, warmup_steps=warmup)


SCHEDULES = {  # one per hdr.engine.config.SCHEDULES: (optimizer config, total, warm-up, steps an epoch) -> schedule
    "constant": lambda o, total, warmup, spe: o.learning_rate,
    "cosine": _cosine,
    "exponential": _exponential,
    "step": lambda o, total, warmup, spe: _exponential(o, total, warmup, spe, staircase=True),
    "onecycle": lambda o, total, warmup, spe: OneCycle(o.learning_rate, total, warmup or round(0.3 * total)),
}
_OWN_WARMUP = {"cosine", "onecycle"}


def build_optimizer(cfg: Config, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The Keras optimizer of the config's class name (hdr.engine.config.OPTIMIZERS), with its arguments."""
    o = cfg.optimizer
    args = o.model_dump(exclude={"name", "schedule", "warmup_epochs", "learning_rate", "decay_rate",
                                 "decay_epochs", "ema_momentum"})
    for key in ("clipnorm", "weight_decay"):
        if args.get(key) is None:
            args.pop(key, None)
    if o.ema_momentum is not None:
        args.update(use_ema=True, ema_momentum=o.ema_momentum)
    total = max(1, cfg.training.epochs * steps_per_epoch)
    warmup = int(o.warmup_epochs * steps_per_epoch)
    lr = SCHEDULES[o.schedule](o, total, warmup, steps_per_epoch)
    if warmup and o.schedule not in _OWN_WARMUP:
        lr = WarmUp(lr, warmup)
    return getattr(keras.optimizers, type(o).__name__)(learning_rate=lr, **args)


@keras.saving.register_keras_serializable(package="hdr")
class SmoothedCrossentropy(keras.losses.Loss):
    """Cross-entropy against integer labels smoothed towards the uniform distribution."""

    def __init__(self, smoothing: float, classes: int, name="smoothed_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.smoothing, self.classes = smoothing, classes

    def call(self, y_true, y_pred):
        y = keras.ops.one_hot(keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32"), self.classes)
        return keras.losses.categorical_crossentropy(y, y_pred, label_smoothing=self.smoothing)

    def get_config(self):
        return {**super().get_config(), "smoothing": self.smoothing, "classes": self.classes}


def loss_for(cfg: Config):
    if not cfg.training.label_smoothing:
        return "sparse_categorical_crossentropy"
    return SmoothedCrossentropy(cfg.training.label_smoothing, data_mod.get(cfg.dataset.name).num_classes)


# ---------------------------------------------------------------- batches per call into the backend

# A stop (Ctrl-C) is seen between calls into the backend, so one call should take at most ~0.5 s.
# Training costs about 3 forward passes; a 2-core CPU trains at ~9e9 multiply-adds a second
# (configs/cnn_adam.yaml: ~0.35 s a batch of 200), a GPU a hundred times that or more.
CALL_BUDGET_MACS = {"cpu": 4e9, "gpu": 4e11}
MAX_AUTO_STEPS = 16  # more gains next to nothing even for the smallest models (BENCHMARKS.md)


def forward_macs(model: keras.Model) -> int:
    """Multiply-adds of one example's forward pass through the convolutions and dense layers (nearly
    all of the work): each kernel weight once per output position."""
    total = 0
    for layer in _flat(model.layers):
        kernel = getattr(layer, "kernel", None)
        if kernel is not None:
            positions = math.prod(d or 1 for d in layer.output.shape[1:-1])  # Dense: 1; Conv2D: h x w
            total += math.prod(kernel.shape) * positions
    return total


def _flat(layers_):
    for layer in layers_:
        yield from _flat(layer.layers) if hasattr(layer, "layers") else (layer,)


def auto_steps_per_execution(model: keras.Model, batch_size: int, device: str = "cpu") -> int:
    """As many batches per call (1 to MAX_AUTO_STEPS) as fit the device's call budget."""
    budget = CALL_BUDGET_MACS["cpu" if device.startswith("cpu") else "gpu"]  # describe()'s device
    per_batch = 3 * max(1, forward_macs(model)) * batch_size
    return int(min(MAX_AUTO_STEPS, max(1, budget // per_batch)))


def steps_per_execution(model: keras.Model, cfg: Config, device: str = "cpu") -> int:
    """The config's training.steps_per_execution, or for auto the model's own."""
    spe = cfg.training.steps_per_execution
    return auto_steps_per_execution(model, cfg.training.batch_size, device) if spe == "auto" else spe


def compile_model(model: keras.Model, cfg: Config, steps_per_epoch: int, device: str = "cpu") -> keras.Model:
    model.compile(
        optimizer=build_optimizer(cfg, steps_per_epoch),
        loss=loss_for(cfg),
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution(model, cfg, device),
    )
    return model


def summary_text(model: keras.Model) -> str:
    lines: list[str] = []
    model.summary(print_fn=lambda s, **_: lines.append(s), line_length=90)
    return "\n".join(lines) + "\n"
