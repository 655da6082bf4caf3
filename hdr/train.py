"""The training loop: data in, a complete run folder out.

Order matters for the promise that bad input leaves nothing behind: the config is validated,
the data loaded and the model built before the run folder is created. After that, every
epoch is committed as checkpoint -> history.csv -> run.json, each written atomically, so an
interruption at any moment leaves a folder that `hdr train --resume` can continue.
"""

from __future__ import annotations

import errno
import math
import os
import signal
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hdr import config as config_mod
from hdr import data as data_mod
from hdr import rundir
from hdr.backend import cpu_has_native_bf16, describe, quiet_import
from hdr.errors import STOP_SIGNALS, HdrError, Stopped, UsageError, exit_code_for_signal

CKPT_DIR = "checkpoint"


class Diverged(HdrError):
    pass


class Interrupted(Stopped):
    def __init__(self, signum: int, folder: Path, epochs: int = 0):
        self.folder = folder
        kept = f"epochs 1-{epochs} are kept" if epochs else "no epoch was completed"
        super().__init__(f"stopped by {signal.Signals(signum).name}; {kept} in {folder}; "
                         f"resume with: hdr train --resume {folder}", signum)


@dataclass
class Prepared:
    cfg: config_mod.Config
    data: data_mod.Data
    train: data_mod.Split
    val: data_mod.Split | None


def prepare(cfg: config_mod.Config, quiet: bool = False, val_indices=None) -> Prepared:
    """Load the data and split off validation: seeded and stratified by default, or exactly the
    training-set rows in val_indices (cross-validation folds)."""
    data = data_mod.load(cfg.dataset.name, verify=os.environ.get("HDR_NO_VERIFY") != "1", quiet=quiet)
    if val_indices is not None:
        mask = np.ones(len(data.train.y), bool)
        mask[np.asarray(val_indices)] = False
        train = data_mod.Split(data.train.x[mask], data.train.y[mask])
        val = data_mod.Split(data.train.x[~mask], data.train.y[~mask])
    else:
        train, val = data_mod.split_validation(data.train, cfg.dataset.validation_split, cfg.training.seed)
    return Prepared(cfg, data, train, val)


@contextmanager
def precision(cfg: config_mod.Config):
    """The config's dtype policy while a model is built or loaded. Layers keep the policy they
    were made with, so the global one is put back at once: later models in the same process
    (cv folds, sweeps, tests) must not inherit it."""
    keras = quiet_import()
    previous = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(cfg.training.precision)
    try:
        yield
    finally:
        keras.mixed_precision.set_dtype_policy(previous)


def seed_everything(seed: int) -> None:
    keras = quiet_import()
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        # Same config + seed -> same history on this machine.
        tf.config.experimental.enable_op_determinism()


def _progress(total: int, epoch: int, epochs: int, quiet: bool):
    if quiet:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=f"epoch {epoch}/{epochs}", unit="batch", file=sys.stderr,
                leave=True, dynamic_ncols=True, mininterval=0.5, disable=None)  # None: off when not a terminal


def _make_callback(keras, run: "Trainer"):
    class RunCallback(keras.callbacks.Callback):
        """Progress bar, divergence check, stop-on-signal, and the per-epoch commit."""

        def on_epoch_begin(self, epoch, logs=None):
            seed_epoch(self.model, run.cfg.training.seed, epoch)
            run.epoch_started = time.perf_counter()
            run.bar = _progress(run.steps_per_epoch, epoch + 1, run.cfg.training.epochs, run.quiet)

        def on_train_batch_end(self, batch, logs=None):
            logs = logs or {}
            loss = logs.get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                run.diverged_at = run.current_epoch()
                self.model.stop_training = True
            if run.signal_received is not None:
                self.model.stop_training = True
            if run.bar is not None:
                done = min(run.steps_per_epoch, batch + 1) - run.bar.n
                if done > 0:
                    run.bar.update(done)
                if loss is not None:
                    run.bar.set_postfix(loss=f"{float(loss):.4f}", acc=f"{float(logs.get('accuracy', 0)):.4f}",
                                        refresh=False)

        def on_epoch_end(self, epoch, logs=None):
            if run.bar is not None:
                run.bar.close()
                run.bar = None
            if run.signal_received is not None or run.diverged_at is not None:
                return  # a partial epoch is never recorded
            run.commit_epoch(epoch + 1, logs or {}, self.model)

    return RunCallback()


