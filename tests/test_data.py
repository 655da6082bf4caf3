"""Dataset parsing on tiny generated files, corrupt files, the offline path and the split."""

from __future__ import annotations

import dataclasses
import gzip
import os

import numpy as np
import pytest

from hdr.core import data
from hdr.core.errors import DataError
from tests.conftest import idx_bytes, make_digits, realdata, usps_text, write_tiny_mnist


def test_tiny_mnist_parses(tiny_data):
    d = data.load("mnist", verify=False)
    assert d.train.x.shape == (300, 28, 28, 1) and d.train.x.dtype == np.uint8
    assert d.test.x.shape == (100, 28, 28, 1)
    assert set(np.unique(d.train.y)) == set(range(10))
    assert d.input_shape == (28, 28, 1)
    assert len(d.checksums) == 4


def test_tiny_usps_parses_and_maps_to_uint8(tiny_data):
    d = data.load("usps", verify=False)
    assert d.train.x.shape == (200, 16, 16, 1)
    # generated pixels were 0..39 and 230: the [-1, 1] text round-trips to the same bytes
    assert d.train.x.max() == 230 and d.train.x.min() == 0


def test_usps_value_mapping():
    x = np.array([[0, 255] + [128] * 254], dtype=np.uint8).reshape(1, 16, 16)
    s = data.parse_text(usps_text(x, np.array([7])), (16, 16), 10, "t")
    assert s.y.tolist() == [7]
    assert s.x[0, 0, 0, 0] == 0 and s.x[0, 0, 1, 0] == 255


@pytest.mark.parametrize("mutate, expected", [
    (lambda raw: raw[: len(raw) // 2], "truncated"),
    (lambda raw: b"\x00\x00\x08\x01" + raw[4:], "magic"),
    (lambda raw: raw[:10], "too short"),
])
def test_corrupt_idx(tiny_data, mutate, expected):
    p = tiny_data / "mnist" / "train-images-idx3-ubyte.gz"
    raw = gzip.decompress(p.read_bytes())
    p.write_bytes(gzip.compress(mutate(raw)))
    with pytest.raises(DataError, match=expected) as e:
        data.load("mnist", verify=False)
    assert str(p) in str(e.value)


def test_truncated_gzip(tiny_data):
    p = tiny_data / "mnist" / "t10k-labels-idx1-ubyte.gz"
    p.write_bytes(p.read_bytes()[:20])
    with pytest.raises(DataError, match="corrupt or truncated gzip") as e:
        data.load("mnist", verify=False)
    assert str(p) in str(e.value)


def test_not_gzip_at_all(tiny_data):
    p = tiny_data / "usps" / "zip.test.gz"
    p.write_bytes(b"hello, I am not gzip")
    with pytest.raises(DataError, match="corrupt or truncated gzip"):
        data.load("usps", verify=False)


@pytest.mark.parametrize("text, expected", [
    (b"1.0 0.5 0.5\n", "257 numbers"),
    (b"hello world\n", "not a text file of digits"),
    (("12.0 " + " ".join(["0.0"] * 256) + "\n").encode(), "labels must be whole numbers 0-9"),
    (("1.0 " + " ".join(["3.0"] * 256) + "\n").encode(), "outside \\[-1, 1\\]"),
])
def test_corrupt_usps(tiny_data, text, expected):
    (tiny_data / "usps" / "zip.train.gz").write_bytes(gzip.compress(text))
    with pytest.raises(DataError, match=expected):
        data.load("usps", verify=False)


def test_label_image_count_mismatch(tiny_data):
    x, y = make_digits(20, 28, np.random.default_rng(0))
    (tiny_data / "mnist" / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(y[:10])))
    with pytest.raises(DataError, match="300 images but 10 labels"):
        data.load("mnist", verify=False)


def test_verification_rejects_files_that_are_not_the_real_ones(tiny_data):
    with pytest.raises(DataError, match="wrong size|checksum"):
        data.load("mnist", verify=True)


def test_missing_files_offline_names_files_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HDR_DATA_DIR", str(tmp_path))
    # No network here (and none wanted in a test): the record's only mirror refuses at once.
    monkeypatch.setitem(data.DATASETS, "mnist", dataclasses.replace(data.get("mnist"),
                                                                    mirrors=("http://127.0.0.1:9/",)))
    with pytest.raises(DataError) as e:
        data.load("mnist")
    msg = str(e.value)
    assert "train-images-idx3-ubyte.gz" in msg and str(tmp_path / "mnist") in msg
    assert "http://127.0.0.1:9/" in msg and "connection refused" in msg  # the cause, per mirror
    assert not (tmp_path / "mnist").exists()  # no half-downloaded file, no empty folder left


def test_download_from_mirror_with_checksum(tmp_path, monkeypatch):
    """A local HTTP server stands in for the public mirror; md5 mismatch falls through to the next."""
    import hashlib
    import http.server
    import threading

    src = write_tiny_mnist(tmp_path / "src") / "mnist"
    good = tmp_path / "good"
    bad = tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    files = {}
    for f in src.iterdir():
        (good / f.name).write_bytes(f.read_bytes())
        (bad / f.name).write_bytes(b"garbage")
        files[f.name] = hashlib.md5(f.read_bytes()).hexdigest()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(tmp_path), **kw)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_port}/"
        specs = {k: data.FileSpec(fs.name, files[fs.name]) for k, fs in data.get("mnist").files.items()}
        monkeypatch.setitem(data.DATASETS, "mnist", dataclasses.replace(
            data.get("mnist"), files=specs, mirrors=(base + "bad/", base + "good/"),
            sizes={"train": 300, "test": 100}))
        monkeypatch.setenv("HDR_DATA_DIR", str(tmp_path / "cache"))
        d = data.load("mnist", quiet=True)
        assert d.train.x.shape == (300, 28, 28, 1)
        for name in files:
            assert (tmp_path / "cache" / "mnist" / name).read_bytes() == (good / name).read_bytes()
    finally:
        server.shutdown()


