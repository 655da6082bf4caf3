"""hdr export: a run's model.keras in a standard format (TF SavedModel, ONNX, LiteRT), verified.

Keras writes each format itself (`model.export`; tf2onnx for ONNX, TF's converter for LiteRT).
Nothing is kept unverified: the export is written under a temporary name, run with its own
runtime (the SavedModel's serving signature, ONNX Runtime, the LiteRT interpreter) on the whole
test set of the run's dataset, compared with model.keras image by image, and only then renamed
into place, with its agreement figures beside it in PATH.verification.json.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hdr.core.errors import HdrError, UsageError
from hdr.runs import rundir

EXTRA = "pip install 'hdr[export]'"
BATCH = 1000


@dataclass(frozen=True)
class Format:
    keras_format: str          # model.export(format=...)
    filename: str              # the default name in RUN/export/
    modules: tuple[str, ...]   # what converting and verifying import, beyond TensorFlow
    runtime: str               # what the verification runs it with


FORMATS = {
    "savedmodel": Format("tf_saved_model", rundir.EXPORT_FILES["savedmodel"], (), "tensorflow"),
    "onnx": Format("onnx", rundir.EXPORT_FILES["onnx"], ("tf2onnx", "onnx", "onnxruntime"), "onnxruntime"),
    "litert": Format("litert", rundir.EXPORT_FILES["litert"], ("ai_edge_litert",), "ai-edge-litert"),
}
# Largest difference allowed between a class probability of model.keras and of the export, by
# the model's compute dtype. float32: both run the same float32 math, differing only in the
# order of sums. 16-bit: the export may compute some layers in float32 where Keras rounded each
# layer's output to 8 (bf16) or 11 (fp16) significant bits, i.e. 2^-8 or 2^-11 of a value.
TOLERANCE = {"float32": 1e-4, "float16": 2e-3, "bfloat16": 1e-2}


def default_path(folder: Path, fmt: str) -> Path:
    return Path(folder) / rundir.EXPORT / FORMATS[fmt].filename


def verification_path(path: Path) -> Path:
    return path.with_name(path.name + rundir.VERIFICATION_SUFFIX)


def _check_packages(fmt: str) -> None:
    missing = [m for m in FORMATS[fmt].modules if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(f"--format {fmt} needs {', '.join(missing)}, not installed; install with: {EXTRA}")


def _check_writable(out: Path) -> list[Path]:
    """Folders to create for `out`; a UsageError when it cannot be written there."""
    to_create = []
    p = out.parent
    while not p.exists():
        to_create.append(p)
        p = p.parent
    if not p.is_dir():
        raise UsageError(f"--out {out}: {p} is a file, not a folder")
    if not os.access(p, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out}: {p} is not writable")
    return to_create[::-1]


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _run_savedmodel(path: Path, x: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))  # kept referenced: serve() uses its variables
    return np.concatenate([np.asarray(loaded.serve(x[i:i + BATCH])) for i in range(0, len(x), BATCH)])


def _run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    from hdr.apps.predict import OnnxModel

    model = OnnxModel(path)
    return np.concatenate([model.predict_on_batch(x[i:i + BATCH]) for i in range(0, len(x), BATCH)])


def _run_litert(path: Path, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    probs = []
    for i in range(0, len(x), BATCH):
        chunk = x[i:i + BATCH]
        interpreter.resize_tensor_input(inp["index"], chunk.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(inp["index"], chunk)
        interpreter.invoke()
        probs.append(np.array(interpreter.get_tensor(out["index"])))
    return np.concatenate(probs)


RUNNERS = {"savedmodel": _run_savedmodel, "onnx": _run_onnx, "litert": _run_litert}


def verify(fmt: str, path: Path, x: np.ndarray, y: np.ndarray, reference: np.ndarray, compute_dtype: str) -> dict:
    """Run the export on x and compare with model.keras's probabilities `reference`."""
    t0 = time.perf_counter()
    try:
        probs = np.asarray(RUNNERS[fmt](path, x), np.float32)
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        raise HdrError(f"export verification failed: the {fmt} model did not run ({first}); nothing written") from None
    seconds = time.perf_counter() - t0
    if probs.shape != reference.shape:
        raise HdrError(f"export verification failed: the {fmt} model returned shape {probs.shape}, "
                       f"{rundir.MODEL} {reference.shape}")
    diff = np.abs(probs - reference)
    top_k, top_e = reference.argmax(1), probs.argmax(1)
    tolerance = TOLERANCE.get(compute_dtype, TOLERANCE["float32"])
    # A 16-bit model's two best classes can lie within its own rounding of each other; there the
    # float32 export may rank them the other way. Only such near-ties may disagree.
    ranked = np.sort(reference, axis=1)
    margin = ranked[:, -1] - ranked[:, -2] if reference.shape[1] > 1 else np.ones(len(x))
    near_tie = margin <= 2 * tolerance if compute_dtype != "float32" else np.zeros(len(x), bool)
    return {
        "format": fmt,
        "runtime": FORMATS[fmt].runtime,
        "runtime_version": _version(FORMATS[fmt].runtime),
        "images": int(len(x)),
        "top1_agreement": float((top_k == top_e).mean()) if len(x) else 1.0,
        "top1_disagreements": int((top_k != top_e).sum()),
        "top1_disagreements_beyond_near_ties": int(((top_k != top_e) & ~near_tie).sum()),
        "near_ties": int(near_tie.sum()),
        "max_abs_probability_diff": float(diff.max()) if diff.size else 0.0,
        "mean_abs_probability_diff": float(diff.mean()) if diff.size else 0.0,
        "tolerance": tolerance,
        "compute_dtype": compute_dtype,
        "keras_test_accuracy": float((top_k == y).mean()) if len(x) else None,
        "export_test_accuracy": float((top_e == y).mean()) if len(x) else None,
        "seconds": round(seconds, 3),
    }


