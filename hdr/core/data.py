"""Datasets: where the files live, how they are fetched and checked, how they are parsed.

Files are kept in their published formats under ``<data dir>/<dataset>/``. The data dir is
``$HDR_DATA_DIR`` if set, else the user's cache folder. When the files are there nothing
touches the network; when they are not, they are downloaded from public mirrors and verified.
Images come out as uint8 arrays of shape (n, h, w, 1); scaling to [0, 1] happens in the model,
so the dataset is never copied as float32.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hdr.core.errors import DataError, UsageError

@dataclass
class Split:
    x: np.ndarray  # uint8, (n, h, w, 1)
    y: np.ndarray  # uint8, (n,)


@dataclass(frozen=True)
class FileSpec:
    name: str
    gz_md5: str | None = None          # of the file as published on the mirrors
    sha256: str | None = None          # of the decompressed content
    size: int | None = None            # decompressed bytes


@dataclass(frozen=True)
class DatasetSpec:
    """Everything hdr knows about one dataset. Adding a dataset is one of these, registered,
    plus its files; nothing else in hdr names a dataset or its number of classes."""

    name: str
    files: dict[str, FileSpec]         # role -> file; the roles are the decoder's
    mirrors: tuple[str, ...]           # base URLs the files are downloaded from
    decode: Callable                   # (spec, read: role -> raw bytes, where: role -> str) -> {"train": Split, "test": Split}
    image_size: tuple[int, int]        # (height, width)
    class_names: tuple[str, ...]       # label k is class_names[k]
    value_range: str                   # the pixel values as published (hdr keeps uint8 0-255)
    framing: str                       # how a digit sits in its frame (hdr.core.transfer): "centred" or "fill"
    sizes: dict[str, int] | None = None  # examples per split, checked when verifying
    # The digits' stroke width in pixels, typical (median) and 5th-95th percentile, as
    # hdr.apps.predict.stroke_width measures the test split (python -m bench.perf.photos calibrate): what
    # hdr predict brings a user's image to. None: leave strokes as they are.
    stroke_width: tuple[float, float, float] | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


DATASETS: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
    DATASETS[spec.name] = spec
    return spec


def get(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise UsageError(f"unknown dataset {name!r}; allowed: {', '.join(DATASETS)}") from None


@dataclass
class Data:
    spec: DatasetSpec
    train: Split
    test: Split
    checksums: dict[str, str] = field(default_factory=dict)  # file name -> sha256 of content
    folder: Path | None = None                                # where the files were read from

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.x.shape[1:])


def data_dir(recorded: str | Path | None = None) -> Path:
    """Where dataset files are: $HDR_DATA_DIR if set; else `recorded`, the folder a run was
    trained from (run.json's data_dir), while it exists; else the user's cache folder."""
    env = os.environ.get("HDR_DATA_DIR")
    if env:
        path = Path(env).expanduser()
        if path.exists() and not path.is_dir():
            raise UsageError(f"HDR_DATA_DIR={env} is a file, not a folder; point it at the folder holding "
                             f"{', '.join(d + '/' for d in DATASETS)}")
        return path
    if recorded and Path(recorded).is_dir():
        return Path(recorded)
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
    import gzip  # here, not at the top: hdr predict imports this module for its registry only
    import zlib

    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except PermissionError:
        raise DataError(f"{path}: permission denied; make the file readable (chmod a+r) or set HDR_DATA_DIR "
                        "to a copy you can read") from None
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


def parse_text(raw: bytes, size: tuple[int, int], num_classes: int, where: str) -> Split:
    """One digit a line: the label, then h*w grey values in [-1, 1] (USPS's published format)."""
    try:
        table = np.loadtxt(io.BytesIO(raw), dtype=np.float32, ndmin=2)
    except ValueError as e:
        raise DataError(f"{where}: not a text file of digits ({str(e).splitlines()[0]}); delete it and re-download") from None
    width = 1 + size[0] * size[1]
    if table.size == 0 or table.shape[1] != width:
        raise DataError(
            f"{where}: expected {width} numbers a line (label + {size[0]}x{size[1]} pixels), found "
            f"{table.shape[1] if table.size else 0}; delete it and re-download")
    labels = table[:, 0]
    pixels = table[:, 1:]
    if not np.all(np.isfinite(pixels)) or pixels.min() < -1.0001 or pixels.max() > 1.0001:
        raise DataError(f"{where}: pixel values outside [-1, 1]; the file is corrupt, delete it and re-download")
    if not np.all((labels >= 0) & (labels < num_classes) & (labels == np.round(labels))):
        raise DataError(f"{where}: labels must be whole numbers 0-{num_classes - 1}; the file is corrupt, "
                        "delete it and re-download")
    # [-1, 1] -> [0, 255]; -1 is the background, as 0 is in MNIST.
    x = np.clip(np.round((pixels + 1.0) * 127.5), 0, 255).astype(np.uint8).reshape(-1, *size, 1)
    return Split(x, labels.astype(np.uint8))


def decode_idx(spec: DatasetSpec, read, where) -> dict[str, Split]:
    """IDX files (MNIST's format, also Fashion-MNIST's and EMNIST's): roles train_images,
    train_labels, test_images, test_labels."""
    splits = {}
    for part in ("train", "test"):
        x = parse_idx(read(f"{part}_images"), 3, where(f"{part}_images"))
        y = parse_idx(read(f"{part}_labels"), 1, where(f"{part}_labels"))
        if len(x) != len(y):
            raise DataError(f"{where(f'{part}_images')}: {len(x)} images but {len(y)} labels; re-download both")
        if y.size and y.max() >= spec.num_classes:
            raise DataError(f"{where(f'{part}_labels')}: labels outside 0-{spec.num_classes - 1}; the file is corrupt")
        if x.shape[1:] != spec.image_size:
            raise DataError(f"{where(f'{part}_images')}: images are {x.shape[1]}x{x.shape[2]}, "
                            f"{spec.name} has {spec.image_size[0]}x{spec.image_size[1]}; the file is not {spec.name}'s")
        splits[part] = Split(x.reshape(-1, *x.shape[1:], 1), y)
    return splits


def decode_text(spec: DatasetSpec, read, where) -> dict[str, Split]:
    """Text files of labelled grey values in [-1, 1] (USPS's format): roles train, test."""
    return {part: parse_text(read(part), spec.image_size, spec.num_classes, where(part)) for part in ("train", "test")}


DIGITS = tuple(str(d) for d in range(10))

register(DatasetSpec(
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
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/",
             "http://yann.lecun.com/exdb/mnist/"),
    decode=decode_idx, image_size=(28, 28), class_names=DIGITS, value_range="uint8 0-255",
    framing="centred", sizes={"train": 60000, "test": 10000}, stroke_width=(2.19, 1.48, 3.51),
))
register(DatasetSpec(
    "usps",
    {"train": FileSpec("zip.train.gz"), "test": FileSpec("zip.test.gz")},  # no published checksum
    mirrors=("https://hastie.su.domains/ElemStatLearn/datasets/",
             "https://web.stanford.edu/~hastie/ElemStatLearn/datasets/"),
    decode=decode_text, image_size=(16, 16), class_names=DIGITS, value_range="float -1..1, mapped to 0-255",
    framing="fill", sizes={"train": 7291, "test": 2007}, stroke_width=(1.76, 1.07, 3.13),
))


# ---------------------------------------------------------------- download

def _file_digest(path: Path, algorithm: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, algorithm).hexdigest()


def _reason(e: Exception) -> str:
    """Why a download failed, in a few words: DNS, refused, timeout, an HTTP status, a checksum."""
    import socket
    import urllib.error

    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    cause = getattr(e, "reason", e)
    if isinstance(cause, socket.gaierror):
        return "host not found (DNS; no network?)"
    if isinstance(cause, (TimeoutError, socket.timeout)):
        return "timed out"
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused"
    return str(cause) or type(cause).__name__


def _download(spec: DatasetSpec, fs: FileSpec, dest: Path, quiet: bool = False) -> None:
    """Fetch one file from the first mirror that serves it whole; on failure raise a DataError
    that names every mirror's reason."""
    import urllib.request  # here, not at the top: it costs ~50 ms (http, email, ssl) to every import

    from hdr.core.files import replacing

    errors = []
    for mirror in spec.mirrors:
        url = mirror + fs.name
        try:
            if not quiet:
                print(f"downloading {url}", file=sys.stderr)
            with replacing(dest, suffix=".part") as tmp:
                with urllib.request.urlopen(url, timeout=30) as r, open(tmp, "wb") as out:
                    shutil.copyfileobj(r, out)
                if fs.gz_md5 and _file_digest(tmp, "md5") != fs.gz_md5:
                    raise ValueError("checksum mismatch (MD5 differs from the published one)")
            return
        except Exception as e:  # any network or checksum failure: try the next mirror
            errors.append(f"{url}: {_reason(e)}")
    raise DataError("; ".join(errors))


def ensure_files(name: str, quiet: bool = False, recorded_dir: str | Path | None = None) -> dict[str, Path]:
    """Path of every file of a dataset, downloading the missing ones. A failed download leaves
    nothing behind: no partial file, no empty folder."""
    ds = get(name)
    folder = data_dir(recorded_dir) / name
    paths = {key: folder / fs.name for key, fs in ds.files.items()}
    if folder.is_dir() and not os.access(folder, os.R_OK | os.X_OK):
        raise DataError(f"{folder}: permission denied; make the folder readable (chmod a+rx) or set HDR_DATA_DIR "
                        "to a copy you can read")
    missing = [key for key, p in paths.items() if not p.is_file()]
    if not missing:
        return paths
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for key in missing:
            _download(ds, ds.files[key], paths[key], quiet=quiet)
    except (DataError, OSError) as e:
        if created:
            shutil.rmtree(folder, ignore_errors=True)
        names = ", ".join(ds.files[k].name for k in missing)
        why = str(e) if isinstance(e, DataError) else f"cannot write {folder}: {e.strerror}"
        raise DataError(f"{name} files missing and could not be downloaded: {names} ({why}); put them in "
                        f"{folder} (or set HDR_DATA_DIR to a folder holding {name}/)") from None
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
# verified arrays back from .npy files is much cheaper (BENCHMARKS.md). An entry is keyed by the
# SHA-256 of the source files as they are now, and holds the SHA-256 of each array: a replaced
# or edited source file makes a new entry, and an edited or damaged array is never used.

CACHE_VERSION = 2
_CACHE_ARRAYS = ("train_x", "train_y", "test_x", "test_y")


def _array_sha256(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).data).hexdigest()


