"""The plain Keras script a user would write instead of hdr: seed-003 CNN on MNIST.

Baseline for bench/perf/run.py. It is deliberately ordinary: read the four IDX files (in place
of keras.datasets.mnist.load_data(), which would download), scale to float32 / 255, fit with
validation_split=0.2, evaluate on the test set. The only additions are a callback that
records seconds per epoch and one JSON line on stdout for the harness.

    python -m bench.baselines.plain_keras_cnn --epochs 2 --seed 1
    python -m bench.baselines.plain_keras_cnn --until 0.99 --seed 1   # bench/perf/time_to_accuracy.py: stop at 99.0%

With --until, the test set is scored after every epoch and training stops at the first epoch that
reaches the figure (or after --epochs); each epoch's end is recorded in seconds from the script's
start, less the time spent scoring the test set after earlier epochs (a user would score it once).
"""

import argparse
import gzip
import json
import os
import time

T0 = time.perf_counter()
T0_UNIX = time.time()

import numpy as np  # noqa: E402
import keras  # noqa: E402
from keras import layers  # noqa: E402


def load_mnist(folder):
    def idx(name, offset):
        with gzip.open(os.path.join(folder, name), "rb") as f:
            return np.frombuffer(f.read(), np.uint8, offset=offset)

    x_train = idx("train-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28, 1)
    y_train = idx("train-labels-idx1-ubyte.gz", 8)
    x_test = idx("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28, 1)
    y_test = idx("t10k-labels-idx1-ubyte.gz", 8)
    return (x_train, y_train), (x_test, y_test)


class EpochTimer(keras.callbacks.Callback):
    def __init__(self, test=None, until=None):
        super().__init__()
        self.seconds, self.cpu_seconds = [], []
        self.test, self.until = test, until
        self.scoring = 0.0  # seconds spent scoring the test set after epochs (--until only)
        self.ends, self.test_accuracy, self.test_seconds = [], [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.t, self.c = time.perf_counter(), time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.t)
        self.cpu_seconds.append(time.process_time() - self.c)
        if self.until is None:
            return
        self.ends.append(time.perf_counter() - T0 - self.scoring)
        t = time.perf_counter()
        acc = float(self.model.evaluate(*self.test, verbose=0)[1])
        self.test_seconds.append(time.perf_counter() - t)
        self.scoring += self.test_seconds[-1]
        self.test_accuracy.append(acc)
        if acc >= self.until:
            self.model.stop_training = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=10, help="epochs (with --until: at most)")
    ap.add_argument("--until", type=float, default=None, help="stop at the first epoch whose test accuracy reaches this")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", default=os.path.join(os.environ.get("HDR_DATA_DIR", "/work/shared/datasets"), "mnist"))
    args = ap.parse_args()

    keras.utils.set_random_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = load_mnist(args.data)
    x_train = x_train.astype("float32") / 255
    x_test = x_test.astype("float32") / 255

    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(32, 3, activation="relu", kernel_initializer="he_uniform"),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu", kernel_initializer="he_uniform"),
        layers.Conv2D(64, 3, activation="relu", kernel_initializer="he_uniform"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(100, activation="relu", kernel_initializer="he_uniform"),
        layers.Dense(10, activation="softmax", kernel_initializer="he_uniform"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(0.001), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    timer = EpochTimer((x_test, y_test), args.until)
    history = model.fit(x_train, y_train, batch_size=200, epochs=args.epochs, validation_split=0.2,
                        callbacks=[timer], verbose=0)
    test_loss, test_acc = model.evaluate(x_test, y_test, verbose=0)
    extra = {}
    if args.until is not None:
        extra = {"until": args.until, "epoch_end_seconds": timer.ends, "epoch_test_accuracy": timer.test_accuracy,
                 "epoch_test_seconds": timer.test_seconds, "epoch_val_accuracy": history.history["val_accuracy"],
                 "t0_unix": T0_UNIX}
    print(json.dumps({
        "name": "plain_keras_cnn", "epochs": len(timer.seconds), "seed": args.seed, **extra,
        "epoch_seconds": timer.seconds, "epoch_cpu_seconds": timer.cpu_seconds,
        "test_accuracy": float(test_acc), "test_loss": float(test_loss),
        "val_accuracy": history.history["val_accuracy"][-1], "in_process_seconds": time.perf_counter() - T0,
    }))


if __name__ == "__main__":
    main()
