"""The plain Keras script a user would write instead of hdr: seed-003 CNN on MNIST.

Baseline for bench/run.py. It is deliberately ordinary: read the four IDX files (in place
of keras.datasets.mnist.load_data(), which would download), scale to float32 / 255, fit with
validation_split=0.2, evaluate on the test set. The only additions are a callback that
records seconds per epoch and one JSON line on stdout for the harness.

    python bench/plain_keras_cnn.py --epochs 2 --seed 1
"""

import argparse
import gzip
import json
import os
import time

T0 = time.perf_counter()

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
    def __init__(self):
        super().__init__()
        self.seconds, self.cpu_seconds = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.t, self.c = time.perf_counter(), time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.t)
        self.cpu_seconds.append(time.process_time() - self.c)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=10)
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
    timer = EpochTimer()
    history = model.fit(x_train, y_train, batch_size=200, epochs=args.epochs, validation_split=0.2,
                        callbacks=[timer], verbose=0)
    test_loss, test_acc = model.evaluate(x_test, y_test, verbose=0)
    print(json.dumps({
        "name": "plain_keras_cnn", "epochs": args.epochs, "seed": args.seed,
        "epoch_seconds": timer.seconds, "epoch_cpu_seconds": timer.cpu_seconds,
        "test_accuracy": float(test_acc), "test_loss": float(test_loss),
        "val_accuracy": history.history["val_accuracy"][-1], "in_process_seconds": time.perf_counter() - T0,
    }))


if __name__ == "__main__":
    main()
