"""Model builders: one function per model type, all taking uint8 images of any size.

Scaling to [0, 1] is the model's first layer, so data stays uint8 in memory and a saved
model takes raw pixels.
"""

from __future__ import annotations

from hdr.backend import quiet_import

keras = quiet_import()
from keras import layers  # noqa: E402

from hdr import data as data_mod
from hdr.config import CNN, MLP, SLP, Config
from hdr.errors import UsageError


def _activation(name: str, slope: float):
    if name == "leaky_relu":
        return layers.LeakyReLU(negative_slope=slope)
    return layers.Activation(name)


def _inputs(input_shape):
    inputs = keras.Input(shape=input_shape, name="pixels")
    return inputs, layers.Rescaling(1.0 / 255, name="scale")(inputs)


def _head(x, initializer, classes: int):
    # float32 softmax even under mixed precision: keeps the loss numerically sound.
    return layers.Dense(classes, activation="softmax", kernel_initializer=initializer,
                        dtype="float32", name="digits")(x)


def build_slp(m: SLP, input_shape, classes: int) -> keras.Model:
    inputs, x = _inputs(input_shape)
    x = layers.Flatten()(x)
    return keras.Model(inputs, _head(x, m.initializer, classes), name="slp")


def build_mlp(m: MLP, input_shape, classes: int) -> keras.Model:
    inputs, x = _inputs(input_shape)
    x = layers.Flatten()(x)
    rates = m.dropout if isinstance(m.dropout, list) else [m.dropout] * len(m.hidden)
    for units, rate in zip(m.hidden, rates):
        x = layers.Dense(units, kernel_initializer=m.initializer)(x)
        x = _activation(m.activation, m.leaky_relu_slope)(x)
        if rate:
            x = layers.Dropout(rate)(x)
    return keras.Model(inputs, _head(x, m.initializer, classes), name="mlp")


def build_cnn(m: CNN, input_shape, classes: int) -> keras.Model:
    inputs, x = _inputs(input_shape)
    for i, block in enumerate(m.conv):
        if x.shape[1] < block.kernel and block.padding == "valid":
            raise UsageError(
                f"model.conv.{i}.kernel: {block.kernel}x{block.kernel} does not fit the {x.shape[1]}x{x.shape[2]} "
                f"feature map of a {input_shape[0]}x{input_shape[1]} input; use padding: same or a smaller kernel")
        x = layers.Conv2D(block.filters, block.kernel, padding=block.padding,
                          kernel_initializer=m.initializer, use_bias=not block.batch_norm)(x)
        if block.batch_norm:
            x = layers.BatchNormalization()(x)
        x = _activation(block.activation, m.leaky_relu_slope)(x)
        if block.pool:
            if x.shape[1] < block.pool or x.shape[2] < block.pool:
                raise UsageError(
                    f"model.conv.{i}.pool: the feature map is {x.shape[1]}x{x.shape[2]} before this "
                    f"{block.pool}x{block.pool} pooling, too small for {input_shape[0]}x{input_shape[1]} input; "
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
    return keras.Model(inputs, _head(x, m.initializer, classes), name="cnn")


BUILDERS = {SLP: build_slp, MLP: build_mlp, CNN: build_cnn}  # one per hdr.config.MODEL_TYPES


def build(cfg: Config, input_shape) -> keras.Model:
    """The model a config describes, for images of input_shape (h, w, 1) and the classes of the
    config's dataset."""
    classes = data_mod.get(cfg.dataset.name).num_classes
    return BUILDERS[type(cfg.model)](cfg.model, tuple(input_shape), classes)


def _constant(lr: float, total_steps: int, warmup_steps: int):
    return lr


def _cosine(lr: float, total_steps: int, warmup_steps: int):
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup_steps else lr, decay_steps=max(1, total_steps - warmup_steps),
        warmup_target=lr if warmup_steps else None, warmup_steps=warmup_steps)


SCHEDULES = {"constant": _constant, "cosine": _cosine}  # one per hdr.config.SCHEDULES


def build_optimizer(cfg: Config, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The Keras optimizer of the config's class name (hdr.config.OPTIMIZERS), with its arguments."""
    o = cfg.optimizer.model_dump(exclude={"name", "schedule", "warmup_epochs", "learning_rate"})
    if o.get("clipnorm") is None:
        o.pop("clipnorm", None)
    total = max(1, cfg.training.epochs * steps_per_epoch)
    warmup = int(cfg.optimizer.warmup_epochs * steps_per_epoch)
    lr = SCHEDULES[cfg.optimizer.schedule](cfg.optimizer.learning_rate, total, warmup)
    return getattr(keras.optimizers, type(cfg.optimizer).__name__)(learning_rate=lr, **o)


def compile_model(model: keras.Model, cfg: Config, steps_per_epoch: int) -> keras.Model:
    model.compile(
        optimizer=build_optimizer(cfg, steps_per_epoch),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=cfg.training.steps_per_execution,
    )
    return model


def summary_text(model: keras.Model) -> str:
    lines: list[str] = []
    model.summary(print_fn=lambda s, **_: lines.append(s), line_length=90)
    return "\n".join(lines) + "\n"
