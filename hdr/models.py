"""Model builders: one function per model type, all taking uint8 images of any size.

Scaling to [0, 1] is the model's first layer, so data stays uint8 in memory and a saved
model takes raw pixels.
"""

from __future__ import annotations

from hdr.backend import quiet_import

keras = quiet_import()
from keras import layers  # noqa: E402

from hdr.config import CNN, MLP, SLP, Config
from hdr.errors import UsageError

NUM_CLASSES = 10


def _activation(name: str, slope: float):
    if name == "leaky_relu":
        return layers.LeakyReLU(negative_slope=slope)
    return layers.Activation(name)


def _inputs(input_shape):
    inputs = keras.Input(shape=input_shape, name="pixels")
    return inputs, layers.Rescaling(1.0 / 255, name="scale")(inputs)


def _head(x, initializer):
    # float32 softmax even under mixed precision: keeps the loss numerically sound.
    return layers.Dense(NUM_CLASSES, activation="softmax", kernel_initializer=initializer,
                        dtype="float32", name="digits")(x)


def build_slp(m: SLP, input_shape) -> keras.Model:
    inputs, x = _inputs(input_shape)
    x = layers.Flatten()(x)
    return keras.Model(inputs, _head(x, m.initializer), name="slp")


def build_mlp(m: MLP, input_shape) -> keras.Model:
    inputs, x = _inputs(input_shape)
    x = layers.Flatten()(x)
    rates = m.dropout if isinstance(m.dropout, list) else [m.dropout] * len(m.hidden)
    for units, rate in zip(m.hidden, rates):
        x = layers.Dense(units, kernel_initializer=m.initializer)(x)
        x = _activation(m.activation, m.leaky_relu_slope)(x)
        if rate:
            x = layers.Dropout(rate)(x)
    return keras.Model(inputs, _head(x, m.initializer), name="mlp")


def build_cnn(m: CNN, input_shape) -> keras.Model:
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
    return keras.Model(inputs, _head(x, m.initializer), name="cnn")


BUILDERS = {"slp": build_slp, "mlp": build_mlp, "cnn": build_cnn}


def build(cfg: Config, input_shape) -> keras.Model:
    """The model a config describes, for images of input_shape (h, w, 1)."""
    return BUILDERS[cfg.model.type](cfg.model, tuple(input_shape))


def build_optimizer(cfg: Config, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    o = cfg.optimizer.model_dump()
    name = o.pop("name")
    schedule = o.pop("schedule")
    warmup_epochs = o.pop("warmup_epochs")
    lr = o.pop("learning_rate")
    if schedule == "cosine":
        total = max(1, cfg.training.epochs * steps_per_epoch)
        warmup = int(warmup_epochs * steps_per_epoch)
        lr = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup else lr, decay_steps=max(1, total - warmup),
            warmup_target=lr if warmup else None, warmup_steps=warmup)
    if o.get("clipnorm") is None:
        o.pop("clipnorm", None)
    classes = {
        "sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW,
        "nadam": keras.optimizers.Nadam, "adamax": keras.optimizers.Adamax,
        "adagrad": keras.optimizers.Adagrad, "adadelta": keras.optimizers.Adadelta,
        "rmsprop": keras.optimizers.RMSprop,
    }
    return classes[name](learning_rate=lr, **o)


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
