"""The fast paths stay fast and give the same results. No timings are asserted here (the CPUs
are shared and noisy; figures live in BENCHMARKS.md, made by bench/perf/run.py): these tests check
the properties the speed rests on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CONFIGS, REPO

HEAVY = ("tensorflow", "keras", "jax", "torch")

# Runs the CLI in a fresh interpreter and reports which heavy frameworks ended up imported.
PROBE = """
import json, sys
from hdr.cli.main import cli
try:
    cli.main(args=sys.argv[1:], prog_name="hdr", standalone_mode=True)
except SystemExit as e:
    code = e.code
else:
    code = 0
print("PROBE " + json.dumps({"code": code, "heavy": sorted(m for m in %r if m in sys.modules)}))
""" % (HEAVY,)


def probe(*args, env=None) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, *map(str, args)], capture_output=True, text=True,
                         cwd=REPO, env={**os.environ, **(env or {})}, timeout=120)
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("PROBE ")]
    assert line, out.stderr
    return json.loads(line[-1][6:])


def test_help_does_not_import_tensorflow_or_keras():
    r = probe("--help")
    assert r["code"] == 0
    assert r["heavy"] == []


def test_train_help_does_not_import_tensorflow_or_keras():
    r = probe("train", "--help")
    assert r["code"] == 0
    assert r["heavy"] == []


def test_every_lazy_command_imports_and_is_listed_with_its_registered_help():
    """Each lazy command's module imports (a broken one fails here, not silently at run time),
    `hdr --help` lists every command by the help registered for it, and `hdr NAME --help` runs."""
    import importlib

    from click.testing import CliRunner

    from hdr.cli import main as cli

    listing = CliRunner().invoke(cli.cli, ["--help"]).stdout + CliRunner().invoke(cli.cli, ["data", "--help"]).stdout
    for name, (target, short) in cli.LAZY_COMMANDS.items():
        module, attr = target.split(":")
        assert getattr(importlib.import_module(module), attr).callback is not None, target
        assert short[:40] in " ".join(listing.split()), name
    for name in cli.LAZY_COMMANDS:
        r = CliRunner().invoke(cli.cli, [name, "--help"])
        assert r.exit_code == 0 and f"Usage: cli {name}" in r.stdout, r.output


def test_a_lazy_command_whose_module_is_broken_fails_loudly(monkeypatch):
    """A command whose module cannot be imported must not vanish: it is listed, and running it
    shows the import error."""
    from click.testing import CliRunner

    from hdr.cli import main as cli

    monkeypatch.setitem(cli.LAZY_COMMANDS, "broken", ("hdr.no_such_module:command", "A broken command."))
    listed = CliRunner().invoke(cli.cli, ["--help"])
    assert listed.exit_code == 0 and "broken" in listed.stdout
    r = CliRunner().invoke(cli.cli, ["broken"])
    assert r.exit_code != 0 and isinstance(r.exception, ModuleNotFoundError)


def fake_run(folder: Path, lr: float) -> Path:
    from hdr.engine import config
    from hdr.runs import rundir

    cfg = config.load(CONFIGS / "slp_sgd.yaml", [f"optimizer.learning_rate={lr}"])
    folder.mkdir(parents=True)
    rundir.atomic_write(folder / "config.yaml", config.dump(cfg))
    rundir.write_json(folder / "run.json", {"id": folder.name, "status": "completed", "config_name": "slp_sgd",
                                            "pid": 1, "seed": 1, "epochs_completed": 1})
    rundir.write_history(folder / "history.csv", [{"epoch": 1, "loss": 0.5, "accuracy": 0.9, "val_loss": 0.4,
                                                   "val_accuracy": 0.91, "learning_rate": lr, "seconds": 1.0}])
    rundir.write_json(folder / "metrics.json", {"epochs": 1, "test_accuracy": 0.9, "val_accuracy": 0.91,
                                                "test_loss": 0.4, "best_val_accuracy": 0.91, "best_epoch": 1})
    return folder


def test_compare_does_not_import_tensorflow_or_keras(tmp_path):
    a, b = fake_run(tmp_path / "a", 0.01), fake_run(tmp_path / "b", 0.1)
    r = probe("compare", a, b)
    assert r["code"] == 0
    assert r["heavy"] == []


# ------------------------------------------------------------------------ the array cache

def test_unverified_loads_leave_no_cache(tiny_data, tmp_path, monkeypatch):
    from hdr.core import data

    monkeypatch.setenv("HDR_CACHE_DIR", str(tmp_path / "cache"))
    d = data.load("mnist", verify=False)
    assert len(d.train.y) == 300
    assert not (tmp_path / "cache").exists()


@pytest.mark.realdata
def test_cached_arrays_equal_decoded_and_follow_the_files(real_data, tmp_path, monkeypatch):
    import numpy as np

    from hdr.core import data

    cache = tmp_path / "cache"
    monkeypatch.setenv("HDR_CACHE_DIR", str(cache))
    first = data.load("usps")  # decodes, verifies, fills the cache
    entries = [p.name for p in cache.iterdir()]
    assert len(entries) == 1 and entries[0].startswith("usps-")
    again = data.load("usps")  # from the cache
    for a, b in ((first.train.x, again.train.x), (first.train.y, again.train.y),
                 (first.test.x, again.test.x), (first.test.y, again.test.y)):
        assert a.dtype == b.dtype == np.uint8 and np.array_equal(a, b)
    assert again.checksums == first.checksums and len(first.checksums) == 2

    # An entry is keyed by the files' content: a copy elsewhere is served by the same entry, a
    # file whose content changed gets a new one, which replaces the old.
    other = tmp_path / "data" / "usps"
    other.mkdir(parents=True)
    for f in (real_data / "usps").iterdir():
        (other / f.name).write_bytes(f.read_bytes())
    monkeypatch.setenv("HDR_DATA_DIR", str(tmp_path / "data"))
    assert np.array_equal(data.load("usps").train.x, first.train.x)
    assert [p.name for p in cache.iterdir()] == entries
    import dataclasses
    import gzip

    test_file = other / "zip.test.gz"
    lines = gzip.decompress(test_file.read_bytes()).splitlines(keepends=True)
    test_file.write_bytes(gzip.compress(b"".join(lines[:-1])))  # one digit fewer
    monkeypatch.setitem(data.DATASETS, "usps", dataclasses.replace(data.get("usps"), sizes=None))
    third = data.load("usps")
    assert np.array_equal(third.train.x, first.train.x) and len(third.test.y) == len(first.test.y) - 1
    now = [p.name for p in cache.iterdir()]
    assert len(now) == 1 and now != entries

    # A damaged entry is ignored (decoded again), never trusted.
    (cache / now[0] / "train_x.npy").write_bytes(b"not numpy")
    fourth = data.load("usps")
    assert np.array_equal(fourth.train.x, first.train.x)


@pytest.mark.realdata
def test_unwritable_cache_dir_only_costs_speed(real_data, tmp_path, monkeypatch):
    from hdr.core import data

    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("HDR_CACHE_DIR", str(blocker / "cache"))
    d = data.load("usps")
    assert len(d.train.y) == 7291


# ------------------------------------------------------------------------ same results, faster

def history(folder: Path) -> list[dict]:
    from hdr.runs import rundir

    return rundir.read_history(folder / "history.csv")


@pytest.mark.realdata
def test_steps_per_execution_gives_the_same_history(cli_run, real_data, tmp_path):
    """steps_per_execution only changes how many batches run per call into the backend: one
    epoch of the SLP (48 batches of 1000, a learning rate that gets somewhere in 48 steps) must
    give the same numbers at 1 and at 16."""
    out = {}
    for spe in (1, 16):
        r = cli_run("train", CONFIGS / "slp_sgd.yaml", "training.epochs=1", "training.batch_size=1000",
                    "optimizer.learning_rate=0.5", f"training.steps_per_execution={spe}",
                    "--runs-dir", tmp_path / f"spe{spe}", "-q")
        assert r.exit_code == 0, r.stderr
        folder = Path(r.stdout.strip().splitlines()[-1])
        out[spe] = (history(folder), json.loads((folder / "metrics.json").read_text()))
    (h1, m1), (h16, m16) = out[1], out[16]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert h16[0][key] == pytest.approx(h1[0][key], rel=1e-5, abs=1e-6), key
    assert m16["test_accuracy"] == pytest.approx(m1["test_accuracy"], abs=1e-6)
    assert m1["test_accuracy"] > 0.85  # it did learn


@pytest.mark.realdata
def test_bfloat16_stays_in_the_float32_accuracy_band(cli_run, real_data, tmp_path):
    """mixed_bfloat16 changes the numbers slightly, never the outcome: one SLP epoch lands
    within half a point of float32."""
    acc = {}
    for precision in ("float32", "mixed_bfloat16"):
        r = cli_run("train", CONFIGS / "slp_sgd.yaml", "training.epochs=1", "training.batch_size=500",
                    "optimizer.learning_rate=0.5", f"training.precision={precision}",
                    "--runs-dir", tmp_path / precision, "-q")
        assert r.exit_code == 0, r.stderr
        folder = Path(r.stdout.strip().splitlines()[-1])
        acc[precision] = json.loads((folder / "metrics.json").read_text())["test_accuracy"]
    assert acc["float32"] > 0.85
    assert abs(acc["mixed_bfloat16"] - acc["float32"]) <= 0.005


def test_precision_applies_to_the_run_only(cli_run, tiny_data, tmp_path):
    """A bf16 run in this process must leave Keras's global dtype policy as it was: later
    models (the next cv fold, sweep point or caller) are float32 unless they ask otherwise."""
    from hdr.core.backend import quiet_import

    keras = quiet_import()
    r = cli_run("train", CONFIGS / "slp_sgd.yaml", "training.epochs=1", "training.precision=mixed_bfloat16",
                "--runs-dir", tmp_path, "-q")
    assert r.exit_code == 0, r.stderr
    assert keras.mixed_precision.dtype_policy().name == "float32"
    model = keras.models.load_model(Path(r.stdout.strip().splitlines()[-1]) / "model.keras")
    assert any(layer.dtype_policy.name == "mixed_bfloat16" for layer in model.layers)


@pytest.mark.parametrize("native", [True, False])
def test_bf16_on_a_cpu_without_native_bf16_warns(cli_run, tiny_data, tmp_path, monkeypatch, native):
    """Emulated bf16 is several times slower: a user who picks it there is told, once, up front."""
    import hdr.engine.train

    monkeypatch.setattr(hdr.engine.train, "cpu_has_native_bf16", lambda: native)
    r = cli_run("train", CONFIGS / "slp_sgd.yaml", "training.epochs=1", "training.precision=mixed_bfloat16",
                "--runs-dir", tmp_path)
    assert r.exit_code == 0, r.stderr
    assert ("no native bfloat16" in r.stderr) is (not native)


def test_fit_over_the_feed_trains_on_each_epochs_order_across_a_resume():
    """What exact resume and the fast feed rest on: fit over hdr's EpochFeed trains epoch e on
    the batches of epoch_order(seed, e), exactly, also when the run starts at a later epoch, with
    a last partial batch and steps_per_execution not dividing the epoch (11 batches, 4 a call).
    The reference is a fit call per epoch on the rows taken in that order by hand."""
    import numpy as np

    from hdr.engine import train
    from hdr.core.data import Split

    keras = train.keras
    n, bs, seed = 53, 5, 7
    x = (np.arange(n, dtype="float32") / n).reshape(n, 1)
    data = Split(x, 3 * x[:, 0] + 1)

    def model(weights=None):
        m = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, kernel_initializer="zeros")])
        m.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", steps_per_execution=4)
        if weights is not None:
            m.set_weights(weights)
        return m

    def by_hand(orders):
        m, after = model(), []
        for e, o in enumerate(orders):
            m.fit(data.x[o], data.y[o], batch_size=bs, epochs=e + 1, initial_epoch=e, shuffle=False, verbose=0)
            after.append(m.get_weights())
        return after

    def through_feed(first, epochs, weights=None):
        m, feed = model(weights), train.EpochFeed(data, bs, seed, first)
        start = keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: feed.start_epoch(e))
        m.fit(feed.data, epochs=epochs, initial_epoch=first, shuffle=False, verbose=0, callbacks=[start])
        return m.get_weights()

    def same(a, b):
        return all(np.array_equal(u, v) for u, v in zip(a, b))

    expected = by_hand([train.epoch_order(seed, e, n) for e in range(3)])
    assert same(through_feed(0, 3), expected[2])                       # one run, epochs 0-2
    assert same(through_feed(1, 3, expected[0]), expected[2])          # resumed after epoch 0
    assert same(through_feed(2, 3, expected[1]), expected[2])          # resumed after epoch 1
    repeated = by_hand([train.epoch_order(seed, 0, n)] * 3)            # the check can see a repeated order
    assert not same(repeated[2], expected[2])


@pytest.mark.parametrize("config,spe", [("cnn_adam.yaml", 1), ("fast/mnist.yaml", 16), ("fast/usps.yaml", 16),
                                        ("slp_sgd.yaml", 16), ("records/mnist_cnn.yaml", 1)])
def test_auto_steps_per_execution_keeps_one_call_short(config, spe):
    """A stop waits for the call into the backend: auto gives cnn_adam's 0.35 s batches of 200 one a
    call (16 made Ctrl-C take 6 s), while the small fast configs keep the 16 they gain from."""
    from hdr.engine import config as config_mod, models

    cfg = config_mod.load(CONFIGS / config)
    model = models.build(cfg, (28, 28, 1) if cfg.dataset.name == "mnist" else (16, 16, 1))
    assert cfg.training.steps_per_execution == "auto"
    assert models.steps_per_execution(model, cfg) == spe
    assert models.steps_per_execution(model, cfg, "gpu (1x)") == 16  # a GPU runs the call a hundred times faster


def test_auto_steps_per_execution_gives_the_history_of_one_and_is_recorded(cli_run, tiny_data, tmp_path):
    """auto (here 4 a call: the budget of a CPU call over the MLP's work per batch) trains exactly
    as 1 batch a call; run.json says what was used; an explicit value is kept."""
    import yaml

    from hdr.engine import models

    args = [CONFIGS / "mlp_adam.yaml", "model.hidden=[64]", "model.dropout=0.3", "training.epochs=2",
            "training.batch_size=32"]
    per_call = int(models.CALL_BUDGET_MACS["cpu"] // (3 * (784 * 64 + 64 * 10) * 32))
    runs = {}
    for spe in ("auto", 1, 7):
        with pytest.MonkeyPatch.context() as mp:
            # a budget of 4 such batches a call, so auto differs from 1 and from the explicit 7
            mp.setitem(models.CALL_BUDGET_MACS, "cpu", models.CALL_BUDGET_MACS["cpu"] * 4 / per_call)
            r = cli_run("train", *args, f"training.steps_per_execution={spe}", "--runs-dir", tmp_path / str(spe), "-q")
        assert r.exit_code == 0, r.stderr
        runs[spe] = Path(r.stdout.strip().splitlines()[-1])
    used = {spe: json.loads((f / "run.json").read_text())["steps_per_execution"] for spe, f in runs.items()}
    assert used == {"auto": 4, 1: 1, 7: 7}
    assert yaml.safe_load((runs["auto"] / "config.yaml").read_text())["training"]["steps_per_execution"] == "auto"
    drop = lambda rows: [{k: v for k, v in row.items() if k != "seconds"} for row in rows]  # noqa: E731
    assert drop(history(runs["auto"])) == drop(history(runs[1])) == drop(history(runs[7]))
