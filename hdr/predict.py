"""hdr predict: classify the digit in the user's own image files with a trained run's model.

A photo or scan is not an MNIST image: it may be dark ink on light paper, unevenly lit, any
size, off-centre, drawn with a pen far thinner (or a brush far thicker) than MNIST strokes.
`preprocess` undoes that so the model sees what it was trained on: a bright digit on black,
re-framed the way the dataset was made (hdr.transfer.reframe: MNIST fits the digit in a 20x20
box centred by centre of mass in 28x28; USPS scales it to fill 16x16).
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from hdr.errors import HdrError, UsageError
from hdr.rundir import load_model  # noqa: F401  (hdr.predict.load_model: what draw and tests use)

# MNIST strokes (pixels >= 128) are 2.4 px wide at 28x28, 5% to 95% of digits within [1.5, 3.8]
# (by _stroke_width on the test set). Only strokes outside that range are thickened or thinned.
STROKE_TARGET, STROKE_MIN, STROKE_MAX = 2.4, 1.5, 3.8
SMALL = 64  # images with a shorter side below this are treated as clean digital drawings
MAX_SIDE = 1024  # larger inputs are shrunk to about this before any other work


# ----------------------------------------------------------------------------- preprocessing

def _grey(image):
    """The image as a float grey array, transparency flattened and camera rotation applied."""
    from PIL import Image, ImageOps

    image = ImageOps.exif_transpose(image)  # phone photos are often stored sideways
    transparent = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if image.mode not in ("L", "RGB", "RGBA"):  # palette, 1-bit, 16-bit, CMYK...: as reduce needs
        image = image.convert("RGBA" if transparent else "L")
    if max(image.size) > MAX_SIDE:
        # A 12-megapixel photo holds far more detail than a 28x28 input needs; shrink it first.
        image = image.reduce(-(-max(image.size) // MAX_SIDE))
    if transparent:
        rgba = image.convert("RGBA")
        alpha = np.asarray(rgba.getchannel("A"), np.float32) / 255
        grey = np.asarray(rgba.convert("L"), np.float32)
        if alpha.min() < 1:
            # Strokes on a transparent background: put them on the opposite of their own colour,
            # else white ink on a white backdrop (or black on black) would vanish.
            ink = grey[alpha > 0.5]
            backdrop = 0.0 if ink.size and ink.mean() > 127 else 255.0
            grey = grey * alpha + backdrop * (1 - alpha)
        return grey
    return np.asarray(image.convert("L"), np.float32)


def _border(a: np.ndarray) -> np.ndarray:
    # A ring a few percent deep: paper edges, not a single row that a scan margin might spoil.
    d = max(1, round(min(a.shape) * 0.05))
    return np.concatenate([a[:d].ravel(), a[-d:].ravel(), a[:, :d].ravel(), a[:, -d:].ravel()])


def _stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of the ink in mask: a stroke of width w and length l has area w*l and
    perimeter about 2*l, so w = 2 * area / perimeter. The perimeter is counted as pixel edges
    (a city-block length), which over all stroke directions averages 4/pi of the true length."""
    m = np.pad(mask.astype(np.int8), 1)
    edges = np.abs(np.diff(m, axis=0)).sum() + np.abs(np.diff(m, axis=1)).sum()
    return float(2 * mask.sum() / (edges * np.pi / 4)) if edges else 0.0


def _square_filter(a: np.ndarray, k: int, reduce, outside: str = "edge") -> np.ndarray:
    """Min or max over k x k squares, done as two 1-D passes (k operations a pixel, not k*k
    as with PIL's rank filters, which took over 100 ms on a phone photo). `outside` is what
    lies beyond the edges: "edge" (the page goes on) or "constant" (black background)."""
    from numpy.lib.stride_tricks import sliding_window_view

    r = k // 2
    a = reduce(sliding_window_view(np.pad(a, ((r, r), (0, 0)), mode=outside), k, axis=0), axis=-1)
    return reduce(sliding_window_view(np.pad(a, ((0, 0), (r, r)), mode=outside), k, axis=1), axis=-1)