class Trainer:
    def __init__(self, prepared: Prepared, folder: Path, run: rundir.RunInfo, quiet: bool):
        self.p = prepared
        self.cfg = prepared.cfg
        self.folder = folder
        self.run = run
        self.quiet = quiet
        self.history = rundir.read_history(folder / "history.csv")
        self.bar = None
        self.signal_received: int | None = None
        self.diverged_at: int | None = None
        self.epoch_started = time.perf_counter()
        n = len(prepared.train.y)
        self.steps_per_epoch = max(1, math.ceil(n / self.cfg.training.batch_size))

    def current_epoch(self) -> int:
        return len(self.history) + 1

    # --- signals -------------------------------------------------------------------------
    def _on_signal(self, signum, frame):
        if self.signal_received is not None:
            # Second signal: leave at once. Every file on disk is already whole.
            try:
                self.run.finish("interrupted", reason=f"{signal.Signals(signum).name} (immediate)")
                for tmp in [*self.folder.glob(".*.tmp"), *self.folder.glob(f"{CKPT_DIR}/.*.tmp.keras")]:
                    tmp.unlink(missing_ok=True)  # a write cut short: the real file is still the old one
            finally:
                os._exit(exit_code_for_signal(signum))
        self.signal_received = signum
        if not self.quiet:
            print(f"\n{signal.Signals(signum).name}: stopping after the current "
                  f"{self.cfg.training.steps_per_execution} batches, keeping every completed epoch "
                  "(again to stop at once)", file=sys.stderr)

    def install_signal_handlers(self):
        self._old = {s: signal.signal(s, self._on_signal) for s in STOP_SIGNALS}

    def restore_signal_handlers(self):
        for s, h in getattr(self, "_old", {}).items():
            signal.signal(s, h)

    # --- per-epoch commit ----------------------------------------------------------------
    def commit_epoch(self, epoch: int, logs: dict, model) -> None:
        keras = quiet_import()
        lr = model.optimizer.learning_rate
        row = {
            "epoch": epoch,
            "loss": _f(logs.get("loss")),
            "accuracy": _f(logs.get("accuracy")),
            "val_loss": _f(logs.get("val_loss")),
            "val_accuracy": _f(logs.get("val_accuracy")),
            "learning_rate": _f(keras.ops.convert_to_numpy(lr)),
            "seconds": round(time.perf_counter() - self.epoch_started, 3),
        }
        ckpt = self.folder / CKPT_DIR
        ckpt.mkdir(exist_ok=True)
        save_model(model, ckpt / f"epoch-{epoch:04d}.keras")
        self.history.append(row)
        rundir.write_history(self.folder / "history.csv", self.history)
        self.run.update(epochs_completed=epoch)
        for old in ckpt.glob("epoch-*.keras"):
            if old.name != f"epoch-{epoch:04d}.keras":
                old.unlink(missing_ok=True)
        if not self.quiet:
            parts = [f"loss {row['loss']:.4f}", f"accuracy {row['accuracy']:.4f}"]
            if row["val_accuracy"] is not None:
                parts += [f"val_loss {row['val_loss']:.4f}", f"val_accuracy {row['val_accuracy']:.4f}"]
            print(f"epoch {epoch}/{self.cfg.training.epochs}: " + ", ".join(parts) + f" ({row['seconds']:.1f}s)",
                  file=sys.stderr)

    # --- the loop ------------------------------------------------------------------------
    def fit(self, model) -> None:
        keras = quiet_import()
        val = self.p.val
        start = len(self.history)
        model.fit(
            epoch_batches(keras, self.p.train, self.cfg.training.batch_size, self.cfg.training.seed, start),
            epochs=self.cfg.training.epochs,
            initial_epoch=start,
            shuffle=False,  # the batches shuffle themselves; Keras would reorder them from Python's RNG
            validation_data=(val.x, val.y) if val is not None else None,
            validation_batch_size=self.cfg.training.eval_batch_size,
            verbose=0,
            callbacks=[_make_callback(keras, self)],
        )


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order of the n training examples in this epoch: a function of (seed, epoch) alone."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def epoch_batches(keras, data: data_mod.Split, batch_size: int, seed: int, first_epoch: int):
    """The training set in batches, shuffled anew every epoch by epoch_order.

    hdr shuffles itself instead of fit(shuffle=True) because Keras's shuffle cannot be resumed
    (its random stream is not in the checkpoint) and, on TensorFlow with a global seed, repeats
    the first epoch's order in every epoch. One fit call over this dataset costs the same as
    Keras's own shuffling; a fit call per epoch cost ~0.35 s an epoch (BENCHMARKS.md)."""

    class EpochBatches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()  # one worker, no multiprocessing: batches are read in order
            self.epoch = first_epoch
            self.order = epoch_order(seed, first_epoch, len(data.y))

        def __len__(self):
            return math.ceil(len(data.y) / batch_size)

        def __getitem__(self, i):
            rows = self.order[i * batch_size:(i + 1) * batch_size]
            return data.x[rows], data.y[rows]

        def on_epoch_end(self):
            self.epoch += 1
            self.order = epoch_order(seed, self.epoch, len(data.y))

    return EpochBatches()


