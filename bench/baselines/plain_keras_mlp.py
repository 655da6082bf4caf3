"""The plain Keras script a user would write instead of hdr: seed-004 512-512 dropout MLP on MNIST.

Baseline for bench/perf/run.py; same shape as plain_keras_cnn.py (float32 / 255 data, fit with
validation_split=0.2, evaluate on test, one JSON line on stdout).

    python -m bench.baselines.plain_keras_mlp --epochs 2 --seed 1
"""

import argparse
import json
import os
import time

T0 = time.perf_counter()

import keras  # noqa: E402
from keras import layers  # noqa: E402

from bench.baselines.plain_keras_cnn import EpochTimer, load_mnist  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=31)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--hdr-split", action="store_true",
                    help="validate on hdr's stratified, seeded 20%% instead of the file's last 20%% "
                         "(to tell the split's effect on accuracy from hdr's own)")
    ap.add_argument("--data", default=os.path.join(os.environ.get("HDR_DATA_DIR", "/work/shared/datasets"), "mnist"))
    args = ap.parse_args()

    keras.utils.set_random_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = load_mnist(args.data)
    x_train = x_train.reshape(-1, 784).astype("float32") / 255
    x_test = x_test.reshape(-1, 784).astype("float32") / 255

    model = keras.Sequential([
        keras.Input((784,)),
        layers.Dense(512, activation="relu"),
        layers.Dropout(0.3),
        layers.Dense(512, activation="relu"),
        layers.Dropout(0.3),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(0.001), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    timer = EpochTimer()
    split = {"validation_split": 0.2}
    if args.hdr_split:
        from hdr.core.data import Split, split_validation

        train, val = split_validation(Split(x_train, y_train), 0.2, args.seed)
        (x_train, y_train), split = (train.x, train.y), {"validation_data": (val.x, val.y)}
    history = model.fit(x_train, y_train, batch_size=128, epochs=args.epochs, callbacks=[timer], verbose=0,
                        **split)
    test_loss, test_acc = model.evaluate(x_test, y_test, verbose=0)
    print(json.dumps({
        "name": "plain_keras_mlp", "epochs": args.epochs, "seed": args.seed,
        "epoch_seconds": timer.seconds, "epoch_cpu_seconds": timer.cpu_seconds,
        "test_accuracy": float(test_acc), "test_loss": float(test_loss),
        "val_accuracy": history.history["val_accuracy"][-1], "in_process_seconds": time.perf_counter() - T0,
    }))


if __name__ == "__main__":
    main()
