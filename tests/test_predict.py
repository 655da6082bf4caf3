"""hdr predict: preprocessing of users' images, batch prediction, and bad input.

The realdata tests use one real 1-epoch MNIST run (conftest.mnist_mlp_run) and MNIST test digits
disguised as users' files (inverted, enlarged, colour, off-centre, photographed): the
preprocessing must undo each disguise for the model to read them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from hdr.apps import predict
from hdr.core.data import DATASETS
from hdr.apps.predict import preprocess

from .conftest import REAL_DATA, have_real_data

N_DIGITS = 50


# ---------------------------------------------------------------- synthetic digits

def seven(size=(200, 160), box=(40, 30, 150, 170), width=14, ink=0, paper=255, mode="L") -> Image.Image:
    """A hand-drawn-looking 7 (dark on light by default) inside box = (left, top, right, bottom)."""
    img = Image.new(mode, size, paper)
    l, t, r, b = box
    ImageDraw.Draw(img).line([(l, t), (r, t), (l + (r - l) * 0.35, b)], fill=ink, width=width, joint="curve")
    return img


def centre_of_mass(a: np.ndarray) -> tuple[float, float]:
    a = a.astype(np.float64)
    r, c = np.indices(a.shape)
    return (r * a).sum() / a.sum(), (c * a).sum() / a.sum()


def ink_width(a: np.ndarray) -> float:
    return predict.stroke_width(a)


# MNIST test digits (python -m bench.perf.photos calibrate): stroke width and ink mass (sum of pixels / 255),
# 5th and 95th percentiles. A preprocessed image should look like one of them.
MNIST_WIDTH = DATASETS["mnist"].stroke_width[1:]
MNIST_MASS = (51.4, 161.1)


def pen_photo(draw, height: int, pen: int, seed: int = 0) -> Image.Image:
    """A phone photo of a digit: drawn by draw(d, box, pen) `height` px tall with a pen `pen` px
    wide, dark ink on paper shaded from one corner to the other, grain, colour, JPEG at 60."""
    import io

    rng = np.random.default_rng(seed)
    h, w = height * 3, height * 4
    ink = Image.new("L", (w, h), 0)
    top, left = height // 2, height * 2  # off-centre
    draw(ImageDraw.Draw(ink), (left, top, left + int(height * 0.6), top + height), pen)
    alpha = np.asarray(ink, np.float32) / 255
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    paper = 215 - 25 * (xx + yy) + rng.normal(0, 4, (h, w))
    grey = paper * (1 - alpha) + 50 * alpha
    buf = io.BytesIO()
    Image.fromarray(np.clip(np.stack([grey * 1.02, grey, grey * 0.95], -1), 0, 255).astype(np.uint8)).save(
        buf, "JPEG", quality=60)
    return Image.open(io.BytesIO(buf.getvalue()))


def eight(d, box, pen):
    l, t, r, b = box
    m = (t + b) // 2
    d.ellipse((l + 1, t, r - 1, m), outline=255, width=pen)
    d.ellipse((l, m - pen // 2, r, b), outline=255, width=pen)


def zero(d, box, pen):
    d.ellipse(box, outline=255, width=pen)


def _grow(seed: np.ndarray, within: np.ndarray) -> np.ndarray:
    while True:
        p = np.pad(seed, 1)
        more = within & (seed | p[:-2, 1:-1] | p[2:, 1:-1] | p[1:-1, :-2] | p[1:-1, 2:])
        if (more == seed).all():
            return seed
        seed = more


def loops(a: np.ndarray) -> int:
    """Loops in a digit image: regions of background (< 128) cut off from the border."""
    paper = np.pad(a < 128, 1, constant_values=True)
    seed = np.zeros_like(paper)
    seed[0] = True
    left, n = paper & ~_grow(seed, paper), 0
    while left.any():
        seed = np.zeros_like(left)
        seed[tuple(np.argwhere(left)[0])] = True
        left &= ~_grow(seed, left)
        n += 1
    return n


# ---------------------------------------------------------------- preprocess

@pytest.mark.parametrize("size", [(28, 28), (16, 16)])
def test_preprocess_shape_dtype_and_range(size):
    out = preprocess(seven(), size)
    assert out.shape == size and out.dtype == np.uint8
    assert out.max() == 255  # ink stretched to full brightness
    rows, cols = np.nonzero(out)
    longest = max(np.ptp(rows), np.ptp(cols)) + 1
    assert longest == (20 if size == (28, 28) else 16)  # MNIST's 20x20 box; USPS fills the frame


def test_mnist_frame_centres_by_mass_and_fits_20px_box():
    # The digit is drawn small in the top-left corner of a large page.
    out = preprocess(seven(size=(600, 800), box=(20, 15, 80, 95), width=6), (28, 28))
    cy, cx = centre_of_mass(out)
    assert abs(cy - 14) <= 1 and abs(cx - 14) <= 1
    rows, cols = np.nonzero(out)
    assert rows.max() - rows.min() + 1 <= 21 and cols.max() - cols.min() + 1 <= 21
    assert rows.max() - rows.min() + 1 >= 19  # the 7 is taller than wide: its height fills the box


def test_usps_frame_fills_16px():
    out = preprocess(seven(size=(600, 800), box=(300, 200, 420, 400), width=12), (16, 16))
    rows, cols = np.nonzero(out)
    assert rows.min() == 0 and rows.max() == 15  # longer side fills the frame
    assert cols.min() >= 2 and cols.max() <= 13 and abs((cols.min() + cols.max()) / 2 - 7.5) <= 1  # centred


def test_polarity_is_normalised():
    dark_on_light = preprocess(seven(ink=0, paper=255), (28, 28))
    light_on_dark = preprocess(seven(ink=255, paper=0), (28, 28))
    grey_on_grey = preprocess(seven(ink=60, paper=190, mode="RGB"), (28, 28))
    for out in (dark_on_light, light_on_dark, grey_on_grey):
        assert out[0, 0] == 0 and out.max() == 255  # bright digit, black background
    assert np.abs(dark_on_light.astype(int) - light_on_dark).max() <= 2
    assert np.abs(dark_on_light.astype(int) - grey_on_grey).max() <= 8


def test_blank_image_gives_zeros():
    assert not preprocess(Image.new("L", (100, 100), 255), (28, 28)).any()
    assert not preprocess(Image.new("RGB", (10, 10), (0, 0, 0)), (28, 28)).any()
    # Faint paper grain alone is not a digit.
    grain = np.random.default_rng(0).normal(200, 2, (120, 120)).clip(0, 255).astype(np.uint8)
    assert not preprocess(Image.fromarray(grain), (28, 28)).any()


def test_uneven_lighting_and_specks_do_not_widen_the_crop():
    """A photo: paper darkening from 230 to 150 across the page, noise, a 7 in the middle."""
    rng = np.random.default_rng(1)
    page = np.asarray(seven(size=(300, 300), box=(110, 80, 190, 220), width=10), np.float32)
    shade = np.linspace(230, 150, 300)[None, :]
    photo = np.clip(page / 255 * shade + rng.normal(0, 5, page.shape), 0, 255).astype(np.uint8)
    out = preprocess(Image.fromarray(photo), (28, 28))
    clean = preprocess(seven(size=(300, 300), box=(110, 80, 190, 220), width=10), (28, 28))
    rows, cols = np.nonzero(out)
    assert rows.max() - rows.min() + 1 <= 21 and cols.max() - cols.min() + 1 <= 21
    assert np.abs(out.astype(int) - clean).mean() < 12


def test_thin_pen_strokes_are_thickened_to_mnist_width():
    """A fine pen on a big scan: 2 px strokes on a 700 px digit would all but vanish at 28x28."""
    img = seven(size=(900, 800), box=(150, 100, 600, 800), width=2)
    out = preprocess(img, (28, 28))
    naive = np.asarray(img.crop((150, 100, 600, 800)).resize((20, 20), Image.LANCZOS))
    assert (255 - naive).max() < 128  # what a plain resize gives: barely any ink
    assert MNIST_WIDTH[0] <= ink_width(out) <= MNIST_WIDTH[1]


def test_fat_strokes_are_thinned():
    img = seven(size=(400, 400), box=(150, 150, 230, 260), width=40)
    assert MNIST_WIDTH[0] <= ink_width(preprocess(img, (28, 28))) <= MNIST_WIDTH[1]


@pytest.mark.parametrize("draw, height, pen, n_loops", [
    (eight, 20, 5, 2),   # small, thick pen: loops 3 px across in the photo
    (zero, 24, 7, 1),    # smaller loop still, thicker pen
    (eight, 300, 3, 2),  # large, fine pen: strokes 1% of the digit's height
    (zero, 200, 50, 1),  # large, marker
])
def test_photographed_digit_looks_like_a_training_digit(draw, height, pen, n_loops):
    """A photo of a digit, small with a thick pen or large with a fine one, comes out as MNIST's
    digits are: stroke width and ink within theirs, centred by mass, loops kept open (shrinking
    thick strokes as they are would fill them in; thin ones would fade out)."""
    out = preprocess(pen_photo(draw, height, pen), (28, 28))
    assert MNIST_WIDTH[0] <= ink_width(out) <= MNIST_WIDTH[1]
    assert MNIST_MASS[0] <= out.sum() / 255 <= MNIST_MASS[1]
    cy, cx = centre_of_mass(out)
    assert abs(cy - 14) <= 1 and abs(cx - 14) <= 1
    assert loops(out) == n_loops
    assert np.ptp(np.nonzero(out)[0]) + 1 in (20, 21)  # its height fills MNIST's 20 px box


def test_stroke_width_measures_anti_aliased_strokes():
    """stroke_width of a stroke drawn at 4x and shrunk with area averaging, as MNIST's digits
    were made: its width, or up to 0.7 px less (a binary edge pixel counts half or not at all)."""
    found = []
    for width in (1.5, 2, 2.5, 3, 3.5, 4):
        img = Image.new("L", (112, 112))
        ImageDraw.Draw(img).line([(24, 16), (80, 48), (36, 96)], fill=255, width=round(4 * width), joint="curve")
        found.append(ink_width(np.asarray(img.resize((28, 28), Image.Resampling.BOX))))
        assert width - 0.7 <= found[-1] <= width
    assert found == sorted(found)


def test_transparent_background_and_exif_rotation():
    # Black strokes on a transparent PNG canvas (the usual export of drawing apps).
    rgba = Image.new("RGBA", (200, 160), (0, 0, 0, 0))
    ImageDraw.Draw(rgba).line([(40, 30), (150, 30), (78, 170)], fill=(0, 0, 0, 255), width=14,
                                joint="curve")
    expected = preprocess(seven(), (28, 28))
    assert np.abs(preprocess(rgba, (28, 28)).astype(int) - expected).max() <= 2
    # A camera's sideways JPEG with an EXIF "rotate 90" tag is read upright.
    sideways = seven().transpose(Image.Transpose.ROTATE_90)  # stored turned 90 degrees anticlockwise
    exif = sideways.getexif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to view
    import io

    buf = io.BytesIO()
    sideways.save(buf, format="JPEG", exif=exif.tobytes(), quality=95)
    upright = preprocess(Image.open(io.BytesIO(buf.getvalue())), (28, 28))
    assert np.abs(upright.astype(int) - expected).mean() < 10


@pytest.mark.parametrize("mode", ["1", "P", "LA", "RGBA", "CMYK", "I;16", "I", "F"])
@pytest.mark.parametrize("side", [200, 1500])  # 1500: shrunk first, which not every mode allows
def test_any_pillow_mode_reads_the_same(mode, side):
    img = seven(size=(side, side), box=(side // 4, side // 5, side * 3 // 4, side * 4 // 5), width=side // 14)
    expected = preprocess(img, (28, 28))
    assert expected.max() == 255 and 19 <= np.ptp(np.nonzero(expected)[0]) + 1 <= 21  # a digit, not a blank
    assert np.abs(preprocess(img.convert(mode), (28, 28)).astype(int) - expected).mean() < 1


def test_huge_photo_is_fast_enough():
    import time

    img = seven(size=(4000, 3000), box=(1000, 800, 2600, 2400), width=60, mode="RGB")
    t0 = time.perf_counter()
    out = preprocess(img, (28, 28))
    assert time.perf_counter() - t0 < 3
    assert out.max() == 255


# ---------------------------------------------------------------- predict_arrays

def test_predict_arrays_pads_and_chunks_without_changing_results():
    model = _tiny_model()
    x = np.random.default_rng(0).integers(0, 256, (37, 28, 28), dtype=np.uint8)
    whole = predict.predict_arrays(model, x)
    assert whole.shape == (37, 10) and whole.dtype == np.float32
    np.testing.assert_allclose(whole.sum(1), 1, atol=1e-5)
    np.testing.assert_allclose(predict.predict_arrays(model, x[..., None], batch_size=16), whole, atol=1e-6)
    np.testing.assert_allclose(predict.predict_arrays(model, x[:3]), whole[:3], atol=1e-6)
    np.testing.assert_allclose(np.asarray(model(x[..., None].astype("float32"))), whole, atol=1e-5)
    assert predict.predict_arrays(model, x[:0]).shape == (0, 10)


# ---------------------------------------------------------------- bad input (no model needed)

def _tiny_model():
    from hdr.core.backend import quiet_import

    keras = quiet_import()
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Rescaling(1 / 255),
                             keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])


@pytest.fixture(scope="module")
def tiny_model_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.keras"
    _tiny_model().save(path)
    return path


@pytest.fixture
def fake_run(tmp_path, tiny_model_file) -> Path:
    """A run folder with an untrained (but valid) model: enough to test how inputs are checked."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("dataset: {name: mnist}\n")
    (run / "run.json").write_text(json.dumps({"id": "run", "status": "completed"}))
    (run / "model.keras").write_bytes(tiny_model_file.read_bytes())
    return run


