"""Datasets: where the files live, how they are fetched and checked, how they are parsed.

Files are kept in their published formats under ``<data dir>/<dataset>/``. The data dir is
``$HDR_DATA_DIR`` if set, else the user's cache folder. When the files are there nothing
touches the network; when they are not, they are downloaded from public mirrors and verified.
Images come out as uint8 arrays of shape (n, h, w, 1); scaling to [0, 1] happens in the model,
so the dataset is never copied as float32.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tempfile
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hdr.errors import DataError, UsageError

MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
USPS_MIRRORS = (
    "https://hastie.su.domains/ElemStatLearn/datasets/",
    "https://web.stanford.edu/~hastie/ElemStatLearn/datasets/",
)


@dataclass(frozen=True)
class FileSpec:
    name: str
    gz_md5: str | None = None          # of the file as published on the mirrors
    sha256: str | None = None          # of the decompressed content
    size: int | None = None            # decompressed bytes


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    files: dict[str, FileSpec]
    mirrors: tuple[str, ...]
    shape: tuple[int, int]
    n_train: int
    n_test: int


DATASETS = {
    "mnist": DatasetSpec(
        "mnist",
        {
            "train_images": FileSpec("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                                     "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", 47040016),
            "train_labels": FileSpec("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432",
                                     "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", 60008),
            "test_images": FileSpec("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3",
                                    "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", 7840016),
            "test_labels": FileSpec("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c",
                                    "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", 10008),
        },
        MNIST_MIRRORS, (28, 28), 60000, 10000,
    ),
    "usps": DatasetSpec(
        "usps",
        {"train": FileSpec("zip.train.gz"), "test": FileSpec("zip.test.gz")},
        USPS_MIRRORS, (16, 16), 7291, 2007,
    ),
}


@dataclass
class Split:
    x: np.ndarray  # uint8, (n, h, w, 1)
    y: np.ndarray  # uint8, (n,)


@dataclass
class Data:
    name: str
    train: Split
    test: Split
    checksums: dict[str, str] = field(default_factory=dict)  # file name -> sha256 of content

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.x.shape[1:])


def data_dir() -> Path:
    env = os.environ.get("HDR_DATA_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("hdr")) / "datasets"


def cache_dir() -> Path:
    """Where decoded, verified arrays are kept: $HDR_CACHE_DIR, else the user's cache folder.
    Never the data dir, which may be read-only (a shared datasets folder)."""
    env = os.environ.get("HDR_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("hdr")) / "arrays"


# ---------------------------------------------------------------- parsing

def _gunzip(path: Path) -> bytes:
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(
            f"{path}: corrupt or truncated gzip file ({e}); delete it and run again to re-download") from None


def parse_idx(raw: bytes, expect_dims: int, where: str) -> np.ndarray:
    """IDX format: magic 0x0000 08 <dims>, big-endian uint32 sizes, then uint8 data."""
    if len(raw) < 4 + 4 * expect_dims:
        raise DataError(f"{where}: too short to be an IDX file ({len(raw)} bytes); delete it and re-download")
    magic = int.from_bytes(raw[:4], "big")
    if magic != 0x800 + expect_dims:
        raise DataError(
            f"{where}: not an IDX file with {expect_dims} dimension(s) (magic {magic:#010x}); "
            "delete it and re-download")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(expect_dims)]
    start = 4 + 4 * expect_dims
    expected = int(np.prod(dims))
    if len(raw) - start != expected:
        raise DataError(
            f"{where}: truncated or padded IDX file: header says {dims} ({expected} values), "
            f"found {len(raw) - start}; delete it and re-download")
    return np.frombuffer(raw, dtype=np.uint8, offset=start).reshape(dims)


def parse_usps(raw: bytes, where: str) -> Split:
    """One digit a line: the label, then 256 grey values in [-1, 1]."""
    try:
        table = np.loadtxt(io.BytesIO(raw), dtype=np.float32, ndmin=2)
    except ValueError as e:
        raise DataError(f"{where}: not a USPS text file ({str(e).splitlines()[0]}); delete it and re-download") from None
    if table.size == 0 or table.shape[1] != 257:
        raise DataError(
            f"{where}: expected 257 numbers a line (label + 16x16 pixels), found {table.shape[1] if table.size else 0}; "
            "delete it and re-download")
    labels = table[:, 0]
    pixels = table[:, 1:]
    if not np.all(np.isfinite(pixels)) or pixels.min() < -1.0001 or pixels.max() > 1.0001:
        raise DataError(f"{where}: pixel values outside [-1, 1]; the file is corrupt, delete it and re-download")
    if not np.all((labels >= 0) & (labels <= 9) & (labels == np.round(labels))):
        raise DataError(f"{where}: labels must be whole numbers 0-9; the file is corrupt, delete it and re-download")
    # [-1, 1] -> [0, 255]; -1 is the background, as 0 is in MNIST.
    x = np.clip(np.round((pixels + 1.0) * 127.5), 0, 255).astype(np.uint8).reshape(-1, 16, 16, 1)
    return Split(x, labels.astype(np.uint8))


# ---------------------------------------------------------------- download

def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _download(spec: DatasetSpec, fs: FileSpec, dest: Path, quiet: bool = False) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for mirror in spec.mirrors:
        url = mirror + fs.name
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{fs.name}.", suffix=".part")
        try:
            if not quiet:
                import sys
                print(f"downloading {url}", file=sys.stderr)
            with urllib.request.urlopen(url, timeout=30) as r, os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(r, out)
            if fs.gz_md5 and _md5(Path(tmp)) != fs.gz_md5:
                raise OSError("checksum mismatch")
            os.replace(tmp, dest)
            return
        except Exception as e:  # any network or checksum failure: try the next mirror
            errors.append(f"{url}: {e}")
            Path(tmp).unlink(missing_ok=True)
    raise DataError(
        f"could not download {fs.name} ({'; '.join(errors)}); put the file in {dest.parent} "
        "or set HDR_DATA_DIR to a folder that has it")


def ensure_files(name: str, download: bool = True, quiet: bool = False) -> dict[str, Path]:
    """Path of every file of a dataset, downloading the missing ones."""
    if name not in DATASETS:
        raise UsageError(f"unknown dataset {name!r}; allowed: {', '.join(DATASETS)}")
    spec = DATASETS[name]
    folder = data_dir() / name
    paths = {key: folder / fs.name for key, fs in spec.files.items()}
    missing = [key for key, p in paths.items() if not p.is_file()]
    if missing and not download:
        names = ", ".join(spec.files[k].name for k in missing)
        raise DataError(f"{name} files missing: {names}; put them in {folder} (or set HDR_DATA_DIR)")
    for key in missing:
        try:
            _download(spec, spec.files[key], paths[key], quiet=quiet)
        except DataError:
            names = ", ".join(spec.files[k].name for k in missing)
            raise DataError(
                f"{name} files missing and could not be downloaded: {names}; put them in {folder} "
                "(or set HDR_DATA_DIR to a folder holding {name}/)".replace("{name}", name)) from None
    return paths


def _checked(raw: bytes, fs: FileSpec, path: Path) -> str:
    digest = hashlib.sha256(raw).hexdigest()
    if fs.size is not None and len(raw) != fs.size:
        raise DataError(
            f"{path}: wrong size ({len(raw)} bytes decompressed, expected {fs.size}); "
            "the file is truncated or corrupt: delete it and run again to re-download")
    if fs.sha256 and digest != fs.sha256:
        raise DataError(f"{path}: checksum mismatch; the file is corrupt: delete it and run again to re-download")
    return digest


# ---------------------------------------------------------------- array cache
# Gunzip + sha256 + parsing cost ~0.3 s for MNIST and for USPS (text) on every run; reading the
# verified arrays back from .npy files costs ~0.02 s (BENCHMARKS.md). An entry is keyed by the
# identity of the source files (path, size, mtime, inode), so replacing or touching a file makes
# a new entry, which is decoded and verified again.

CACHE_VERSION = 1
_CACHE_ARRAYS = ("train_x", "train_y", "test_x", "test_y")


def _cache_key(name: str, paths: dict[str, Path]) -> str:
    h = hashlib.sha256(f"hdr-arrays-v{CACHE_VERSION}:{name}".encode())
    for key in sorted(paths):
        st = paths[key].stat()
        h.update(f"|{paths[key].resolve()}:{st.st_size}:{st.st_mtime_ns}:{st.st_ino}".encode())
    return h.hexdigest()[:24]


def _read_cache(name: str, key: str) -> Data | None:
    folder = cache_dir() / f"{name}-{key}"
    try:
        sums = json.loads((folder / "meta.json").read_text())["checksums"]
        a = {k: np.load(folder / f"{k}.npy", allow_pickle=False) for k in _CACHE_ARRAYS}
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing, half-removed or damaged entry: decode the files instead
    if any(v.dtype != np.uint8 for v in a.values()) or len(a["train_x"]) != len(a["train_y"]) \
            or len(a["test_x"]) != len(a["test_y"]) or a["train_x"].ndim != 4:
        return None
    return Data(name, Split(a["train_x"], a["train_y"]), Split(a["test_x"], a["test_y"]), sums)


def _write_cache(data: Data, key: str) -> None:
    """Best effort: a cache that cannot be written (read-only home, full disk) only costs speed."""
    root = cache_dir()
    tmp = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{data.name}-"))
        for k, arr in zip(_CACHE_ARRAYS, (data.train.x, data.train.y, data.test.x, data.test.y)):
            np.save(tmp / f"{k}.npy", arr, allow_pickle=False)
        (tmp / "meta.json").write_text(json.dumps({"checksums": data.checksums}))
        final = root / f"{data.name}-{key}"
        os.rename(tmp, final)  # atomic: readers see a whole entry or none; a racing writer's wins
        tmp = None
        # One entry per dataset: older ones are of replaced files (or of another data dir, which
        # then simply decodes again), so the cache never grows.
        for old in root.glob(f"{data.name}-*"):
            if old != final and old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
    except OSError:
        pass
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def load(name: str, verify: bool | None = None, quiet: bool = False) -> Data:
    """Load a dataset's train and test splits as uint8 arrays.

    Verified loads go through the array cache; unverified ones (HDR_NO_VERIFY=1, for made-up
    test files) always decode the files and leave no cache behind."""
    if verify is None:
        verify = os.environ.get("HDR_NO_VERIFY") != "1"
    paths = ensure_files(name, quiet=quiet)
    if not verify:
        return _decode(name, paths, verify)
    key = _cache_key(name, paths)
    data = _read_cache(name, key)
    if data is None:
        data = _decode(name, paths, verify)
        _write_cache(data, key)
    return data


def _decode(name: str, paths: dict[str, Path], verify: bool) -> Data:
    spec = DATASETS[name]
    sums: dict[str, str] = {}

    def read(key: str) -> bytes:
        fs = spec.files[key]
        raw = _gunzip(paths[key])
        sums[fs.name] = _checked(raw, fs, paths[key]) if verify else hashlib.sha256(raw).hexdigest()
        return raw

    if name == "mnist":
        splits = {}
        for part in ("train", "test"):
            x = parse_idx(read(f"{part}_images"), 3, str(paths[f"{part}_images"]))
            y = parse_idx(read(f"{part}_labels"), 1, str(paths[f"{part}_labels"]))
            if len(x) != len(y):
                raise DataError(f"{paths[f'{part}_images']}: {len(x)} images but {len(y)} labels; re-download both")
            if y.size and y.max() > 9:
                raise DataError(f"{paths[f'{part}_labels']}: labels outside 0-9; the file is corrupt")
            splits[part] = Split(x.reshape(-1, *x.shape[1:], 1), y)
    else:
        splits = {part: parse_usps(read(part), str(paths[part])) for part in ("train", "test")}
        if verify:
            for part, n in (("train", spec.n_train), ("test", spec.n_test)):
                if len(splits[part].y) != n:
                    raise DataError(
                        f"{paths[part]}: {len(splits[part].y)} digits, expected {n}; the file is truncated or "
                        "corrupt: delete it and re-download")
    return Data(name, splits["train"], splits["test"], sums)


def validation_indices(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """The sorted training-set rows held out for validation: a seeded fraction of every class."""
    rng = np.random.default_rng(seed)
    val_idx = []
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        rng.shuffle(idx)
        val_idx.append(idx[: int(round(len(idx) * fraction))])
    return np.sort(np.concatenate(val_idx))


def split_validation(train: Split, fraction: float | None, seed: int) -> tuple[Split, Split | None]:
    """Hold out a stratified, seeded fraction of the training set for validation."""
    if not fraction:
        return train, None
    val = validation_indices(train.y, fraction, seed)
    mask = np.ones(len(train.y), bool)
    mask[val] = False
    return Split(train.x[mask], train.y[mask]), Split(train.x[val], train.y[val])
