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
import shutil
import signal
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hdr.core import numbers
from hdr.engine import config as config_mod
from hdr.core import data as data_mod
from hdr.runs import rundir
from hdr.runs.history import best_val, early_stop
from hdr.core.backend import cpu_has_native_bf16, describe, quiet_import
from hdr.core.errors import STOP_SIGNALS, HdrError, Stopped, after_hangup, exit_code_for_signal

keras = quiet_import()


class Diverged(HdrError):
    pass


class Pruned(HdrError):
    """A hook (a search's pruner) ended the run early; the run is recorded as pruned."""

    def __init__(self, folder: Path, reason: str):
        self.folder = folder
        super().__init__(f"{folder} was pruned: {reason}")


class Interrupted(Stopped):
    def __init__(self, signum: int, folder: Path, epochs: int = 0):
        self.folder = folder
        kept = {0: "no epoch was completed", 1: "epoch 1 is kept"}.get(epochs, f"epochs 1-{epochs} are kept")
        super().__init__(f"stopped by {signal.Signals(signum).name}; {kept} in {folder}; "
                         f"resume with: hdr train --resume {folder}", signum)


@dataclass
class Prepared:
    cfg: config_mod.Config
    data: data_mod.Data
    train: data_mod.Split
    val: data_mod.Split | None

    @property
    def steps_per_epoch(self) -> int:
        return steps_per_epoch(len(self.train.y), self.cfg.training.batch_size)


def steps_per_epoch(n: int, batch_size: int) -> int:
    return max(1, math.ceil(n / batch_size))  # the last, partial batch included


def prepare(cfg: config_mod.Config, quiet: bool = False, info: dict | None = None, recorded_dir=None) -> Prepared:
    """Load the data and split off validation: seeded and stratified by default, or, for a run
    whose run.json fields (info) name a cross-validation fold, exactly the training-set rows that
    fold holds out (rundir.held_out_rows), whether the run is new or resumed. recorded_dir: where
    a resumed run found its data (hdr.core.data.data_dir)."""
    data = data_mod.load(cfg.dataset.name, quiet=quiet, recorded_dir=recorded_dir)
    held_out = rundir.held_out_rows(info or {}, data.train.y)
    if held_out is not None:
        mask = np.ones(len(data.train.y), bool)
        mask[np.asarray(held_out)] = False
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
    previous = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(cfg.training.precision)
    try:
        yield
    finally:
        keras.mixed_precision.set_dtype_policy(previous)


def seed_everything(seed: int) -> None:
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        # Same config + seed -> same history on this machine.
        tf.config.experimental.enable_op_determinism()


def _progress(total: int, epoch: int, epochs: int, quiet: bool):
    if quiet:
        return None
    from tqdm import tqdm

    try:  # a terminal that reports no size (0x0: a bare pty, some CI and IDE consoles) makes tqdm hide the bar
        sized = os.get_terminal_size(sys.stderr.fileno()).lines > 0
    except (OSError, ValueError, AttributeError):
        sized = True  # not a terminal: disable=None turns the bar off anyway
    return tqdm(total=total, desc=f"epoch {epoch}/{epochs}", unit="batch", file=sys.stderr,
                leave=True, dynamic_ncols=sized, ncols=None if sized else 80, nrows=None if sized else 24,
                mininterval=0.5, disable=None)  # None: off when not a terminal


class _EpochAbandoned(Exception):
    """Raised from inside fit to skip the validation pass of an epoch that is never committed."""