def _background(a: np.ndarray) -> np.ndarray:
    """The paper's level at each pixel (after inversion: how dark it is), uneven light and
    shadows included: a grey-level opening with a window far wider than a pen stroke removes
    the strokes and keeps the slowly varying background. Small images are digital drawings or
    crops with even paper, where the border median is enough and an opening would eat strokes."""
    from PIL import Image, ImageFilter

    h, w = a.shape
    if min(h, w) < SMALL:
        return np.full_like(a, np.median(_border(a)))
    shrink = max(1, max(h, w) // 64)  # the background is smooth: a small copy holds it all
    small = np.asarray(_to_image(a).reduce(shrink), np.float32)
    k = min(small.shape) // 4 // 2 * 2 + 1
    opened = _square_filter(_square_filter(small, k, np.min), k, np.max)
    smooth = _to_image(opened).filter(ImageFilter.BoxBlur(k // 2)).resize((w, h), Image.BILINEAR)
    return np.asarray(smooth, np.float32)


def _normalise(grey: np.ndarray) -> np.ndarray:
    """Bright digit on a zero background, ink stretched to 255, paper texture and shading removed."""
    lo, hi = np.percentile(grey, [1, 99])
    if np.median(_border(grey)) > (lo + hi) / 2:
        grey = 255 - grey  # light paper: invert so the digit is bright, as in MNIST
    a = np.clip(grey - _background(grey), 0, None)
    # The ink's level: the brightest value that two neighbouring pixels both reach, so a lone
    # hot pixel can't set it (a percentile can't either: a thin "1" is under 1% of a photo).
    peak = max(np.minimum(a[:, 1:], a[:, :-1]).max(initial=0), np.minimum(a[1:], a[:-1]).max(initial=0))
    if peak < 20:  # nothing stands out from the paper by more than 8% of full scale
        return np.zeros_like(a)
    a = np.clip(a * (255 / peak), 0, 255)
    # Grain and left-over shading sit well below the ink: drop them so they don't widen the crop.
    a[a < 64] = 0
    return a


def _bbox(a: np.ndarray):
    rows = np.nonzero(a.max(axis=1) > 0)[0]
    cols = np.nonzero(a.max(axis=0) > 0)[0]
    if rows.size == 0:
        return None
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def _to_image(a: np.ndarray):
    from PIL import Image

    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def _adjust_strokes(img, scale: float):
    """Thicken pen-thin or thin brush-fat strokes so that, after scaling by `scale`, they are as
    wide as MNIST's. Only for images shrunk a lot, where the width is measured on many pixels."""
    from PIL import Image

    if scale > 0.5:
        return img
    # Measured on a copy at twice the output size: averaging there smooths the ragged, noisy
    # edges that would inflate the perimeter, and it is fast.
    w, h = img.size
    probe = img.resize((max(1, round(w * scale * 2)), max(1, round(h * scale * 2))), Image.BOX)
    width = _stroke_width(np.asarray(probe) >= 128) / (scale * 2)
    if width == 0 or STROKE_MIN / scale <= width <= STROKE_MAX / scale:
        return img
    target = STROKE_TARGET / scale  # wanted width in source pixels
    k = int(round(abs(target - width))) // 2 * 2 + 1  # a k x k max/min filter changes width by k-1
    if k < 3:
        return img
    # Room around the tight crop for thickened strokes to grow into; black beyond it, so
    # thinning eats strokes that touch the crop's edge from that side too.
    a = np.pad(np.asarray(img, np.float32), k // 2)
    if width < target:
        a = _square_filter(a, k, np.max, outside="constant")
    else:
        # Close pinholes and hairline cracks first (pen texture, seams between drawn
        # segments): thinning would widen each into a gap across the stroke.
        a = _square_filter(_square_filter(a, 3, np.max, outside="constant"), 3, np.min, outside="constant")
        a = _square_filter(a, k, np.min, outside="constant")
    return _to_image(a) if a.max() >= 128 else img


def preprocess(image, size: tuple[int, int] = (28, 28), style: str | None = None) -> np.ndarray:
    """A PIL image of one handwritten digit -> uint8 (h, w) model input, bright digit on black,
    framed as the model's dataset frames digits (hdr.transfer.style_for).

    Returns all zeros when the image holds no digit (blank page or canvas)."""
    from hdr import transfer

    h, w = int(size[0]), int(size[1])
    style = style or transfer.style_for((h, w))
    a = _normalise(_grey(image))
    box = _bbox(a)
    if box is None:
        return np.zeros((h, w), np.uint8)
    r0, r1, c0, c1 = box
    crop = a[r0:r1, c0:c1]
    # Strokes are fixed at the source resolution, before the one resampling in reframe.
    fraction = transfer.MNIST_BOX_FRACTION if style == "centred" else 1.0
    scale = min(h * fraction / crop.shape[0], w * fraction / crop.shape[1])
    crop = np.asarray(_adjust_strokes(_to_image(crop), scale))
    return transfer.reframe(crop, (h, w), style)


# ----------------------------------------------------------------------------- model

class OnnxModel:
    """An exported ONNX model (hdr export) run by ONNX Runtime, with the few attributes of a Keras
    model that prediction uses. Importing it loads neither TensorFlow nor Keras."""

    def __init__(self, path: str | Path):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise UsageError(f"{path} is not an ONNX model ONNX Runtime can read ({first})") from None
        inp, out = self.session.get_inputs()[0], self.session.get_outputs()[0]
        self.input_name = inp.name
        self.input_shape = (None, *inp.shape[1:])
        self.output_shape = (None, out.shape[-1])
        if len(self.input_shape) != 4 or self.input_shape[-1] != 1 or inp.type != "tensor(uint8)":
            raise UsageError(f"{path}: expected an hdr export taking uint8 (N, H, W, 1) images, "
                             f"got {inp.type} {inp.shape}")

    def predict_on_batch(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(x, np.uint8)})[0]


ONNX_EXPORT = Path("export") / "model.onnx"  # where hdr export --format onnx writes by default


def load_predictor(run, model_path: str | Path | None = None):
    """What predicts for run folder `run`: the ONNX model at `model_path`, else the run's
    RUN/export/model.onnx when it exists and ONNX Runtime is installed (no TensorFlow import),
    else model.keras."""
    import importlib.util

    from hdr.rundir import open_run

    folder = open_run(run)
    have_ort = importlib.util.find_spec("onnxruntime") is not None
    if model_path is not None:
        model_path = Path(model_path)
        if not model_path.is_file():
            raise UsageError(f"--model: {model_path} not found")
        if not have_ort:
            raise UsageError("--model needs onnxruntime, not installed; install with: pip install 'hdr[export]'")
        return OnnxModel(model_path)
    if have_ort and (folder / ONNX_EXPORT).is_file():
        return OnnxModel(folder / ONNX_EXPORT)
    return load_model(folder)


def input_size(model) -> tuple[int, int]:
    return tuple(int(d) for d in model.input_shape[1:3])


def _bucket(n: int, batch: int) -> int:
    """The padded batch length for n rows: a power of two, so a compiled predict function is
    reused across calls instead of being retraced for every new batch length."""
    return min(batch, 1 << max(0, n - 1).bit_length())


def predict_arrays(model, x_uint8: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Class probabilities (n, classes) float32 for uint8 images (n, h, w) or (n, h, w, 1).

    predict_on_batch skips model.predict's per-call dataset and callback set-up, which dominates
    for a few images; padding to fixed batch lengths keeps one compiled graph per length."""
    x = np.asarray(x_uint8)
    if x.ndim == 3:
        x = x[..., None]
    n = len(x)
    if n == 0:
        return np.zeros((0, model.output_shape[-1]), np.float32)
    out = []
    for start in range(0, n, batch_size):
        chunk = x[start:start + batch_size]
        m = len(chunk)
        padded_len = _bucket(m, batch_size)
        if padded_len != m:
            chunk = np.concatenate([chunk, np.zeros((padded_len - m, *chunk.shape[1:]), chunk.dtype)])
        probs = model.predict_on_batch(chunk)
        out.append(np.asarray(probs, np.float32)[:m])
    return np.concatenate(out)


# ----------------------------------------------------------------------------- images

def open_image(path: str | Path):
    """The image opened for reading, or a UsageError naming the file and what is wrong with it."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.exists():
        raise UsageError(f"image not found: {p}")
    if p.is_dir():
        raise UsageError(f"{p} is a folder, not an image")
    if p.stat().st_size == 0:
        raise UsageError(f"{p} is empty (0 bytes), not an image")
    try:
        image = Image.open(p)
    except UnidentifiedImageError:
        raise UsageError(f"{p} is not an image pillow can read (PNG, JPEG, BMP, GIF, TIFF, WebP, ...)") from None
    except Image.DecompressionBombError:
        raise UsageError(f"{p} is too large to be a digit image; shrink it first") from None
    except OSError as e:
        raise UsageError(f"cannot read {p}: {e.strerror or e}") from None
    return image


def preprocess_file(path: str | Path, size: tuple[int, int]) -> np.ndarray:
    """One image file -> the model input; a damaged file is a UsageError naming it."""
    from PIL import Image

    with open_image(path) as image:
        try:
            image.load()  # decode in full here, so a truncated file is reported, not half-read
        except Image.DecompressionBombError:
            raise UsageError(f"{path} is too large to be a digit image; shrink it first") from None
        except (OSError, ValueError, SyntaxError) as e:
            raise UsageError(f"{path} is a damaged image ({e}); re-save or re-export it") from None
        return preprocess(image, size)


def _unique_names(paths: list[str]) -> list[str]:
    """PNG names for --save-preprocessed: the image's stem, numbered when two share one."""
    names, seen = [], set()
    for p in paths:
        stem = Path(p).stem or "image"
        name, i = f"{stem}.png", 2
        while name in seen:
            name, i = f"{stem}-{i}.png", i + 1
        seen.add(name)
        names.append(name)
    return names


def _save_inputs(folder: Path, paths: list[str], inputs: np.ndarray) -> None:
    import io

    from PIL import Image

    from hdr.rundir import atomic_write

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UsageError(f"--save-preprocessed: {folder} is a file, not a folder") from None
    except OSError as e:
        raise UsageError(f"--save-preprocessed: cannot create {folder}: {e.strerror}") from None
    for name, a in zip(_unique_names(paths), inputs):
        buf = io.BytesIO()
        Image.fromarray(np.asarray(a, np.uint8)).save(buf, format="PNG")
        atomic_write(folder / name, buf.getvalue())


def _result(path: str, probs: np.ndarray | None, top: int) -> dict:
    if probs is None:
        return {"path": path, "digit": None, "confidence": None, "top": [], "probabilities": None,
                "note": "no digit found (blank image)"}
    order = np.argsort(-probs, kind="stable")[:top]
    return {
        "path": path,
        "digit": int(order[0]),
        "confidence": round(float(probs[order[0]]), 6),
        "top": [{"digit": int(d), "probability": round(float(probs[d]), 6)} for d in order],
        "probabilities": [round(float(p), 6) for p in probs],
    }


def _line(r: dict) -> str:
    if r["digit"] is None:
        return f"{r['path']}: {r['note']}"
    text = f"{r['path']}: {r['digit']} ({r['confidence']:.2f})"
    if len(r["top"]) > 1:
        text += "  then " + ", ".join(f"{t['digit']} ({t['probability']:.2f})" for t in r["top"][1:])
    return text


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm", ".pnm"}


def expand(paths: list[str]) -> list[str]:
    """IMAGE arguments -> image files: a folder stands for its image files (by suffix), sorted."""
    out = []
    for p in paths:
        q = Path(p)
        if q.is_dir():
            files = sorted(str(f) for f in q.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and not f.is_dir())
            if not files:
                raise UsageError(f"{q} holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
            out.extend(files)
        else:
            out.append(p)
    return out


def predict_files(run, paths: list[str], top: int = 1, save_dir: Path | None = None,
                  model_path: str | Path | None = None) -> tuple[list[dict], list[str]]:
    """Predict every readable image in one batch call. Returns the results and one message per
    unreadable image: one bad file does not cost the others. Each image is reduced to its small
    model input at once, so many large photos never sit in memory together."""
    if save_dir is not None and Path(save_dir).exists() and not Path(save_dir).is_dir():
        raise UsageError(f"--save-preprocessed: {save_dir} is a file, not a folder")
    model = load_predictor(run, model_path)
    size = input_size(model)
    inputs, good, bad = [], [], []
    for p in paths:
        try:
            inputs.append(preprocess_file(p, size))
            good.append(p)
        except UsageError as e:
            bad.append(str(e.format_message()))
    if not good:
        return [], bad
    inputs = np.stack(inputs)
    blank = ~inputs.reshape(len(inputs), -1).any(axis=1)
    probs = predict_arrays(model, inputs)
    if save_dir is not None:
        _save_inputs(Path(save_dir), good, inputs)
    return [_result(p, None if b else pr, top) for p, pr, b in zip(good, probs, blank)], bad


def _csv(results: list[dict]) -> str:
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["file", "digit", "confidence", "top"])
    for r in results:
        top = " ".join(f"{t['digit']}:{t['probability']:.6f}" for t in r["top"])
        w.writerow([r["path"], "" if r["digit"] is None else r["digit"],
                    "" if r["confidence"] is None else f"{r['confidence']:.6f}", top])
    return buf.getvalue()


@click.command()
@click.argument("run", type=click.Path(path_type=str))
@click.argument("images", nargs=-1, metavar="IMAGE...")
@click.option("--top", "top", default=1, show_default=True, metavar="K",
              help="Also show the next most likely digits, K in all (1-10).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option("--output", "output", type=click.Path(path_type=Path), metavar="FILE.csv",
              help="Also write the results as CSV: file, digit, confidence, top (digit:probability ...).")
@click.option("--model", "model_path", type=click.Path(path_type=Path), metavar="PATH",
              help="An exported .onnx model (hdr export) to predict with instead of the run's own.")
@click.option("--save-preprocessed", "save_dir", type=click.Path(path_type=Path), metavar="DIR",
              help="Write the 28x28 (or 16x16) input the model saw for each image as PNG into DIR.")
def command(run, images, top, as_json, output, model_path, save_dir):
    """Predict the digit in each IMAGE with the model of the run folder RUN.

    IMAGE is a photo, scan or drawing of one handwritten digit (PNG, JPEG, BMP, ...), any size,
    colour or grey, dark on light or light on dark, or a folder of them (its image files, in name
    order). It is converted to the dataset's format: grey, bright digit on black, cropped and
    re-framed to the model's input size.

    When RUN/export/model.onnx exists (hdr export RUN --format onnx) it is run with ONNX Runtime,
    without loading TensorFlow: one image takes a fraction of a second instead of seconds.

    Every readable image is predicted; each unreadable one is named on stderr, one line each,
    and the exit code is then 1 (2 when no image could be read at all, or for a bad argument).

    \b
      hdr predict runs/<id> my_seven.jpg
      hdr predict runs/<id> digits/*.png --top 3 --save-preprocessed seen/
    """
    if not images:
        raise UsageError("no IMAGE given: hdr predict RUN IMAGE... (e.g. hdr predict runs/<id> digit.png)")
    if not 1 <= top <= 10:
        raise UsageError(f"--top must be between 1 and 10, got {top}")
    if output is not None and (output.is_dir() or not output.parent.is_dir()):
        raise UsageError(f"--output {output}: {'is a folder' if output.is_dir() else 'its folder does not exist'}")
    paths = expand(list(images))
    results, bad = predict_files(run, paths, top=top, save_dir=save_dir, model_path=model_path)
    if not results and len(paths) == 1:
        raise UsageError(bad[0])
    for message in bad:
        click.echo(f"hdr: error: {message}", err=True)
    if not results:
        raise UsageError(f"none of the {len(paths)} images could be read")
    if output is not None:
        from hdr.rundir import atomic_write

        atomic_write(output, _csv(results))
    if as_json:
        click.echo(json.dumps(results, indent=2))
    else:
        for r in results:
            click.echo(_line(r))
    if bad:
        raise HdrError(f"{len(bad)} of {len(paths)} images could not be read (named above)")