def _cache_key(name: str, paths: dict[str, Path]) -> str:
    h = hashlib.sha256(f"hdr-arrays-v{CACHE_VERSION}:{name}".encode())
    for key in sorted(paths):
        try:
            h.update(f"|{key}:{_file_digest(paths[key], 'sha256')}".encode())
        except PermissionError:
            raise DataError(f"{paths[key]}: permission denied; make the file readable (chmod a+r) or set "
                            "HDR_DATA_DIR to a copy you can read") from None
    return h.hexdigest()[:24]


def _read_cache(ds: DatasetSpec, key: str) -> Data | None:
    folder = cache_dir() / f"{ds.name}-{key}"
    try:
        meta = json.loads((folder / "meta.json").read_text())
        a = {k: np.load(folder / f"{k}.npy", allow_pickle=False) for k in _CACHE_ARRAYS}
        if any(_array_sha256(a[k]) != meta["arrays"][k] for k in _CACHE_ARRAYS):
            return None  # edited or damaged: decode the files again (and replace the entry)
        sums = meta["checksums"]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing, half-removed or damaged entry: decode the files instead
    return Data(ds, Split(a["train_x"], a["train_y"]), Split(a["test_x"], a["test_y"]), sums)


def _write_cache(data: Data, key: str) -> None:
    """Best effort: a cache that cannot be written (read-only home, full disk) only costs speed."""
    root = cache_dir()
    tmp = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{data.name}-"))
        arrays = dict(zip(_CACHE_ARRAYS, (data.train.x, data.train.y, data.test.x, data.test.y)))
        for k, arr in arrays.items():
            np.save(tmp / f"{k}.npy", arr, allow_pickle=False)
        meta = {"checksums": data.checksums, "arrays": {k: _array_sha256(a) for k, a in arrays.items()}}
        (tmp / "meta.json").write_text(json.dumps(meta))
        final = root / f"{data.name}-{key}"
        shutil.rmtree(final, ignore_errors=True)  # a damaged entry under the same key
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