def test_validation_split_is_stratified_and_seeded(tiny_data):
    d = data.load("mnist", verify=False)
    tr1, va1 = data.split_validation(d.train, 0.2, seed=1)
    tr2, va2 = data.split_validation(d.train, 0.2, seed=1)
    tr3, va3 = data.split_validation(d.train, 0.2, seed=2)
    assert len(va1.y) == 60 and len(tr1.y) == 240
    assert np.array_equal(va1.x, va2.x) and not np.array_equal(va1.x, va3.x)
    assert np.bincount(va1.y, minlength=10).tolist() == [6] * 10
    assert data.split_validation(d.train, None, 1)[1] is None


@realdata
def test_real_datasets_verify(real_data):
    m = data.load("mnist")
    assert m.train.x.shape == (60000, 28, 28, 1) and m.test.x.shape == (10000, 28, 28, 1)
    assert m.checksums["train-images-idx3-ubyte.gz"].startswith("ba891046")
    u = data.load("usps")
    assert u.train.x.shape == (7291, 16, 16, 1) and u.test.x.shape == (2007, 16, 16, 1)
    # USPS class proportions as published: 0 is the most frequent digit in both splits
    assert np.argmax(np.bincount(u.train.y)) == 0 and np.argmax(np.bincount(u.test.y)) == 0


# ---------------------------------------------------------------- the array cache is checked

@pytest.fixture
def cached_tiny(tmp_path, monkeypatch):
    """Tiny MNIST files loaded once with verification on (no published checksums for these, so
    the record is copied without them), filling an array cache in tmp_path/cache."""
    folder = write_tiny_mnist(tmp_path / "data")
    plain = {k: data.FileSpec(fs.name) for k, fs in data.get("mnist").files.items()}
    monkeypatch.setitem(data.DATASETS, "mnist", dataclasses.replace(data.get("mnist"), files=plain, sizes=None))
    monkeypatch.setenv("HDR_DATA_DIR", str(folder))
    monkeypatch.setenv("HDR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("HDR_NO_VERIFY", raising=False)
    first = data.load("mnist")
    (entry,) = (tmp_path / "cache").iterdir()
    return folder / "mnist", entry, first


def test_an_edited_cached_array_is_never_used(cached_tiny):
    _, entry, first = cached_tiny
    y = np.load(entry / "train_y.npy")
    np.save(entry / "train_y.npy", np.full_like(y, 3))  # every label set to 3
    again = data.load("mnist")
    assert np.array_equal(again.train.y, first.train.y)  # decoded from the files again
    assert np.array_equal(np.load(entry / "train_y.npy"), first.train.y)  # and the entry repaired


def test_a_data_file_changed_in_place_is_decoded_again(cached_tiny):
    """A byte flipped in a data file, its size and modification time kept: the cache must not
    answer for a file it no longer matches (run.json records the files' checksums)."""
    files, _, first = cached_tiny
    path = files / "train-labels-idx1-ubyte.gz"
    st = path.stat()
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[8] = (raw[8] + 1) % 10  # the first label
    path.write_bytes(gzip.compress(bytes(raw)))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size  # same size, same time, same inode: only the content differs
    again = data.load("mnist")
    assert again.train.y[0] == (first.train.y[0] + 1) % 10
    assert again.checksums != first.checksums


def test_an_unreadable_data_file_is_a_permission_problem_not_a_corrupt_file(tiny_data, monkeypatch):
    """Root reads any file, so the denial is simulated where the file is opened."""
    real_open = gzip.open

    def denied(path, *a, **kw):
        if str(path).endswith("zip.train.gz"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *a, **kw)

    monkeypatch.setattr(gzip, "open", denied)
    with pytest.raises(DataError, match="permission denied; make the file readable") as e:
        data.load("usps", verify=False)
    assert "corrupt" not in str(e.value)


def test_an_unreadable_data_folder_is_named(tiny_data, monkeypatch):
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p).endswith("usps") else real_access(p, mode))
    with pytest.raises(DataError, match="usps: permission denied; make the folder readable"):
        data.load("usps", verify=False)


def test_hdr_data_dir_pointing_at_a_file(cli_run, tmp_path, monkeypatch):
    (tmp_path / "f").write_text("")
    monkeypatch.setenv("HDR_DATA_DIR", str(tmp_path / "f"))
    r = cli_run("data", "describe", "usps")
    assert r.exit_code == 2 and r.stderr.strip().splitlines() == [
        f"hdr: error: HDR_DATA_DIR={tmp_path / 'f'} is a file, not a folder; point it at the folder holding "
        f"{', '.join(n + '/' for n in data.DATASETS)}"]