class RunCallback(keras.callbacks.Callback):
    """Per epoch: the epoch's draws from (seed, epoch), a progress bar, the divergence and
    signal checks, and the commit of a completed epoch."""

    def __init__(self, trainer: "Trainer", feed: "EpochFeed"):
        super().__init__()
        self.trainer, self.feed = trainer, feed
        self.bar = None
        self.diverged_at: int | None = None
        self.started = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        t = self.trainer
        self.feed.start_epoch(epoch)
        seed_epoch(self.model, t.cfg.training.seed, epoch)
        self.started = time.perf_counter()
        self.bar = _progress(t.steps_per_epoch, epoch + 1, t.cfg.training.epochs, t.quiet)

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        loss = logs.get(rundir.LOSS)
        if loss is not None and not math.isfinite(float(loss)):
            self.diverged_at = self.trainer.current_epoch()
            self.model.stop_training = True
        if self.trainer.signal_received is not None:
            self.model.stop_training = True
        if self.bar is not None:
            done = min(self.trainer.steps_per_epoch, batch + 1) - self.bar.n
            if done > 0:
                self.bar.update(done)
            if loss is not None:
                self.bar.set_postfix(loss=numbers.loss(float(loss)), acc=numbers.percent(float(logs.get(rundir.ACCURACY, 0))),
                                     refresh=False)

    def abandoned(self) -> bool:
        """A signal or a divergence ends this epoch uncommitted."""
        return self.trainer.signal_received is not None or self.diverged_at is not None

    def on_test_begin(self, logs=None):
        if self.abandoned():
            raise _EpochAbandoned  # a stop waits for no validation pass it would throw away

    def on_epoch_end(self, epoch, logs=None):
        self.close_bar()
        if self.abandoned():
            return  # a partial epoch is never recorded
        logs = {**(logs or {}), rundir.SECONDS: time.perf_counter() - self.started}
        self.trainer.commit_epoch(epoch + 1, logs, self.model)
        if self.trainer.should_stop():
            self.model.stop_training = True

    def close_bar(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class Trainer:
    def __init__(self, prepared: Prepared, folder: Path, run: rundir.RunInfo, quiet: bool, hooks=()):
        self.p = prepared
        self.cfg = prepared.cfg
        self.folder = folder
        self.run = run
        self.quiet = quiet
        self.history = rundir.read_history(folder / rundir.HISTORY)
        self.signal_received: int | None = None
        self.diverged_at: int | None = None
        self.steps_per_epoch = prepared.steps_per_epoch
        self.steps_per_execution = run.info.get(rundir.STEPS_PER_EXECUTION, self.cfg.training.steps_per_execution)
        # Called with (epoch, history row) after each committed epoch; a hook that returns a
        # reason ends the run as pruned (hdr tune's pruner), others only watch (TensorBoard).
        self.hooks = list(hooks)
        self.pruned: str | None = None

    def early_stop(self) -> tuple[int | None, bool]:
        es = self.cfg.training.early_stopping
        if es is None or not self.history:
            return None, False
        return early_stop(self.history, es.monitor, es.patience, es.min_delta)

    def should_stop(self) -> bool:
        return self.early_stop()[1] or self.pruned is not None

    def current_epoch(self) -> int:
        return len(self.history) + 1

    # --- signals -------------------------------------------------------------------------
    def _on_signal(self, signum, frame):
        if self.signal_received is not None:
            # Second signal: leave at once. Every file on disk is already whole.
            try:
                self.run.finish(rundir.INTERRUPTED, reason=f"{signal.Signals(signum).name} (immediate)")
                rundir.drop_partial_writes(self.folder)  # a write cut short: the real file is still the old one
            finally:
                os._exit(exit_code_for_signal(signum))
        self.signal_received = signum
        after_hangup(signum)
        if not self.quiet:
            n = self.steps_per_execution
            print(f"\n{signal.Signals(signum).name}: stopping after the current "
                  f"{'batch' if n == 1 else f'{n} batches'}, keeping every completed epoch "
                  "(again to stop at once)", file=sys.stderr)

    def install_signal_handlers(self):
        self._old = {s: signal.signal(s, self._on_signal) for s in STOP_SIGNALS}

    def restore_signal_handlers(self):
        for s, h in getattr(self, "_old", {}).items():
            signal.signal(s, h)

    # --- per-epoch commit ----------------------------------------------------------------
    def commit_epoch(self, epoch: int, logs: dict, model) -> None:
        lr = model.optimizer.learning_rate
        row = {
            rundir.EPOCH: epoch,
            rundir.LOSS: _f(logs.get(rundir.LOSS)),
            rundir.ACCURACY: _f(logs.get(rundir.ACCURACY)),
            rundir.VAL_LOSS: _f(logs.get(rundir.VAL_LOSS)),
            rundir.VAL_ACCURACY: _f(logs.get(rundir.VAL_ACCURACY)),
            rundir.LEARNING_RATE: _f(keras.ops.convert_to_numpy(lr)),
            rundir.SECONDS: round(logs[rundir.SECONDS], 3),
        }
        ckpt = self.folder / rundir.CHECKPOINTS
        ckpt.mkdir(exist_ok=True)
        save_model(model, ckpt / rundir.checkpoint_name(epoch))
        self.history.append(row)
        rundir.write_history(self.folder / rundir.HISTORY, self.history)
        self.run.update(epochs_completed=epoch)
        keep = {epoch}
        best, stop = self.early_stop()
        if best is not None and self.cfg.training.early_stopping.restore_best:
            keep.add(best)  # its weights end the run
        for old in ckpt.glob(rundir.CHECKPOINT_GLOB):
            if old.name not in {rundir.checkpoint_name(e) for e in keep}:
                old.unlink(missing_ok=True)
        for hook in self.hooks:
            reason = hook(epoch, row)
            if reason and self.pruned is None:
                self.pruned = reason
        if not self.quiet:
            parts = [f"loss {numbers.loss(row[rundir.LOSS])}", f"accuracy {numbers.percent(row[rundir.ACCURACY])}"]
            if row[rundir.VAL_ACCURACY] is not None:
                parts += [f"val_loss {numbers.loss(row[rundir.VAL_LOSS])}",
                          f"val_accuracy {numbers.percent(row[rundir.VAL_ACCURACY])}"]
            print(f"epoch {epoch}/{self.cfg.training.epochs}: " + ", ".join(parts) + f" ({row[rundir.SECONDS]:.1f}s)",
                  file=sys.stderr)
            if stop:
                print(f"early stopping: no improvement of {self.cfg.training.early_stopping.monitor} since epoch "
                      f"{best}", file=sys.stderr)

    # --- the loop ------------------------------------------------------------------------
    def fit(self, model) -> None:
        t, val = self.cfg.training, self.p.val
        start = len(self.history)
        feed = EpochFeed(self.p.train, t.batch_size, t.seed, start)
        callback = RunCallback(self, feed)
        callbacks = [callback]
        if self.cfg.optimizer.ema_momentum is not None:
            # validate (and so choose epochs) with the averaged weights the run ends with
            callbacks.insert(0, keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
        if self.should_stop():
            return  # a resumed run whose last committed epoch already decided to stop
        try:
            model.fit(
                feed.data,
                epochs=t.epochs,
                initial_epoch=start,
                shuffle=False,  # the feed shuffles; Keras would reorder a PyDataset's batches
                validation_data=(val.x, val.y) if val is not None else None,
                validation_batch_size=t.eval_batch_size,
                verbose=0,
                callbacks=callbacks,
            )
        except _EpochAbandoned:
            pass
        finally:
            callback.close_bar()
            self.diverged_at = callback.diverged_at


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order of the n training examples in this epoch: a function of (seed, epoch) alone."""
    return np.random.default_rng([seed, epoch]).permutation(n)


class EpochFeed:
    """The training set for fit, in batches of batch_size, in epoch_order(seed, epoch) for the
    epoch named by start_epoch (RunCallback calls it when each epoch begins).

    hdr shuffles itself instead of fit(shuffle=True) because Keras's shuffle cannot be resumed
    (its random stream is not in the checkpoint) and, on TensorFlow with a global seed, repeats
    the first epoch's order in every epoch. On TensorFlow the batches come from a tf.data
    pipeline built once that gathers the rows inside TensorFlow: Keras runs a PyDataset through
    tf.data's from_generator, which cost ~2.4 million page faults and a fifth of the CPU time
    in system calls per CNN epoch (BENCHMARKS.md, section 1). Other backends read a PyDataset
    directly."""

    def __init__(self, data: data_mod.Split, batch_size: int, seed: int, first_epoch: int):
        self.seed, self.n = seed, len(data.y)
        steps = steps_per_epoch(self.n, batch_size)
        order = epoch_order(seed, first_epoch, self.n)
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            self._order = tf.Variable(order, trainable=False)
            x, y = tf.constant(data.x), tf.constant(data.y)

            def batch(i):
                # Read when the batch is made: fit makes each epoch's iterator after on_epoch_begin.
                rows = self._order[i * batch_size:(i + 1) * batch_size]
                return tf.gather(x, rows), tf.gather(y, rows)

            self.data = tf.data.Dataset.range(steps).map(batch).prefetch(2)
        else:
            self._order = order
            self.data = _Batches(data, batch_size, steps, self)

    def start_epoch(self, epoch: int) -> None:
        # Told by on_epoch_begin, not counted in PyDataset.on_epoch_end: Keras also calls that
        # once before the first epoch (the feed before this one trained epoch e on e + 1's order).
        order = epoch_order(self.seed, epoch, self.n)
        if isinstance(self._order, np.ndarray):
            self._order = order
        else:
            self._order.assign(order)


class _Batches(keras.utils.PyDataset):
    def __init__(self, data: data_mod.Split, batch_size: int, steps: int, feed: EpochFeed):
        super().__init__()  # one worker, no multiprocessing: batches are read in order
        self.data, self.batch_size, self.steps, self.feed = data, batch_size, steps, feed

    def __len__(self):
        return self.steps

    def __getitem__(self, i):
        rows = self.feed._order[i * self.batch_size:(i + 1) * self.batch_size]
        return self.data.x[rows], self.data.y[rows]


def seed_epoch(model, seed: int, epoch: int) -> None:
    """Make this epoch's dropout masks a function of (seed, epoch): each random layer's own seed
    generator, whose state .keras files do not keep. (Not the global seed: resetting it on
    TensorFlow every epoch costs more than the epoch itself on small datasets.)"""
    base = int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0] >> 1)  # < 2**31
    for i, layer in enumerate(_layers(model.layers)):
        # Dropout keeps its generator as seed_generator, the augmentation layers as generator.
        for gen in (v for v in vars(layer).values() if isinstance(v, keras.random.SeedGenerator)):
            gen.state.assign(keras.ops.convert_to_tensor([(base + i) % 2**31, 0], dtype=gen.state.dtype))


def _layers(layers):
    """Layers in order, those of nested models (the augmentation block) in their place."""
    for layer in layers:
        if hasattr(layer, "layers"):
            yield from _layers(layer.layers)
        else:
            yield layer


def _f(v):
    if v is None:
        return None
    return float(v)


def save_model(model, path: Path) -> None:
    with rundir.replacing(path, suffix=".tmp.keras") as tmp:  # Keras wants the .keras ending
        model.save(tmp)


def _finalize(trainer: Trainer, model, t0: float) -> dict:
    cfg, p, folder = trainer.cfg, trainer.p, trainer.folder
    bs = cfg.training.eval_batch_size
    hist = trainer.history
    last = hist[-1] if hist else {}
    es = cfg.training.early_stopping
    stopping, restored = None, False
    if es is not None:
        best, stop = trainer.early_stop()
        restored = bool(es.restore_best and best is not None and best != last.get(rundir.EPOCH))
        if restored:
            model.load_weights(rundir.checkpoint(folder, best))
            if cfg.optimizer.ema_momentum is not None:
                model.optimizer.finalize_variable_values(model.trainable_variables)
            last = hist[best - 1]
        stopping = {"monitor": es.monitor, "patience": es.patience, "min_delta": es.min_delta,
                    rundir.BEST_EPOCH: best, "stopped_epoch": hist[-1][rundir.EPOCH] if stop else None,
                    "restored_best": restored}
    test_loss, test_acc = model.evaluate(p.data.test.x, p.data.test.y, batch_size=bs, verbose=0)
    metrics = {
        "dataset": cfg.dataset.name,
        "epochs": len(hist),
        "train_loss": last.get(rundir.LOSS),
        "train_accuracy": last.get(rundir.ACCURACY),
        rundir.VAL_LOSS: last.get(rundir.VAL_LOSS),
        rundir.VAL_ACCURACY: last.get(rundir.VAL_ACCURACY),
        rundir.TEST_LOSS: float(test_loss),
        rundir.TEST_ACCURACY: float(test_acc),
        "test_error_rate": 1.0 - float(test_acc),
        rundir.PARAMS: int(model.count_params()),
        "train_size": int(len(p.train.y)),
        "val_size": int(len(p.val.y)) if p.val is not None else 0,
        "test_size": int(len(p.data.test.y)),
        rundir.TRAIN_SECONDS: round(sum(r[rundir.SECONDS] or 0 for r in hist), 3),
        "wall_seconds": rundir.elapsed(t0),
        # CPU time of this process (all threads, imports included); of the last one for a resumed run
        "process_cpu_seconds": round(time.process_time(), 1),
    }
    if stopping is not None:
        metrics["early_stopping"] = stopping  # train_* and val_* above are the final weights' epoch
    best, epoch = best_val(hist)
    if best is not None:
        metrics[rundir.BEST_VAL_ACCURACY], metrics[rundir.BEST_EPOCH] = best, epoch
    rundir.training_curves(folder, hist, trainer.run.info.get("config_name", ""))
    if restored or cfg.optimizer.ema_momentum is not None or not hist \
            or not _link_last_checkpoint(folder, hist[-1][rundir.EPOCH]):
        save_model(model, folder / rundir.MODEL)
    rundir.write_metrics(folder, metrics)
    return metrics


def _link_last_checkpoint(folder: Path, epoch: int) -> bool:
    """model.keras as a hard link to the last epoch's checkpoint, which holds the weights and
    optimizer state the run ends with: saving them again cost a short run a tenth of its time in
    a sweep's worker. False where the checkpoint is missing or the disk has no hard links."""
    ckpt, tmp = rundir.checkpoint(folder, epoch), folder / ".model.link.tmp"
    try:
        tmp.unlink(missing_ok=True)
        os.link(ckpt, tmp)
        os.replace(tmp, folder / rundir.MODEL)
        return True
    except OSError:
        tmp.unlink(missing_ok=True)
        return False


def _checkpoint_bytes(folder: Path, model) -> int:
    """About what one more checkpoint takes: the last one's size, or weights and two optimizer
    slots of float32 each."""
    done = sorted((folder / rundir.CHECKPOINTS).glob(rundir.CHECKPOINT_GLOB))
    return done[-1].stat().st_size if done else int(model.count_params()) * 4 * 3


def _build(cfg, input_shape, steps_per_epoch, device="cpu"):
    from hdr.engine import models

    with precision(cfg):
        model = models.build(cfg, input_shape)
        return models.compile_model(model, cfg, steps_per_epoch, device)


def train(cfg: config_mod.Config, config_name: str, runs_dir: Path, quiet: bool = False,
          extra_info: dict | None = None, hooks=()) -> Path:
    """Train a validated config into a new run folder; return the folder.

    extra_info is merged into run.json (a sweep or cv id; a cross-validation fold's fields,
    rundir.fold_fields, which replace the configured validation split with the fold); hooks are
    called after each committed epoch (see Trainer).
    """
    t0 = time.perf_counter()
    prepared = prepare(cfg, quiet=quiet, info=extra_info)
    seed_everything(cfg.training.seed)
    runtime = describe()
    # config errors surface before any folder exists
    model = _build(cfg, prepared.data.input_shape, prepared.steps_per_epoch, runtime["device"])

    folder = rundir.create(runs_dir, config_name)
    rundir.write(folder, rundir.CONFIG, config_mod.dump(cfg))
    from hdr.engine import models

    rundir.write(folder, rundir.SUMMARY, models.summary_text(model))
    info = {
        "dataset": cfg.dataset.name, "model": cfg.model.type, "optimizer": cfg.optimizer.name,
        rundir.EPOCHS_PLANNED: cfg.training.epochs,
        "data_checksums": prepared.data.checksums,
        "data_dir": str(prepared.data.folder),  # later commands on this run find the same files
        "config_fingerprint": config_mod.fingerprint(cfg),  # resume refuses an edited config.yaml
        "runtime": runtime,
        rundir.STEPS_PER_EXECUTION: model.steps_per_execution,  # what training.steps_per_execution: auto chose
    }
    info.update(extra_info or {})
    if not quiet and cfg.training.precision == "mixed_bfloat16" and info["runtime"]["device"] == "cpu" \
            and cpu_has_native_bf16() is False:
        print("hdr: warning: this CPU has no native bfloat16 (AVX-512 BF16 or AMX), so "
              "training.precision=mixed_bfloat16 is emulated and several times slower than float32",
              file=sys.stderr)
    with rundir.owned(folder):
        run = rundir.RunInfo.start(folder, config_name=config_name, seed=cfg.training.seed,
                                   command=rundir.command_line(), extra=info)
        _run_loop(Trainer(prepared, folder, run, quiet, [*hooks, *_tensorboard(cfg, folder, model)]), model, t0)
    return folder


def _tensorboard(cfg: config_mod.Config, folder: Path, model) -> list:
    """The TensorBoard epoch log (hdr.engine.tensorboard_log) as a hook, when training.tensorboard is on;
    off, TensorBoard is not even imported. Opened here, outside _run_loop's error handling, it
    leaves a write it cannot do now (a full disk) to the first epoch's call."""
    if not cfg.training.tensorboard:
        return []
    from hdr.engine import tensorboard_log

    return [tensorboard_log.open_log(folder, model, retry_at_epoch_end=True)]


def resume(folder: Path, quiet: bool = False, hooks=()) -> Path:
    """Continue an interrupted or crashed run from its last completed epoch, in place; or extend a
    completed one whose config.yaml now plans more epochs."""
    t0 = time.perf_counter()
    folder = rundir.open_run(folder)
    with rundir.owned(folder):  # a second `hdr train --resume` of the same run stops here
        _resume(folder, quiet, t0, hooks)
    return folder


def _resume(folder: Path, quiet: bool, t0: float, hooks=()) -> None:
    info, cfg = config_mod.resumable(folder)
    rundir.drop_partial_writes(folder)  # a process killed mid-write left them
    history = rundir.read_history(folder / rundir.HISTORY)
    ckpt = rundir.checkpoint(folder, len(history))
    if rundir.effective_status(info) == rundir.COMPLETED:
        # An extension (config.resumable checked it can be exact): model.keras is the last epoch's
        # weights and optimizer state; as its checkpoint again, a stop before the next epoch resumes too.
        ckpt.parent.mkdir(exist_ok=True)
        with rundir.replacing(ckpt, suffix=".tmp.keras") as tmp:
            shutil.copyfile(folder / rundir.MODEL, tmp)
    prepared = prepare(cfg, quiet=quiet, info=info, recorded_dir=info.get("data_dir"))  # a fold keeps its rows
    from hdr.engine import models  # noqa: F401  (registers hdr's schedules and losses, which checkpoints name)

    seed_everything(cfg.training.seed)  # op determinism; each epoch's draws follow from (seed, epoch)
    try:
        with precision(cfg):
            model = keras.models.load_model(ckpt)
    except Exception as e:
        raise HdrError(f"{ckpt}: cannot load the checkpoint ({type(e).__name__}); the run cannot be resumed") from None
    run = rundir.RunInfo(folder, info)
    resumes = info.get("resumed", []) + [{"at_epoch": len(history), "time": rundir.now_iso(),
                                          "command": rundir.command_line()}]
    run.update(status=rundir.RUNNING, **rundir.this_process(), ended=None, reason=None, resumed=resumes,
               **{rundir.EPOCHS_PLANNED: cfg.training.epochs,  # a resume may extend or shorten the run
                  rundir.STEPS_PER_EXECUTION: model.steps_per_execution})
    _run_loop(Trainer(prepared, folder, run, quiet, [*hooks, *_tensorboard(cfg, folder, model)]), model, t0)


def outcome_line(folder: Path) -> str:
    """What `hdr train` says of a completed run before its folder."""
    m = rundir.read_metrics(folder)
    return (f"test accuracy {numbers.percent(m[rundir.TEST_ACCURACY])}, test loss {numbers.loss(m[rundir.TEST_LOSS])}, "
            f"{m['epochs']} epoch{'s' if m['epochs'] != 1 else ''} in {m[rundir.TRAIN_SECONDS]:.1f}s")


def _run_loop(trainer: Trainer, model, t0: float) -> None:
    run = trainer.run
    trainer.install_signal_handlers()
    try:
        trainer.fit(model)
        if trainer.signal_received is not None:
            run.finish(rundir.INTERRUPTED, reason=signal.Signals(trainer.signal_received).name)
            raise Interrupted(trainer.signal_received, trainer.folder, len(trainer.history))
        if trainer.diverged_at is not None:
            lr = trainer.cfg.optimizer.learning_rate
            msg = (f"training diverged: the loss became NaN or infinite in epoch {trainer.diverged_at}; "
                   f"try a smaller optimizer.learning_rate (now {lr:g})")
            run.finish(rundir.FAILED, reason=msg, diverged_epoch=trainer.diverged_at)
            raise Diverged(msg)
        if trainer.pruned is not None:
            run.pruned(trainer.pruned)
            raise Pruned(trainer.folder, trainer.pruned)
        metrics = _finalize(trainer, model, t0)
        run.finish(rundir.COMPLETED, test_accuracy=metrics[rundir.TEST_ACCURACY])
        # A completed run cannot be resumed: its checkpoint would only double the folder's size.
        shutil.rmtree(trainer.folder / rundir.CHECKPOINTS, ignore_errors=True)
    except HdrError:
        raise
    except KeyboardInterrupt:
        run.finish(rundir.INTERRUPTED, reason="SIGINT")
        raise Interrupted(signal.SIGINT, trainer.folder, len(trainer.history)) from None
    except BaseException as e:
        reason = f"{type(e).__name__}: {e}".strip()
        if isinstance(e, MemoryError):
            reason = "out of memory; try a smaller training.batch_size or model"
        elif isinstance(e, OSError) and e.errno == errno.ENOSPC:
            need = _checkpoint_bytes(trainer.folder, model)
            rundir.drop_partial_writes(trainer.folder)  # what the full disk cut short: give its space back
            reason = (f"disk full: {trainer.folder} is on a disk without room for the next checkpoint (about "
                      f"{need / 1e6:.1f} MB); free space there and resume with: hdr train --resume {trainer.folder}")
        run.finish(rundir.FAILED, reason=reason[:2000])
        raise HdrError(f"training failed: {reason.splitlines()[0][:300]} (details in {trainer.folder}/{rundir.RUN})") from e
    finally:
        trainer.restore_signal_handlers()