def load(name: str, verify: bool | None = None, quiet: bool = False,
         recorded_dir: str | Path | None = None) -> Data:
    """Load a dataset's train and test splits as uint8 arrays; recorded_dir: see data_dir.

    Verified loads go through the array cache; unverified ones (HDR_NO_VERIFY=1, for made-up
    test files) always decode the files and leave no cache behind."""
    if verify is None:
        verify = os.environ.get("HDR_NO_VERIFY") != "1"
    ds = get(name)
    paths = ensure_files(name, quiet=quiet, recorded_dir=recorded_dir)
    if not verify:
        data = _decode(ds, paths, verify)
        data.folder = paths[next(iter(paths))].parent.parent.resolve()
        return data
    key = _cache_key(name, paths)
    data = _read_cache(ds, key)
    if data is None:
        data = _decode(ds, paths, verify)
        _write_cache(data, key)
    data.folder = paths[next(iter(paths))].parent.parent.resolve()
    return data


def _decode(ds: DatasetSpec, paths: dict[str, Path], verify: bool) -> Data:
    sums: dict[str, str] = {}

    def read(role: str) -> bytes:
        fs = ds.files[role]
        raw = _gunzip(paths[role])
        sums[fs.name] = _checked(raw, fs, paths[role]) if verify else hashlib.sha256(raw).hexdigest()
        return raw

    splits = ds.decode(ds, read, lambda role: str(paths[role]))
    if verify and ds.sizes:
        for part, n in ds.sizes.items():
            if len(splits[part].y) != n:
                raise DataError(
                    f"{paths[next(iter(paths))].parent}: {ds.name} {part} split has {len(splits[part].y)} "
                    f"examples, expected {n}; a file is truncated or corrupt: delete it and re-download")
    return Data(ds, splits["train"], splits["test"], sums)


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


def stratified_folds(y: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """K disjoint index arrays covering y, each with the same class proportions (to within one
    example per class) and sizes differing by at most one. Seeded, so a cv is repeatable.

    Each class is shuffled, the classes are laid end to end and position i goes to fold i % k:
    every class is dealt round-robin over the folds."""
    rng = np.random.default_rng(seed)
    order = []
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        rng.shuffle(idx)
        order.append(idx)
    order = np.concatenate(order) if order else np.array([], int)
    fold_of = np.empty(len(y), dtype=int)
    fold_of[order] = np.arange(len(order)) % k
    return [np.flatnonzero(fold_of == f) for f in range(k)]


# A fold's run records which fold it held out; hdr evaluate --split val reads it back. Both go
# through these two functions, so the numbering (1-based, as printed) is decided here only.