@pytest.fixture
def good_png(tmp_path) -> Path:
    path = tmp_path / "seven.png"
    seven().save(path)
    return path


def _one_error_line(result, code: int) -> str:
    assert result.exit_code == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hdr: error: "), result.stderr
    assert result.stdout == ""
    return lines[0]


def test_text_file_named_png(cli_run, fake_run, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("this is not a picture\n")
    line = _one_error_line(cli_run("predict", fake_run, bad), 2)
    assert "notes.png" in line and "not an image" in line


def test_one_bad_file_does_not_cost_the_others(cli_run, fake_run, good_png, tmp_path):
    """Every readable image is predicted; each unreadable one is one stderr line naming it; exit 1."""
    (tmp_path / "empty.png").write_bytes(b"")
    r = cli_run("predict", fake_run, good_png, tmp_path / "nope.jpg", tmp_path / "empty.png")
    assert r.exit_code == 1, (r.stdout, r.stderr)
    assert [line.split(":")[0] for line in r.stdout.splitlines()] == [str(good_png)]
    errors = r.stderr.strip().splitlines()
    assert "image not found" in errors[0] and "nope.jpg" in errors[0]
    assert "empty.png" in errors[1] and "empty" in errors[1]
    assert "2 of 3 images" in errors[2] and len(errors) == 3


def test_truncated_image(cli_run, fake_run, good_png, tmp_path):
    data = good_png.read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    line = _one_error_line(cli_run("predict", fake_run, tmp_path / "cut.png"), 2)
    assert "cut.png" in line


def test_no_readable_image_is_a_usage_error(cli_run, fake_run, tmp_path):
    r = cli_run("predict", fake_run, tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png")
    assert r.exit_code == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert [n for n in ("a.png", "b.png", "c.png") if any(n in line for line in lines)] == ["a.png", "b.png", "c.png"]
    assert "none of the 3 images" in lines[-1] and len(lines) == 4


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 not really a zip", b"hello"])
def test_corrupt_model(cli_run, fake_run, good_png, content):
    (fake_run / "model.keras").write_bytes(content)
    line = _one_error_line(cli_run("predict", fake_run, good_png), 1)
    assert "model.keras" in line and "corrupt" in line


def test_truncated_model(cli_run, fake_run, good_png):
    data = (fake_run / "model.keras").read_bytes()
    (fake_run / "model.keras").write_bytes(data[: len(data) // 2])
    line = _one_error_line(cli_run("predict", fake_run, good_png), 1)
    assert "model.keras" in line and "corrupt" in line


def test_good_files_print_one_line_each(cli_run, fake_run, good_png, tmp_path):
    """The untrained model's guesses mean nothing; the format and order do."""
    jpg = tmp_path / "photo.jpg"
    seven(mode="RGB").save(jpg)
    result = cli_run("predict", fake_run, good_png, jpg, "--top", "3")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [str(good_png), str(jpg)]
    model = _tiny_model()  # the same weights as the run's model.keras (seeded)
    for line, path in zip(lines, (good_png, jpg)):
        m = re.fullmatch(r".+: (\d) \(([01]\.\d\d)\)  then (\d) \((\d\.\d\d)\), (\d) \((\d\.\d\d)\)", line)
        assert m, line
        # ...and they are the model's three most likely digits for the preprocessed image, best first.
        probs = np.asarray(model(preprocess(Image.open(path), (28, 28))[None, ..., None].astype("float32")))[0]
        top = np.argsort(-probs)[:3]
        assert [int(d) for d in m.groups()[::2]] == top.tolist(), (line, probs)
        assert [float(v) for v in m.groups()[1::2]] == pytest.approx(probs[top].tolist(), abs=0.006)


def test_missing_or_incomplete_run(cli_run, fake_run, good_png, tmp_path):
    line = _one_error_line(cli_run("predict", tmp_path / "no-such-run", good_png), 2)
    assert "run folder not found" in line
    (fake_run / "run.json").unlink()
    line = _one_error_line(cli_run("predict", fake_run, good_png), 2)
    assert "missing run.json" in line


def test_run_without_model_says_why(cli_run, fake_run, good_png):
    (fake_run / "model.keras").unlink()
    (fake_run / "run.json").write_text(json.dumps({"id": "run", "status": "interrupted"}))
    line = _one_error_line(cli_run("predict", fake_run, good_png), 2)
    assert "no model.keras" in line and "hdr train --resume" in line


def test_usage_mistakes(cli_run, fake_run, good_png):
    assert "no IMAGE" in _one_error_line(cli_run("predict", fake_run), 2)
    assert "--top" in _one_error_line(cli_run("predict", fake_run, good_png, "--top", "0"), 2)
    line = _one_error_line(cli_run("predict", fake_run, good_png, "--save-preprocessed", good_png), 2)
    assert "is a file" in line
    assert ".onnx or .tflite" in _one_error_line(cli_run("predict", fake_run, good_png, "--model", good_png), 2)
    assert "not found" in _one_error_line(cli_run("predict", fake_run, good_png, "--model", "missing.onnx"), 2)
    (fake_run / "junk.tflite").write_bytes(b"not a model")
    assert "not a LiteRT model" in _one_error_line(cli_run("predict", fake_run, good_png, "--model", fake_run / "junk.tflite"), 2)


# ---------------------------------------------------------------- real model, real digits

def _disguises(a: np.ndarray, rng) -> dict[str, Image.Image]:
    """One MNIST digit as users' files would hold it."""
    inv = Image.fromarray(255 - a)
    big = np.zeros((160, 240), np.uint8)
    top, left = rng.integers(0, 160 - 28), rng.integers(0, 240 - 28)
    big[top:top + 28, left:left + 28] = a
    photo = np.asarray(inv.resize((300, 300), Image.BICUBIC), np.float32)
    shade = np.linspace(235, 165, 300)[:, None]  # light falling off down the page
    photo = np.clip(photo / 255 * shade + rng.normal(0, 4, photo.shape), 0, 255).astype(np.uint8)
    return {
        "inverted": inv,                                            # black on white
        "scaled": inv.resize((200, 200), Image.BICUBIC),            # scanned large
        "rgb": Image.fromarray(a).convert("RGB").resize((56, 56)),  # colour, white on black
        "offcentre": Image.fromarray(big),                          # small, anywhere on the canvas
        "photo": Image.fromarray(photo).convert("RGB"),             # shaded, noisy, dark on light
    }


@pytest.fixture(scope="module")
def mnist_test_digits():
    if not have_real_data():
        pytest.skip(f"real datasets not found in {REAL_DATA}")
    from hdr.core import data

    with pytest.MonkeyPatch.context() as mp:  # for this load only: later tests see the environment as it was
        mp.setenv("HDR_DATA_DIR", str(REAL_DATA))
        d = data.load("mnist", verify=False)
    idx = np.random.default_rng(7).choice(len(d.test.y), N_DIGITS, replace=False)
    return d.test.x[idx, :, :, 0], d.test.y[idx]


@pytest.mark.realdata
def test_disguised_mnist_digits_are_read(cli_run, mnist_mlp_run, mnist_test_digits, tmp_path):
    x, y = mnist_test_digits
    rng = np.random.default_rng(0)
    files: dict[str, list[str]] = {}
    for i, a in enumerate(x):
        for form, img in _disguises(a, rng).items():
            ext = "jpg" if form == "photo" else "png"
            path = tmp_path / form / f"{i:02d}_{y[i]}.{ext}"
            path.parent.mkdir(exist_ok=True)
            img.save(path, quality=90) if ext == "jpg" else img.save(path)
            files.setdefault(form, []).append(str(path))
    all_files = [f for fs in files.values() for f in fs]
    result = cli_run("predict", mnist_mlp_run, *all_files, "--json", "--top", "3")
    assert result.exit_code == 0, result.stderr
    by_path = {r["path"]: r for r in json.loads(result.stdout)}
    assert list(by_path) == all_files  # one result per file, in order
    for form, paths in files.items():
        correct = sum(by_path[p]["digit"] == int(Path(p).stem.split("_")[1]) for p in paths)
        # A 1-epoch MLP reads about 97% of clean test digits; disguised as photos, 85% or more.
        assert correct / len(paths) >= 0.85, f"{form}: {correct}/{len(paths)} right"
    r = by_path[all_files[0]]
    assert len(r["top"]) == 3 and r["top"][0]["digit"] == r["digit"]
    assert r["top"][0]["probability"] >= r["top"][1]["probability"] >= r["top"][2]["probability"]
    assert len(r["probabilities"]) == 10 and abs(sum(r["probabilities"]) - 1) < 1e-3


PHOTO_DIGITS = 200
PHOTO_ACCURACY = 0.92  # the 1-epoch MLP read 95.0% of this set (seed 1); 90.5% before issue 14's preprocessing


@pytest.mark.realdata
def test_photo_like_test_digits_are_read(cli_run, mnist_mlp_run, tmp_path):
    """bench/perf/photos.py's photos of MNIST test digits (large or small, thin or thick pen, dark ink
    on uneven paper, off-centre, colour JPEG), read as a folder by the session's 1-epoch MLP."""
    from bench.perf import photos

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HDR_DATA_DIR", str(REAL_DATA))
        x, y, idx = photos.test_digits(PHOTO_DIGITS, seed=1)
    folder = tmp_path / "photos"
    folder.mkdir()
    for (jpeg, _, _), label, i in zip(photos.photos(x, 1, idx), y, idx):
        (folder / f"{i:05d}_{label}.jpg").write_bytes(jpeg)
    r = cli_run("predict", mnist_mlp_run, folder, "--json")
    assert r.exit_code == 0, r.stderr
    results = json.loads(r.stdout)
    assert len(results) == PHOTO_DIGITS
    right = sum(res["digit"] == int(Path(res["path"]).stem.split("_")[1]) for res in results)
    assert right / PHOTO_DIGITS >= PHOTO_ACCURACY, f"{right}/{PHOTO_DIGITS} photos read right"


@pytest.mark.realdata
def test_naive_resize_fails_where_preprocess_succeeds(mnist_mlp_run, mnist_test_digits):
    """The control for the test above: without the preprocessing the same model is lost,
    as seed 002 found with its drawing canvas."""
    x, y = mnist_test_digits
    model = predict.load_model(mnist_mlp_run)
    rng = np.random.default_rng(0)
    imgs = [_disguises(a, rng)["inverted"].resize((200, 200)) for a in x]
    naive = np.stack([np.asarray(im.convert("L").resize((28, 28))) for im in imgs])
    ours = np.stack([preprocess(im, (28, 28)) for im in imgs])
    naive_acc = (predict.predict_arrays(model, naive).argmax(1) == y).mean()
    ours_acc = (predict.predict_arrays(model, ours).argmax(1) == y).mean()
    assert naive_acc < 0.5 <= 0.9 <= ours_acc


@pytest.mark.realdata
def test_text_output_top_k_and_saved_inputs(cli_run, mnist_mlp_run, mnist_test_digits, tmp_path):
    x, y = mnist_test_digits
    # Two files share the stem "digit": the saved inputs must not overwrite each other.
    paths = [tmp_path / "a" / "digit.png", tmp_path / "a" / "digit.bmp", tmp_path / "b" / "digit.png"]
    for a, p in zip(x, paths):
        p.parent.mkdir(exist_ok=True)
        Image.fromarray(255 - a).resize((84, 84)).save(p)
    blank = tmp_path / "blank.png"
    Image.new("L", (64, 64), 255).save(blank)
    seen = tmp_path / "seen"
    result = cli_run("predict", mnist_mlp_run, *paths, blank, "--top", "2", "--save-preprocessed", seen)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 4
    for line, p, label in zip(lines, paths, y):
        assert line.startswith(f"{p}: {label} (")
        assert " then " in line  # the runner-up of --top 2
    assert lines[3] == f"{blank}: no digit found (blank image)"
    saved = sorted(f.name for f in seen.iterdir())
    assert saved == ["blank.png", "digit-2.png", "digit-3.png", "digit.png"]
    first = np.asarray(Image.open(seen / "digit.png"))
    assert first.shape == (28, 28) and first.dtype == np.uint8
    np.testing.assert_array_equal(first, preprocess(Image.open(paths[0]), (28, 28)))
    assert not np.asarray(Image.open(seen / "blank.png")).any()


# ----------------------------------------------------------------------------- ONNX, folders, CSV

@pytest.fixture(scope="module")
def onnx_run(mnist_mlp_run, tmp_path_factory) -> Path:
    """A copy of the session's MNIST run with its ONNX export (hdr export --format onnx)."""
    import shutil

    from .conftest import run_cli

    run = tmp_path_factory.mktemp("onnx") / "run"
    shutil.copytree(mnist_mlp_run, run, ignore=shutil.ignore_patterns("export", ".lock"))
    r = run_cli("export", run, "--format", "onnx")
    assert r.exit_code == 0, r.stderr
    return run


@pytest.fixture
def digit_folder(mnist_test_digits, tmp_path) -> Path:
    x, y = mnist_test_digits
    folder = tmp_path / "digits"
    folder.mkdir()
    for i, a in enumerate(x[:12]):
        Image.fromarray(255 - a).resize((112, 112)).save(folder / f"{i:02d}_{y[i]}.png")  # dark on light, 4x
    return folder


@pytest.mark.realdata
def test_onnx_predictions_equal_keras(cli_run, mnist_mlp_run, onnx_run, digit_folder):
    keras_r = cli_run("predict", mnist_mlp_run, digit_folder, "--json", "--top", "3")
    onnx_r = cli_run("predict", onnx_run, digit_folder, "--json", "--top", "3")
    assert keras_r.exit_code == onnx_r.exit_code == 0, (keras_r.stderr, onnx_r.stderr)
    k, o = json.loads(keras_r.stdout), json.loads(onnx_r.stdout)
    assert [r["path"] for r in k] == [r["path"] for r in o] == sorted(str(p) for p in digit_folder.iterdir())
    assert [r["digit"] for r in k] == [r["digit"] for r in o]
    np.testing.assert_allclose([r["probabilities"] for r in k], [r["probabilities"] for r in o], atol=1e-4)
    # --model names any exported .onnx file, used in place of the run's model.keras
    m = cli_run("predict", mnist_mlp_run, digit_folder, "--json", "--top", "3", "--model", onnx_run / "export" / "model.onnx")
    assert [r["digit"] for r in json.loads(m.stdout)] == [r["digit"] for r in k]


@pytest.mark.realdata
def test_onnx_predict_does_not_import_tensorflow(onnx_run, digit_folder):
    import os
    import subprocess
    import sys

    image = sorted(digit_folder.iterdir())[0]
    wrapper = ("import runpy, sys\n"
               "try:\n    runpy.run_module('hdr', run_name='__main__')\n"
               "finally:\n"
               "    heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras'))\n"
               "    print('HEAVY', heavy, file=sys.stderr)\n")
    out = subprocess.run([sys.executable, "-c", wrapper, "predict", str(onnx_run), str(image)],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(Path(predict.__file__).parents[1])})
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"{image}: {image.stem.split('_')[1]} ")
    assert "HEAVY []" in out.stderr, out.stderr[-2000:]


@pytest.mark.realdata
def test_folder_with_bad_files_and_csv_output(cli_run, onnx_run, digit_folder, tmp_path):
    (digit_folder / "notes.txt").write_text("not an image, not an image suffix: skipped\n")
    (digit_folder / "05_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    csv_path = tmp_path / "out.csv"
    r = cli_run("predict", onnx_run, digit_folder, "--top", "2", "--output", csv_path)
    assert r.exit_code == 1
    errors = r.stderr.strip().splitlines()
    assert len(errors) == 2 and "05_broken.png" in errors[0] and "1 of 13 images" in errors[1]
    images = sorted(p for p in digit_folder.iterdir() if p.suffix == ".png" and p.name != "05_broken.png")
    assert [line.split(":")[0] for line in r.stdout.splitlines()] == [str(p) for p in images]
    import csv

    rows = list(csv.DictReader(csv_path.open()))
    assert list(rows[0]) == ["file", "digit", "confidence", "top"]
    assert [row["file"] for row in rows] == [str(p) for p in images]
    right = sum(row["digit"] == Path(row["file"]).stem.split("_")[1] for row in rows)
    assert right >= 10
    assert all(len(row["top"].split()) == 2 and row["top"].startswith(row["digit"] + ":") for row in rows)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # written atomically
