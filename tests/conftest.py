"""Shared test helpers, one of each: tiny generated datasets, the real datasets when present, and
the in-process CLI runner `cli_run`."""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
# The real MNIST and USPS files: $HDR_TEST_REAL_DATA, else $HDR_DATA_DIR (as the README's test
# command sets it), else ../shared/datasets beside the repository.
REAL_DATA = Path(os.environ.get("HDR_TEST_REAL_DATA") or os.environ.get("HDR_DATA_DIR")
                 or REPO.parent / "shared" / "datasets").resolve()
CONFIGS = REPO / "configs"


def have_real_data() -> bool:
    return (REAL_DATA / "mnist" / "train-images-idx3-ubyte.gz").is_file() and (
        REAL_DATA / "usps" / "zip.train.gz").is_file()


realdata = pytest.mark.skipif(not have_real_data(), reason=f"real datasets not found in {REAL_DATA}")


# ---------------------------------------------------------------- tiny generated datasets

def idx_bytes(arr: np.ndarray) -> bytes:
    arr = np.asarray(arr, dtype=np.uint8)
    header = (0x800 + arr.ndim).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    return header + arr.tobytes()


STYLES = ("blocks", "bars", "noise")


def make_digits(n: int | Sequence[int], size: int, rng: np.random.Generator, style: str = "blocks",
                blank: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Fake digits in a shuffled order. `n`: a number of examples (classes 0-9 dealt in turn) or
    a count per class. `style`:

    - "blocks": learnable at once: class k lights up its own block of the image (pixels 0-39 and
      230), so a few epochs of any model get well above chance;
    - "bars": learnable but noisy: class k is a bright bar whose row follows k (pixels 0-39 and
      200-254), so a small model still makes some mistakes;
    - "noise": not learnable: uniform noise over 0-255, every label equally meaningless.

    `blank`: the first `blank` images are all dark (for the sanity checks of hdr data describe).
    """
    if style not in STYLES:
        raise ValueError(f"style {style!r}: one of {STYLES}")
    if isinstance(n, int):
        y = np.arange(n) % 10
    else:
        y = np.repeat(np.arange(len(n)), n)
    rng.shuffle(y)
    if style == "noise":
        x = rng.integers(0, 256, size=(len(y), size, size)).astype(np.uint8)
    elif style == "bars":
        x = (rng.random((len(y), size, size)) * 40).astype(np.uint8)
        for i, label in enumerate(y):
            row = 2 + int(label) * (size - 5) // 9
            x[i, row: row + 2, 3: size - 3] = 200 + rng.integers(0, 55)
    else:
        x = rng.integers(0, 40, size=(len(y), size, size)).astype(np.uint8)
        cell = size // 4
        for i, label in enumerate(y):
            r, c = divmod(int(label), 4)
            x[i, r * cell:(r + 1) * cell, c * cell:(c + 1) * cell] = 230
    x[:blank] = 0
    return x, y.astype(np.uint8)


def write_tiny_mnist(folder: Path, n_train: int | Sequence[int] = 300, n_test: int | Sequence[int] = 100,
                     seed: int = 0, style: str = "blocks", blank_test: int = 0) -> Path:
    """<folder>/mnist/: the four IDX files, 28x28. Returns `folder`."""
    rng = np.random.default_rng(seed)
    d = Path(folder) / "mnist"
    d.mkdir(parents=True, exist_ok=True)
    for part, n, blank in (("train", n_train, 0), ("t10k", n_test, blank_test)):
        x, y = make_digits(n, 28, rng, style, blank)
        (d / f"{part}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(x)))
        (d / f"{part}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(y)))
    return Path(folder)


def usps_text(x: np.ndarray, y: np.ndarray) -> bytes:
    lines = []
    for img, label in zip(x, y):
        vals = img.reshape(-1).astype(np.float64) / 127.5 - 1.0
        lines.append(f"{float(label):.4f} " + " ".join(f"{v:.4f}" for v in vals))
    return ("\n".join(lines) + "\n").encode()


def write_tiny_usps(folder: Path, n_train: int | Sequence[int] = 200, n_test: int | Sequence[int] = 60,
                    seed: int = 0, style: str = "blocks", blank_test: int = 0) -> Path:
    """<folder>/usps/: zip.train.gz and zip.test.gz in USPS's text format, 16x16. Returns `folder`."""
    rng = np.random.default_rng(seed)
    d = Path(folder) / "usps"
    d.mkdir(parents=True, exist_ok=True)
    for part, n, blank in (("train", n_train, 0), ("test", n_test, blank_test)):
        x, y = make_digits(n, 16, rng, style, blank)
        (d / f"zip.{part}.gz").write_bytes(gzip.compress(usps_text(x, y)))
    return Path(folder)


def write_tiny_data(folder: Path, mnist: tuple | None = (300, 100), usps: tuple | None = (200, 60),
                    seed: int = 0, style: str = "blocks", blank_test: int = 0) -> Path:
    """A data dir of tiny datasets: mnist and usps are (train, test) sizes, each a number of
    examples or a count per class, or None to leave that dataset out. Returns `folder`."""
    if mnist is not None:
        write_tiny_mnist(folder, *mnist, seed=seed, style=style, blank_test=blank_test)
    if usps is not None:
        write_tiny_usps(folder, *usps, seed=seed, style=style, blank_test=blank_test)
    return Path(folder)


def use_data_dir(mp: pytest.MonkeyPatch, folder: Path, verify: bool = False) -> Path:
    """Point hdr at `folder` through `mp` (a monkeypatch, or pytest.MonkeyPatch.context() in a
    wider-scoped fixture). Made-up files cannot match the published checksums: verify=False
    (HDR_NO_VERIFY=1). The array cache goes beside the folder, never into ~/.cache."""
    mp.setenv("HDR_DATA_DIR", str(folder))
    mp.setenv("HDR_CACHE_DIR", str(Path(folder).parent / f"{Path(folder).name}-cache"))
    if verify:
        mp.delenv("HDR_NO_VERIFY", raising=False)
    else:
        mp.setenv("HDR_NO_VERIFY", "1")
    return Path(folder)


@pytest.fixture
def make_tiny_data(tmp_path_factory, monkeypatch):
    """make_tiny_data(mnist=(train, test), usps=(train, test), seed=0, style="blocks", blank_test=0):
    writes a fresh data dir of tiny datasets (see write_tiny_data) and points hdr at it for the test."""

    def make(**kwargs) -> Path:
        return use_data_dir(monkeypatch, write_tiny_data(tmp_path_factory.mktemp("data"), **kwargs))

    return make


@pytest.fixture
def tiny_data(make_tiny_data) -> Path:
    """A data dir with tiny learnable MNIST (300 train, 100 test) and USPS (200, 60) files;
    HDR_DATA_DIR points at it."""
    return make_tiny_data()


@pytest.fixture
def real_data(monkeypatch) -> Path:
    if not have_real_data():
        pytest.skip(f"real datasets not found in {REAL_DATA}")
    monkeypatch.setenv("HDR_DATA_DIR", str(REAL_DATA))
    monkeypatch.delenv("HDR_NO_VERIFY", raising=False)
    return REAL_DATA


# ---------------------------------------------------------------- the CLI, in-process

def run_cli(*args, input: str | None = None, env: dict | None = None):
    """`hdr ARGS...` in-process; click's Result, with .exit_code, .stdout and .stderr apart
    (.output: both, interleaved). hdr reports every error as one line and an exit code, so a
    Python exception other than SystemExit is a bug in hdr: it is raised here, with its own
    traceback and what the command had printed, and fails the test."""
    from click.testing import CliRunner

    from hdr.cli.main import cli

    argv = [str(a) for a in args]
    result = CliRunner().invoke(cli, argv, input=input, env=env, catch_exceptions=True)
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        exc.add_note(f"raised by: hdr {' '.join(argv)}\n--- stdout:\n{result.stdout[-3000:]}"
                     f"\n--- stderr:\n{result.stderr[-3000:]}")
        raise exc.with_traceback(result.exc_info[2])
    return result


@pytest.fixture
def cli_run():
    """run_cli: `cli_run("train", config, "-q")` -> click's Result; an unexpected exception fails the test."""
    return run_cli


@pytest.fixture(scope="session")
def mnist_mlp_run(tmp_path_factory) -> Path:
    """One real MNIST run per test session: a 1-epoch MLP (about 97% test accuracy, ~20 s).
    Used by hdr predict and hdr draw tests, which need a model that reads real digits."""
    import subprocess
    import sys

    if not have_real_data():
        pytest.skip(f"real datasets not found in {REAL_DATA}")
    runs = tmp_path_factory.mktemp("mnist_mlp_runs")
    env = {**os.environ, "HDR_DATA_DIR": str(REAL_DATA)}
    env.pop("HDR_NO_VERIFY", None)
    out = subprocess.run([sys.executable, "-m", "hdr.cli", "train", str(CONFIGS / "mlp_adam.yaml"),
                          "training.epochs=1", "model.hidden=[128]", "--runs-dir", str(runs), "-q"],
                         env=env, capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    return Path(out.stdout.strip().splitlines()[-1])


@pytest.fixture
def small_disk(tmp_path):
    """mount(size) -> a folder on a tmpfs of that size (e.g. "256k"): a disk that fills up.
    Needs root (CI runs as root); skipped elsewhere. Unmounted after the test."""
    import subprocess

    mounted = []

    def mount(size: str) -> Path:
        if os.geteuid() != 0:
            pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
        mnt = tmp_path / f"small-{len(mounted)}"
        mnt.mkdir()
        if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)]).returncode != 0:
            pytest.skip("cannot mount a tmpfs here")
        mounted.append(mnt)
        return mnt

    yield mount
    for mnt in mounted:
        subprocess.run(["umount", "-l", str(mnt)])
