"""Shared fixtures: tiny generated datasets, the real datasets when present, and a CLI runner."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = Path(os.environ.get("HDR_TEST_REAL_DATA", REPO.parent / "shared" / "datasets"))
CONFIGS = REPO / "configs"


def have_real_data() -> bool:
    return (REAL_DATA / "mnist" / "train-images-idx3-ubyte.gz").is_file() and (
        REAL_DATA / "usps" / "zip.train.gz").is_file()


realdata = pytest.mark.skipif(not have_real_data(), reason=f"real datasets not found in {REAL_DATA}")


def idx_bytes(arr: np.ndarray) -> bytes:
    arr = np.asarray(arr, dtype=np.uint8)
    header = (0x800 + arr.ndim).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    return header + arr.tobytes()


def make_digits(n: int, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Learnable fake digits: class k lights up a different block of the image."""
    y = np.arange(n) % 10
    rng.shuffle(y)
    x = rng.integers(0, 40, size=(n, size, size)).astype(np.uint8)
    cell = size // 4
    for i, label in enumerate(y):
        r, c = divmod(int(label), 4)
        x[i, r * cell:(r + 1) * cell, c * cell:(c + 1) * cell] = 230
    return x, y.astype(np.uint8)


def write_tiny_mnist(folder: Path, n_train=300, n_test=100, seed=0) -> Path:
    rng = np.random.default_rng(seed)
    d = folder / "mnist"
    d.mkdir(parents=True, exist_ok=True)
    for part, n in (("train", n_train), ("t10k", n_test)):
        x, y = make_digits(n, 28, rng)
        (d / f"{part}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(x)))
        (d / f"{part}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(y)))
    return folder


def usps_text(x: np.ndarray, y: np.ndarray) -> bytes:
    lines = []
    for img, label in zip(x, y):
        vals = img.reshape(-1).astype(np.float64) / 127.5 - 1.0
        lines.append(f"{float(label):.4f} " + " ".join(f"{v:.4f}" for v in vals))
    return ("\n".join(lines) + "\n").encode()


def write_tiny_usps(folder: Path, n_train=200, n_test=60, seed=0) -> Path:
    rng = np.random.default_rng(seed)
    d = folder / "usps"
    d.mkdir(parents=True, exist_ok=True)
    for part, n in (("train", n_train), ("test", n_test)):
        x, y = make_digits(n, 16, rng)
        (d / f"zip.{part}.gz").write_bytes(gzip.compress(usps_text(x, y)))
    return folder


@pytest.fixture
def tiny_data(tmp_path, monkeypatch) -> Path:
    """A data dir with tiny MNIST and USPS files; HDR_DATA_DIR points at it."""
    folder = tmp_path / "data"
    write_tiny_mnist(folder)
    write_tiny_usps(folder)
    monkeypatch.setenv("HDR_DATA_DIR", str(folder))
    monkeypatch.setenv("HDR_NO_VERIFY", "1")
    return folder


@pytest.fixture
def real_data(monkeypatch) -> Path:
    if not have_real_data():
        pytest.skip(f"real datasets not found in {REAL_DATA}")
    monkeypatch.setenv("HDR_DATA_DIR", str(REAL_DATA))
    monkeypatch.delenv("HDR_NO_VERIFY", raising=False)
    return REAL_DATA


@pytest.fixture
def cli_run(monkeypatch):
    """Invoke the hdr CLI in-process; returns click's Result (exit_code, stdout, stderr)."""
    from click.testing import CliRunner

    from hdr.cli import cli

    def run(*args):
        return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)

    return run


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
