"""Importing Keras quietly, and describing the backend and device a run used."""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
import tempfile

from hdr.core.errors import UsageError

# The Keras backends hdr runs on (KERAS_BACKEND): each is also the name of the package pip installs.
BACKENDS = ("tensorflow", "jax", "torch")


def check_backend() -> None:
    """A one-line UsageError for a KERAS_BACKEND that is unknown or not installed, instead of
    Keras's traceback from deep inside its import."""
    name = os.environ.get("KERAS_BACKEND")
    if not name:
        return  # Keras's own choice: ~/.keras/keras.json, else TensorFlow
    if name not in BACKENDS:
        raise UsageError(f"KERAS_BACKEND={name!r} is not a backend hdr runs on; use one of "
                         f"{', '.join(BACKENDS)} (unset: tensorflow)")
    if importlib.util.find_spec(name) is None:
        raise UsageError(f"KERAS_BACKEND={name}, but {name} is not installed in this Python; install it "
                         f"({sys.executable} -m pip install {name}) or unset KERAS_BACKEND to use tensorflow")


def quiet_import():
    """Import keras with TensorFlow's C++ start-up chatter silenced."""
    if "keras" in sys.modules:
        return sys.modules["keras"]
    check_backend()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # TensorFlow's C++ logger writes to fd 2 before any Python setting applies; hold fd 2
    # aside during the import and replay it only if the import fails.
    saved = os.dup(2)
    # Keras imports scikit-learn, when it is installed, for wrappers hdr never uses: a fifth of
    # `import keras` (1.4 of 7 CPU-seconds here; BENCHMARKS.md, "Time to 99 %"). Hidden during the
    # import only: a later `import sklearn` in the process works as usual.
    hide = "sklearn" not in sys.modules
    if hide:
        sys.modules["sklearn"] = None
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            import keras
        except BaseException:
            os.dup2(saved, 2)
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if hide and sys.modules.get("sklearn", 0) is None:
                del sys.modules["sklearn"]
    # TensorFlow's Python logger warns about retracing when several models predict in one
    # process (hdr ensemble, sweeps' reused workers): expected there, and noise to a user.
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    return keras


def describe() -> dict:
    keras = quiet_import()
    backend = keras.backend.backend()
    info = {"keras": keras.__version__, "backend": backend}
    device = "cpu"
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            info["tensorflow"] = tf.__version__
            gpus = tf.config.list_physical_devices("GPU")
            device = f"gpu ({len(gpus)}x)" if gpus else "cpu"
        elif backend == "jax":
            import jax

            info["jax"] = jax.__version__
            d = jax.devices()[0]
            device = f"{d.platform} ({getattr(d, 'device_kind', '')})"
        elif backend == "torch":
            import torch

            info["torch"] = torch.__version__
            device = f"cuda ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "cpu"
    except Exception:  # describing the device must never stop a run
        pass
    info["device"] = device
    info["cpu"] = platform.processor() or platform.machine()
    info["cpu_count"] = os.cpu_count()
    return info


def cpu_has_native_bf16() -> bool | None:
    """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX); None where it cannot be
    told (not Linux). Without it, mixed_bfloat16 is emulated and several times slower."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return None
    return "avx512_bf16" in flags or "amx_bf16" in flags
