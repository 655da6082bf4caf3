"""hdr data describe: class counts, value ranges, the sanity check, and the two pictures."""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from hdr.analysis.describe import check_split, describe, text
from hdr.core import data as data_mod

# Deliberately unbalanced, so that a table that mixed up classes or splits would show it.
TRAIN_COUNTS = [5, 6, 7, 8, 9, 10, 11, 12, 13, 19]
TEST_COUNTS = [3, 1, 4, 1, 5, 9, 2, 6, 5, 4]


@pytest.fixture
def fake_mnist(make_tiny_data):
    """MNIST files of noise (every pixel value 0-255) in those counts; two test images blank."""
    return make_tiny_data(mnist=(TRAIN_COUNTS, TEST_COUNTS), usps=None, style="noise", blank_test=2)


def table_rows(output: str) -> dict[str, list[str]]:
    rows = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 5 and (parts[0].isdigit() or parts[0] == "total"):
            rows[parts[0]] = parts[1:]
    return rows


def test_counts_and_proportions_table(cli_run, fake_mnist):
    r = cli_run("data", "describe", "mnist")
    assert r.exit_code == 0, r.output
    rows = table_rows(r.stdout)
    n_train, n_test = sum(TRAIN_COUNTS), sum(TEST_COUNTS)
    for k in range(10):
        train, train_pct, test, test_pct = rows[str(k)]
        assert int(train) == TRAIN_COUNTS[k] and int(test) == TEST_COUNTS[k]
        assert float(train_pct) == pytest.approx(100 * TRAIN_COUNTS[k] / n_train, abs=0.006)
        assert float(test_pct) == pytest.approx(100 * TEST_COUNTS[k] / n_test, abs=0.006)
    assert rows["total"] == [str(n_train), "100.00", str(n_test), "100.00"]
    assert f"{n_train} train + {n_test} test images, 28x28 pixels" in r.stdout
    assert "pixel values: train 0-255" in r.stdout
    # Class 9 (19) against class 0 (5) in train; the two blank test images are reported.
    assert "largest class 9 (19) is 3.80x the smallest, 0 (5)" in r.stdout
    assert "check: test: 2 blank (all-dark) images" in r.stdout


def test_out_writes_pictures_and_csv(cli_run, fake_mnist, tmp_path):
    out = tmp_path / "pictures" / "nested"
    r = cli_run("data", "describe", "mnist", "--out", out)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == ["mnist-classes.csv", "mnist-classes.png", "mnist-samples.png"]
    for png, (min_w, min_h) in (("mnist-classes.png", (600, 300)), ("mnist-samples.png", (400, 400))):
        path = out / png
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(path) as im:
            im.verify()
        with Image.open(path) as im:
            assert min_w <= im.size[0] <= 2500 and min_h <= im.size[1] <= 2500, im.size
            assert np.asarray(im.convert("L")).std() > 10
    rows = list(csv.DictReader((out / "mnist-classes.csv").open()))
    assert [int(r["train"]) for r in rows] == TRAIN_COUNTS
    assert [int(r["test"]) for r in rows] == TEST_COUNTS
    assert sum(float(r["train_proportion"]) for r in rows) == pytest.approx(1, abs=1e-5)


def test_check_finds_bad_labels_and_blank_images():
    x = np.full((4, 2, 2, 1), 10, np.uint8)
    x[3] = 0
    y = np.array([0, 11, 3, -2])
    assert check_split(x, y, 10) == {"bad_labels": 2, "blank_images": 1}
    assert check_split(x, y, 12) == {"bad_labels": 1, "blank_images": 1}  # 11 is a class of a 12-class dataset
    clean = check_split(np.full((3, 2, 2, 1), 7, np.uint8), np.array([1, 2, 3], np.uint8), 10)
    assert clean == {"bad_labels": 0, "blank_images": 0}


def test_text_reports_problems_by_split():
    x = np.ones((10, 4, 4, 1), np.uint8)
    x[0] = 0
    d = data_mod.Data(data_mod.get("mnist"), data_mod.Split(x, np.arange(10) % 10),
                      data_mod.Split(x[1:], np.arange(9) % 10))
    out = text(describe(d))
    assert "check: train: 1 blank (all-dark) images" in out
    assert "test:" not in out.split("check:")[1].splitlines()[0]


def test_does_not_import_keras(fake_mnist):
    code = ("import sys; from click.testing import CliRunner; from hdr.cli.main import cli; "
            "r = CliRunner().invoke(cli, ['data', 'describe', 'mnist']); assert r.exit_code == 0, r.output; "
            "heavy = [m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules]; "
            "assert not heavy, heavy")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr


def test_bad_input(cli_run, fake_mnist, tmp_path):
    r = cli_run("data", "describe", "emnist")
    assert r.exit_code == 2 and "Traceback" not in r.output and "emnist" in r.stderr
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    r = cli_run("data", "describe", "mnist", "--out", a_file)
    assert r.exit_code == 2 and "Traceback" not in r.output
    # A corrupt dataset file: one line naming the file and the fix.
    (fake_mnist / "mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip")
    r = cli_run("data", "describe", "mnist")
    assert r.exit_code == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hdr: error: ") and "t10k-labels" in lines[0]


@pytest.mark.realdata
def test_real_datasets(cli_run, real_data):
    r = cli_run("data", "describe", "mnist")
    assert r.exit_code == 0, r.output
    rows = table_rows(r.stdout)
    assert rows["1"][:3] == ["6742", "11.24", "1135"] and rows["5"][0] == "5421"
    assert rows["total"] == ["60000", "100.00", "10000", "100.00"]
    assert "check: ok" in r.stdout
    r = cli_run("data", "describe", "usps")
    assert r.exit_code == 0, r.output
    rows = table_rows(r.stdout)
    assert rows["0"][0] == "1194" and rows["0"][2] == "359"
    assert rows["total"] == ["7291", "100.00", "2007", "100.00"]
    assert "16x16 pixels" in r.stdout and "check: ok" in r.stdout