def _float32_twin(model):
    """The same model computing in float32: a mixed-precision model (float32 weights, bf16/fp16
    math) rebuilt with float32 policies and the same weights. tf2onnx and LiteRT's built-in ops
    cannot convert bfloat16 math (ONNX Runtime rejects the graph's mixed Mul types; LiteRT would
    need the Flex delegate), and float32 is what the runtimes compute fast on CPUs anyway."""
    import keras

    def f32(o):
        if isinstance(o, dict):
            if o.get("class_name") == "DTypePolicy" and isinstance(o.get("config"), dict):
                return {**o, "config": {**o["config"], "name": "float32"}}
            return {k: f32(v) for k, v in o.items()}
        return [f32(v) for v in o] if isinstance(o, list) else o

    twin = keras.saving.deserialize_keras_object(f32(keras.saving.serialize_keras_object(model)))
    twin.set_weights(model.get_weights())
    return twin


def compute_dtype(model) -> str:
    """float32, or the narrowest compute dtype among the model's layers (mixed precision)."""
    dtypes = {str(getattr(layer.dtype_policy, "compute_dtype", "float32")) for layer in model.layers}
    return next((d for d in ("bfloat16", "float16") if d in dtypes), "float32")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


def export(run: str | Path, fmt: str, out: Path | None = None) -> tuple[Path, dict]:
    """Export run folder `run` as `fmt` to `out` (default RUN/export/<name>), verified.
    Returns the path written and its verification figures."""
    from hdr.core import data

    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")
    folder = rundir.open_run(run)
    info = rundir.read_json(folder / rundir.RUN)
    status = rundir.effective_status(info)
    if status != rundir.COMPLETED or not (folder / rundir.MODEL).is_file():
        raise UsageError(f"{folder} is not a completed run (status: {status}); only a completed run's model is exported")
    _check_packages(fmt)
    if out is not None:
        rundir.refuse_run_owned(out, "--out", allowed=rundir.EXPORT)  # RUN/export/... is export's own
    out = Path(out) if out is not None else default_path(folder, fmt)
    if out.exists() and (out.is_dir() != (fmt == "savedmodel")):
        kind = "a folder" if out.is_dir() else "a file"
        raise UsageError(f"--out {out} is {kind}; a {fmt} export is {'a folder' if fmt == 'savedmodel' else 'a file'}")
    create = _check_writable(out)

    model = rundir.load_model(folder)
    spec = data.get(info.get("dataset"))
    test = data.load(spec.name, quiet=True, recorded_dir=info.get("data_dir")).test
    from hdr.apps.predict import predict_arrays

    x = np.asarray(test.x, np.uint8).reshape(len(test.x), *model.input_shape[1:])
    reference = predict_arrays(model, x)
    if reference.shape[-1] != spec.num_classes:
        raise HdrError(f"{folder}/{rundir.MODEL} has {reference.shape[-1]} outputs, {spec.name} {spec.num_classes} classes")
    dtype = compute_dtype(model)

    import keras

    for p in create:
        p.mkdir(exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp-{secrets.token_hex(4)}{out.suffix}")  # Keras checks the suffix
    tmp_json = verification_path(tmp)
    try:
        signature = [keras.InputSpec(shape=(None, *model.input_shape[1:]), dtype="uint8")]
        try:
            exported = model if dtype == "float32" else _float32_twin(model)
            exported.export(str(tmp), format=FORMATS[fmt].keras_format, verbose=False, input_signature=signature)
        except Exception as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
            raise HdrError(f"{fmt} export failed: {first}") from None
        figures = verify(fmt, tmp, x, test.y, reference, dtype)
        figures.update(run=str(folder), dataset=spec.name, file=str(out),
                       versions={d: _version(d) for d in ("keras", "tensorflow", "tf2onnx", "onnx", "onnxruntime", "ai-edge-litert")
                                 if _version(d)})
        if figures["top1_disagreements_beyond_near_ties"] or figures["max_abs_probability_diff"] > figures["tolerance"]:
            raise HdrError(f"{fmt} export failed verification on {spec.name}'s test set: "
                           f"{figures['top1_disagreements']} top-1 disagreements, largest probability difference "
                           f"{figures['max_abs_probability_diff']:.2e} (allowed {figures['tolerance']:.0e}); nothing written")
        rundir.write_json(tmp_json, figures)
        old = out.with_name(f".{out.name}.old-{secrets.token_hex(4)}")
        if out.is_dir():  # a folder cannot be replaced by one rename: move the old one aside first
            os.replace(out, old)
        os.replace(tmp, out)
        os.replace(tmp_json, verification_path(out))
        _remove(old)
    except BaseException:
        _remove(tmp)
        _remove(tmp_json)
        for p in reversed(create):
            try:
                p.rmdir()
            except OSError:
                pass
        raise
    return out, figures