def seed_epoch(model, seed: int, epoch: int) -> None:
    """Make this epoch's dropout masks a function of (seed, epoch): each random layer's own seed
    generator, whose state .keras files do not keep. (Not the global seed: resetting it on
    TensorFlow every epoch costs more than the epoch itself on small datasets.)"""
    keras = quiet_import()
    base = int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0] >> 1)  # < 2**31
    for i, layer in enumerate(model.layers):
        gen = getattr(layer, "seed_generator", None)
        if gen is not None:
            gen.state.assign(keras.ops.convert_to_tensor([(base + i) % 2**31, 0], dtype=gen.state.dtype))


def _f(v):
    if v is None:
        return None
    return float(v)


def save_model(model, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    model.save(tmp)
    os.replace(tmp, path)


def _finalize(trainer: Trainer, model, t0: float) -> dict:
    cfg, p, folder = trainer.cfg, trainer.p, trainer.folder
    bs = cfg.training.eval_batch_size
    test_loss, test_acc = model.evaluate(p.data.test.x, p.data.test.y, batch_size=bs, verbose=0)
    hist = trainer.history
    last = hist[-1] if hist else {}
    metrics = {
        "dataset": cfg.dataset.name,
        "epochs": len(hist),
        "train_loss": last.get("loss"),
        "train_accuracy": last.get("accuracy"),
        "val_loss": last.get("val_loss"),
        "val_accuracy": last.get("val_accuracy"),
        "test_loss": float(test_loss),
        "test_accuracy": float(test_acc),
        "test_error_rate": 1.0 - float(test_acc),
        "params": int(model.count_params()),
        "train_size": int(len(p.train.y)),
        "val_size": int(len(p.val.y)) if p.val is not None else 0,
        "test_size": int(len(p.data.test.y)),
        "train_seconds": round(sum(r["seconds"] or 0 for r in hist), 3),
        "wall_seconds": rundir.elapsed(t0),
    }
    vals = [(r["val_accuracy"], r["epoch"]) for r in hist if r.get("val_accuracy") is not None]
    if vals:
        best = max(vals, key=lambda t: (t[0], -t[1]))
        metrics["best_val_accuracy"], metrics["best_epoch"] = best
    from hdr.plots import training_curves

    training_curves(hist, folder, trainer.run.info.get("config_name", ""))
    save_model(model, folder / "model.keras")
    rundir.write_json(folder / "metrics.json", metrics)
    return metrics


def _build(cfg, input_shape, steps_per_epoch):
    from hdr import models

    with precision(cfg):
        model = models.build(cfg, input_shape)
        return models.compile_model(model, cfg, steps_per_epoch)


def train(cfg: config_mod.Config, config_name: str, runs_dir: Path, quiet: bool = False,
          extra_info: dict | None = None, val_indices=None) -> Path:
    """Train a validated config into a new run folder; return the folder.

    extra_info is merged into run.json (a sweep or cv id, a fold number); val_indices replaces
    the configured validation split with those training-set rows (cross-validation).
    """
    t0 = time.perf_counter()
    prepared = prepare(cfg, quiet=quiet, val_indices=val_indices)
    seed_everything(cfg.training.seed)
    steps = max(1, math.ceil(len(prepared.train.y) / cfg.training.batch_size))
    model = _build(cfg, prepared.data.input_shape, steps)  # config errors surface before any folder exists

    folder = rundir.create(runs_dir, config_name)
    rundir.atomic_write(folder / "config.yaml", config_mod.dump(cfg))
    from hdr import models

    rundir.atomic_write(folder / "summary.txt", models.summary_text(model))
    info = {
        "dataset": cfg.dataset.name, "model": cfg.model.type, "optimizer": cfg.optimizer.name,
        "epochs_planned": cfg.training.epochs,
        "data_checksums": prepared.data.checksums,
        "runtime": describe(),
    }
    info.update(extra_info or {})
    if not quiet and cfg.training.precision == "mixed_bfloat16" and info["runtime"]["device"] == "cpu" \
            and cpu_has_native_bf16() is False:
        print("hdr: warning: this CPU has no native bfloat16 (AVX-512 BF16 or AMX), so "
              "training.precision=mixed_bfloat16 is emulated and several times slower than float32",
              file=sys.stderr)
    run = rundir.RunInfo.start(folder, config_name=config_name, seed=cfg.training.seed,
                               command=rundir.command_line(), extra=info)
    _run_loop(Trainer(prepared, folder, run, quiet), model, t0)
    return folder


def resume(folder: Path, quiet: bool = False) -> Path:
    """Continue an interrupted or crashed run from its last completed epoch, in place."""
    t0 = time.perf_counter()
    folder = rundir.open_run(folder)
    info = rundir.read_json(folder / "run.json")
    status = rundir.effective_status(info)
    if status == "completed":
        raise UsageError(f"{folder} is already completed ({info.get('epochs_completed')} epochs); nothing to resume")
    if status == "running":
        raise UsageError(f"{folder} is still running (pid {info.get('pid')}); stop it first")
    cfg = config_mod.load_run_config(folder / "config.yaml")
    history = rundir.read_history(folder / "history.csv")
    ckpt = folder / CKPT_DIR / f"epoch-{len(history):04d}.keras"
    if not history or not ckpt.is_file():
        raise UsageError(f"{folder} has no checkpoint of a completed epoch to resume from; start a new run instead")
    prepared = prepare(cfg, quiet=quiet)
    keras = quiet_import()
    seed_everything(cfg.training.seed)  # op determinism; each epoch's draws follow from (seed, epoch)
    try:
        with precision(cfg):
            model = keras.models.load_model(ckpt)
    except Exception as e:
        raise HdrError(f"{ckpt}: cannot load the checkpoint ({type(e).__name__}); the run cannot be resumed") from None
    run = rundir.RunInfo(folder, info)
    resumes = info.get("resumed", []) + [{"at_epoch": len(history), "time": rundir.now_iso(),
                                          "command": rundir.command_line()}]
    run.update(status="running", pid=os.getpid(), ended=None, reason=None, resumed=resumes)
    _run_loop(Trainer(prepared, folder, run, quiet), model, t0)
    return folder


def _run_loop(trainer: Trainer, model, t0: float) -> None:
    run = trainer.run
    trainer.install_signal_handlers()
    try:
        trainer.fit(model)
        if trainer.signal_received is not None:
            run.finish("interrupted", reason=signal.Signals(trainer.signal_received).name)
            raise Interrupted(trainer.signal_received, trainer.folder, len(trainer.history))
        if trainer.diverged_at is not None:
            lr = trainer.cfg.optimizer.learning_rate
            msg = (f"training diverged: the loss became NaN or infinite in epoch {trainer.diverged_at}; "
                   f"try a smaller optimizer.learning_rate (now {lr:g})")
            run.finish("failed", reason=msg, diverged_epoch=trainer.diverged_at)
            raise Diverged(msg)
        metrics = _finalize(trainer, model, t0)
        run.finish("completed", test_accuracy=metrics["test_accuracy"])
    except HdrError:
        raise
    except KeyboardInterrupt:
        run.finish("interrupted", reason="SIGINT")
        raise Interrupted(signal.SIGINT, trainer.folder, len(trainer.history)) from None
    except BaseException as e:
        reason = f"{type(e).__name__}: {e}".strip()
        if isinstance(e, MemoryError):
            reason = "out of memory; try a smaller training.batch_size or model"
        elif isinstance(e, OSError) and e.errno == errno.ENOSPC:
            reason = "disk full; free space and resume with hdr train --resume"
        run.finish("failed", reason=reason[:2000])
        raise HdrError(f"training failed: {reason.splitlines()[0][:300]} (details in {trainer.folder}/run.json)") from e
    finally:
        trainer.restore_signal_handlers()
        if trainer.bar is not None:
            trainer.bar.close()
