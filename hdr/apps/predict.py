"""hdr predict: classify the digit in the user's own image files with a trained run's model.

A photo or scan is not an MNIST image: it may be dark ink on light paper, unevenly lit, any
size, off-centre, drawn with a pen far thinner (or a brush far thicker) than MNIST strokes.
`preprocess` makes it the way the training digits were made: ink separated from the paper and
cut into a binary digit, its strokes brought into the dataset's range of widths (measured and
redrawn at 4x the model's scale), then scaled with anti-aliasing and framed as the dataset
frames digits (hdr.transfer.reframe: MNIST fits the digit in a 20x20 box centred by centre of
mass in 28x28; USPS scales it to fill 16x16). bench/perf/photos.py measures it on photo-like images.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

if "numpy" not in sys.modules:
    # Prediction multiplies no large matrices with numpy: the OpenBLAS thread pool that numpy's
    # first import starts costs ~80 ms of CPU for nothing (BENCHMARKS.md section 5, start-up).
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from hdr.core.errors import HdrError, UsageError
from hdr.core.files import atomic_write
from hdr.runs import rundir
from hdr.runs.rundir import load_model  # noqa: F401  (hdr.apps.predict.load_model: what draw and tests use)

WORK = 4  # strokes are measured and redrawn at 4x the model's input scale, where a 2 px stroke is 8 px
SMALL = 64  # images with a shorter side below this are treated as clean digital drawings
MAX_SIDE = 1024  # larger inputs are shrunk to about this before any other work


# ----------------------------------------------------------------------------- preprocessing

def _grey(image):
    """The image as a float grey array, transparency flattened and camera rotation applied."""
    from PIL import ImageOps

    image = ImageOps.exif_transpose(image)  # phone photos are often stored sideways
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        image = _eight_bit(image)
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


def _eight_bit(image):
    """A 16-bit, 32-bit integer or float image as 8-bit grey, scaled by its depth: Pillow's own
    conversion to L clips every level above 255, which turns a 16-bit scan, or a float TIFF in
    0..1, into a blank page."""
    lo, hi = image.getextrema()
    if image.mode == "F" and 0 <= lo and hi <= 1:
        scale, offset = 255, 0  # floats in 0..1
    elif 0 <= lo and hi <= 255:
        scale, offset = 1, 0  # 8-bit levels in a wider type (what Pillow's convert("I") of an L image gives)
    elif 0 <= lo and image.mode != "F":
        scale, offset = 255 / (2 ** int(hi).bit_length() - 1), 0  # its bit depth: 16-bit /257, 12-bit /16.06
    else:
        scale = 255 / ((hi - lo) or 1)  # anything else: its own range
        offset = -lo * scale
    return image.convert("F").point(lambda v: v * scale + offset).convert("L")


def _quantile(a, q: float) -> float:
    """np.quantile(a, q) (linear interpolation) by np.partition: np.median and np.percentile
    import numpy.ma on first use, 30 ms of hdr predict's start-up."""
    a = np.asarray(a, np.float64).ravel()
    pos = q * (a.size - 1)
    lo = int(pos)
    hi = min(lo + 1, a.size - 1)
    p = np.partition(a, [lo, hi])
    return float(p[lo] + (p[hi] - p[lo]) * (pos - lo))


def _border(a: np.ndarray) -> np.ndarray:
    # A ring a few percent deep: paper edges, not a single row that a scan margin might spoil.
    d = max(1, round(min(a.shape) * 0.05))
    return np.concatenate([a[:d].ravel(), a[-d:].ravel(), a[:, :d].ravel(), a[:, -d:].ravel()])


# The morphology here (skeleton, _depth, _dilate, _square_filter, _otsu, and PIL's BoxBlur in
# _background) is numpy, not scipy.ndimage or scikit-image, for hdr predict's start-up (goal: one
# image in under 0.5 s): importing scipy.ndimage costs ~0.17 s, scikit-image's skeletonize and
# threshold_otsu ~0.28 s with it, after numpy, PIL and ONNX Runtime. With them, one image took
# 0.59 s (scipy.ndimage) and 0.76 s (both) instead of 0.27 s (median of 15, ONNX export, 2 busy
# CPUs, 2026-12-04), and read no more photos: 98.40% and 98.20% against 98.45% of 2000
# (python -m bench.perf.photos, a 2-epoch CNN). BENCHMARKS.md, start-up, has the figures.

def skeleton(mask: np.ndarray) -> np.ndarray:
    """The one-pixel-wide centre lines of a binary mask (Zhang and Suen's thinning, each pass
    done on the whole image at once). Loops and branches are kept: a pen-thin skeleton of the
    digit, whatever the pen was."""
    # Not skimage.morphology.skeletonize (import ~0.27 s; its Zhang-Suen variant differs in ~13%
    # of the skeleton pixels of photo digits): see the note above.
    m = np.pad(np.asarray(mask, bool), 1)
    changed = True
    while changed:
        changed = False
        for step in (0, 1):
            c = m[1:-1, 1:-1]
            p2, p3, p4, p5 = m[:-2, 1:-1], m[:-2, 2:], m[1:-1, 2:], m[2:, 2:]
            p6, p7, p8, p9 = m[2:, 1:-1], m[2:, :-2], m[1:-1, :-2], m[:-2, :-2]
            ring = (p2, p3, p4, p5, p6, p7, p8, p9, p2)
            neighbours = sum(q.astype(np.uint8) for q in ring[:8])
            crossings = sum((~ring[i] & ring[i + 1]).astype(np.uint8) for i in range(8))
            kept = (p2 & p4 & p6) | (p4 & p6 & p8) if step == 0 else (p2 & p4 & p8) | (p2 & p6 & p8)
            delete = c & (neighbours >= 2) & (neighbours <= 6) & (crossings == 1) & ~kept
            if delete.any():
                m[1:-1, 1:-1] = c & ~delete
                changed = True
    return m[1:-1, 1:-1]


def _depth(mask: np.ndarray) -> np.ndarray:
    """For each ink pixel, how many erosions it survives, alternately by a cross and a square
    (an octagonal distance to the paper, close to the true one in every direction); 1 at an edge."""
    # scipy.ndimage has no octagonal metric; its Euclidean distance_transform_edt measures MNIST
    # strokes ~0.05 px wider (median 2.24 px, not 2.19), off the calibrated DatasetSpec widths.
    depth = np.zeros(mask.shape, np.int32)
    m = np.asarray(mask, bool)
    square = False
    while m.any():
        depth += m
        p = np.pad(m, 1)
        m = m & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
        if square:
            m &= p[:-2, :-2] & p[:-2, 2:] & p[2:, :-2] & p[2:, 2:]
        square = not square
    return depth


def _width(mask: np.ndarray) -> float:
    """The pen's width in a binary mask: twice the depth of the skeleton, a pixel less (a stroke
    n pixels wide has its centre n/2 deep), averaged over the middle half of the skeleton, so
    neither a blob (a loop a thick pen filled in) nor the short ends of strokes sway it."""
    depths = _depth(mask)[skeleton(mask)]
    if depths.size == 0:
        return 0.0
    lo, hi = _quantile(depths, 0.25), _quantile(depths, 0.75)
    middle = depths[(depths >= lo) & (depths <= hi)]
    return float(2 * middle.mean() - 1)


def stroke_width(image: np.ndarray) -> float:
    """Mean stroke width, in pixels, of an anti-aliased digit image (bright on black, uint8), as
    preprocessing judges it: measured at WORK times the size, ink where the image is >= 128."""
    from PIL import Image

    a = np.asarray(image, np.float32)
    big = Image.fromarray(a).resize((a.shape[1] * WORK, a.shape[0] * WORK), Image.Resampling.BICUBIC)
    return _width(np.asarray(big) >= 128) / WORK


def _dilate(mask: np.ndarray, radius: float) -> np.ndarray:
    """The mask drawn with a round nib of this radius (a binary dilation by a disk)."""
    # What scipy.ndimage.binary_dilation by the disk gives (the same on 400 of 400 photo masks),
    # no slower, without its import.
    r = int(radius)
    m = np.pad(mask, r)
    h, w = mask.shape
    out = np.zeros_like(mask)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dy * dy + dx * dx <= radius * radius:
                out |= m[r + dy: r + dy + h, r + dx: r + dx + w]
    return out


def _square_filter(a: np.ndarray, k: int, reduce) -> np.ndarray:
    """Min or max over k x k squares, done as two 1-D passes (k operations a pixel, not k*k
    as with PIL's rank filters, which took over 100 ms on a phone photo); the page goes on
    beyond the edges (scipy.ndimage's minimum_filter/maximum_filter, mode="nearest", without
    their import)."""
    from numpy.lib.stride_tricks import sliding_window_view

    r = k // 2
    a = reduce(sliding_window_view(np.pad(a, ((r, r), (0, 0)), mode="edge"), k, axis=0), axis=-1)
    return reduce(sliding_window_view(np.pad(a, ((0, 0), (r, r)), mode="edge"), k, axis=1), axis=-1)


def _plane(a: np.ndarray) -> np.ndarray:
    """The paper's level as a plane (a level and a straight gradient) fitted to the border ring,
    fitted again without the pixels far off it: ink that touches the edge is not paper."""
    h, w = a.shape
    d = max(1, round(min(h, w) * 0.05))
    ring = np.ones((h, w), bool)
    ring[d:-d, d:-d] = False
    rows, cols = np.nonzero(ring)
    design = np.column_stack([np.ones(rows.size), rows / h, cols / w])
    values = a[ring].astype(np.float64)
    keep = np.ones(values.size, bool)
    for _ in range(2):
        coef = np.linalg.lstsq(design[keep], values[keep], rcond=None)[0]
        off = np.abs(values - design @ coef)
        keep = off <= max(3 * 1.4826 * _quantile(off[keep], 0.5), 2.0)
    r, c = np.indices((h, w), np.float32)
    return (coef[0] + coef[1] * r / h + coef[2] * c / w).astype(np.float32)


def _background(a: np.ndarray) -> np.ndarray:
    """The paper's level at each pixel (after inversion: how dark it is), uneven light and
    shadows included: a grey-level opening with a window far wider than a pen stroke removes
    the strokes and keeps the slowly varying background. Small images are digital drawings or
    crops where an opening would eat strokes; a plane through their border is enough."""
    from PIL import Image, ImageFilter

    h, w = a.shape
    if min(h, w) < SMALL:
        return _plane(a)
    shrink = max(1, max(h, w) // 64)  # the background is smooth: a small copy holds it all
    small = np.asarray(_to_image(a).reduce(shrink), np.float32)
    k = min(small.shape) // 4 // 2 * 2 + 1
    opened = _square_filter(_square_filter(small, k, np.min), k, np.max)
    # PIL's BoxBlur: within 1 grey level of scipy.ndimage.uniform_filter, without its import.
    smooth = _to_image(opened).filter(ImageFilter.BoxBlur(k // 2)).resize((w, h), Image.BILINEAR)
    return np.asarray(smooth, np.float32)


def _extremes(a: np.ndarray) -> tuple[float, float]:
    """The lowest and highest values that two neighbouring pixels both reach: the ink's level
    at either polarity, where a lone hot or dead pixel can't set it (and a percentile can't
    either: a thin "1" is under 1% of a photo)."""
    pairs = (np.minimum(a[:, 1:], a[:, :-1]), np.minimum(a[1:], a[:-1]))
    low_pairs = (np.maximum(a[:, 1:], a[:, :-1]), np.maximum(a[1:], a[:-1]))
    high = max(p.max(initial=-np.inf) for p in pairs)
    low = min(p.min(initial=np.inf) for p in low_pairs)
    return float(low), float(high)


def _normalise(grey: np.ndarray) -> np.ndarray:
    """Ink as a float map: 0 on the paper, 1 at the ink's full strength (bright digit on black,
    as in MNIST), paper texture and shading removed, and grain zeroed so it can't widen the crop."""
    if min(grey.shape) < 2:
        return np.zeros_like(grey)
    # The ink is what lies farthest from the paper (the border's level), darker or lighter.
    paper = _quantile(_border(grey), 0.5)
    low, high = _extremes(grey)
    if paper - low > high - paper:
        grey = 255 - grey  # dark ink: invert so the digit is bright, as in MNIST
    d = grey - _background(grey)
    a = np.clip(d, 0, None)
    peak = _extremes(a)[1]
    # The paper's grain (sensor noise, JPEG): a robust spread of what is left of the paper.
    noise = 1.4826 * _quantile(np.abs(d - _quantile(d, 0.5)), 0.5) if d.size else 0.0
    if peak < max(20, 6 * noise):  # nothing stands out from the paper clearly enough to be ink
        return np.zeros_like(a)
    a = np.clip(a / peak, 0, 1)
    # Grain and left-over shading sit well below the ink: drop them so they don't widen the crop.
    a[a < max(0.25, 4 * noise / peak)] = 0
    return a


def _span(profile: np.ndarray) -> tuple[int, int] | None:
    """First and one-past-last index of the ink along one axis (a row or column profile of ink
    mass), leaving out a small lump at either end that a gap separates from the rest: a speck
    of dirt or a paper edge, not part of the digit (under 2% of the ink)."""
    on = np.flatnonzero(profile > 0)
    if on.size == 0:
        return None
    breaks = np.flatnonzero(np.diff(on) > 1)
    starts, ends = np.r_[on[0], on[breaks + 1]], np.r_[on[breaks], on[-1]] + 1
    mass = np.array([profile[a:b].sum() for a, b in zip(starts, ends)])
    i, j, small = 0, len(starts) - 1, 0.02 * mass.sum()
    while i < j and mass[i] < small:
        i += 1
    while j > i and mass[j] < small:
        j -= 1
    return int(starts[i]), int(ends[j])


def _bbox(a: np.ndarray):
    rows, cols = _span(a.sum(axis=1)), _span(a.sum(axis=0))
    if rows is None or cols is None:
        return None
    return rows[0], rows[1], cols[0], cols[1]


def _to_image(a: np.ndarray):
    from PIL import Image

    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def _otsu(a: np.ndarray) -> float:
    """Otsu's threshold of values in [0, 1]: the level that best splits them into two groups;
    where all are at one level (a clean stroke's crop is solid ink), that level, as in
    skimage.filters.threshold_otsu, whose import costs ~0.19 s (see the note above skeleton)."""
    hist = np.bincount(np.clip((a * 255).astype(np.int64), 0, 255).ravel(), minlength=256).astype(np.float64)
    if np.count_nonzero(hist) < 2:  # nothing to split
        return float(a.max())
    levels = np.arange(256)
    w0 = np.cumsum(hist)
    m0 = np.cumsum(hist * levels)
    w1, m1 = w0[-1] - w0, m0[-1] - m0
    with np.errstate(divide="ignore", invalid="ignore"):
        between = w0 * w1 * (m0 / w0 - m1 / w1) ** 2
    return float(np.nanargmax(between[:-1]) + 0.5) / 255


def _ink_mask(crop: np.ndarray, scale: float) -> np.ndarray:
    """The cropped ink map resampled by `scale` (area averaging when shrinking, bicubic when
    growing) and cut into ink and paper at Otsu's level, kept between 25% and 60% of the ink's."""
    from PIL import Image

    h, w = crop.shape
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    how = Image.Resampling.BOX if scale < 1 else Image.Resampling.BICUBIC
    a = np.asarray(Image.fromarray(crop.astype(np.float32)).resize(size, how))
    # Shrinking averages a pen-thin stroke with the paper beside it: stretch its level back to 1.
    a = np.clip(a / max(_extremes(a)[1], 1e-6), 0, 1)
    return a >= min(max(_otsu(a), 0.25), 0.6)


def _restroke(mask: np.ndarray, widths: tuple[float, float, float]) -> np.ndarray:
    """Bring strokes outside the training digits' usual width to their typical width (widths:
    typical, low, high, in mask pixels). Thin strokes are drawn over with a round nib; thick
    ones are shaved down (an erosion), and their skeleton drawn back in at the typical width,
    so no stroke is shaved away, while a loop a thick pen filled in stays a solid blob, as such
    loops are in MNIST, instead of collapsing into a line."""
    typical, low, high = widths
    width = _width(mask)
    if width == 0 or low <= width <= high:
        return mask
    change = abs(width - typical) / 2
    pad = int(change) + 2
    m = np.pad(mask, pad)
    if width < low:
        return _dilate(m, change)
    shaved = ~_dilate(~m, change)
    return shaved | _dilate(skeleton(m), typical / 2)  # a nib of radius r draws strokes _width measures as 2r


def preprocess(image, size: tuple[int, int] = (28, 28), style: str | None = None) -> np.ndarray:
    """A PIL image of one handwritten digit -> uint8 (h, w) model input, bright digit on black,
    made as the training digits were (MNIST: a binary digit scaled with anti-aliasing to fit a
    20x20 box, centred by mass in 28x28; USPS: scaled to fill 16x16), at their stroke width.

    Returns all zeros when the image holds no digit (blank page or canvas)."""
    from hdr.core import transfer

    h, w = int(size[0]), int(size[1])
    spec = transfer.dataset_for((h, w))
    style = style or (spec.framing if spec else "fill")
    a = _normalise(_grey(image))
    box = _bbox(a)
    if box is None:
        return np.zeros((h, w), np.uint8)
    r0, r1, c0, c1 = box
    crop = a[r0:r1, c0:c1]
    fraction = transfer.MNIST_BOX_FRACTION if style == "centred" else 1.0
    scale = min(h * fraction / crop.shape[0], w * fraction / crop.shape[1])
    # Binary ink at WORK times the model's scale: fine enough to measure and redraw strokes
    # (at 1x a stroke is 2 pixels), coarse enough to be quick. reframe then shrinks it with
    # anti-aliasing and places it, the one resampling to the model's size.
    mask = _ink_mask(crop, scale * WORK)
    if spec is not None and spec.stroke_width is not None:
        mask = _restroke(mask, tuple(WORK * v for v in spec.stroke_width))
    return transfer.reframe(mask.astype(np.float32) * 255, (h, w), style)


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


class LiteRtModel:
    """An exported LiteRT (TF Lite) model (hdr export --format litert) run by the LiteRT
    interpreter, with the attributes prediction uses; it loads no TensorFlow either."""

    def __init__(self, path: str | Path):
        from ai_edge_litert.interpreter import Interpreter

        try:
            self.interpreter = Interpreter(model_path=str(path))
        except Exception as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise UsageError(f"{path} is not a LiteRT model the interpreter can read ({first})") from None
        inp = self.interpreter.get_input_details()[0]
        out = self.interpreter.get_output_details()[0]
        self.input_index, self.output_index = inp["index"], out["index"]
        self.input_shape = (None, *(int(d) for d in inp["shape"][1:]))
        self.output_shape = (None, int(out["shape"][-1]))
        if len(self.input_shape) != 4 or self.input_shape[-1] != 1 or inp["dtype"] != np.uint8:
            raise UsageError(f"{path}: expected an hdr export taking uint8 (N, H, W, 1) images, "
                             f"got {np.dtype(inp['dtype']).name} {list(inp['shape'])}")

    def predict_on_batch(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, np.uint8)
        self.interpreter.resize_tensor_input(self.input_index, x.shape)
        self.interpreter.allocate_tensors()
        self.interpreter.set_tensor(self.input_index, x)
        self.interpreter.invoke()
        return np.array(self.interpreter.get_tensor(self.output_index))


ONNX_EXPORT = Path(rundir.EXPORT) / rundir.EXPORT_FILES["onnx"]  # where hdr export --format onnx writes by default
# --model PATH: the runtime for each exported file type, and the package that provides it.
RUNTIMES = {".onnx": (OnnxModel, "onnxruntime"), ".tflite": (LiteRtModel, "ai_edge_litert")}


def find_predictor(run, model_path: str | Path | None = None):
    """(load, path): what will predict for run folder `run` and how it is loaded, found and
    checked without importing any framework: the exported model at `model_path` (.onnx with ONNX
    Runtime, .tflite with LiteRT), else the run's RUN/export/model.onnx when it exists and ONNX
    Runtime is installed (no TensorFlow import), else model.keras."""
    import importlib.util

    from hdr.runs.rundir import open_run

    folder = open_run(run)
    if model_path is not None:
        model_path = Path(model_path)
        if not model_path.is_file():
            raise UsageError(f"--model: {model_path} not found")
        if model_path.suffix.lower() not in RUNTIMES:
            raise UsageError(f"--model {model_path}: expected an .onnx or .tflite file from hdr export")
        cls, package = RUNTIMES[model_path.suffix.lower()]
        if importlib.util.find_spec(package) is None:
            raise UsageError(f"--model needs {package}, not installed; install with: pip install 'hdr[export]'")
        return cls, model_path
    if importlib.util.find_spec("onnxruntime") is not None and (folder / ONNX_EXPORT).is_file():
        return OnnxModel, folder / ONNX_EXPORT
    return load_model, folder


def load_predictor(run, model_path: str | Path | None = None):
    """The model find_predictor chooses, loaded."""
    load, path = find_predictor(run, model_path)
    return load(path)


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


def check_image(path: str | Path) -> str | None:
    """A UsageError when the file is not there or is not an image, told from its header alone
    (before any model loads); else a warning when it holds several frames, None when it is plain."""
    with open_image(path) as image:
        frames = getattr(image, "n_frames", 1)
        # An MPO is a camera's JPEG with extra views (depth, thumbnails): its first is the photo.
        if frames > 1 and image.format != "MPO":
            return f"{path} holds {frames} frames (an animation or a multi-page file); only the first is read"
    return None


def preprocess_file(path: str | Path, size: tuple[int, int]) -> np.ndarray:
    """One image file (its first frame) -> the model input; a damaged file is a UsageError naming it."""
    from PIL import Image

    with open_image(path) as image:
        try:
            image.load()  # decode in full here, so a truncated file is reported, not half-read
        except Image.DecompressionBombError:
            raise UsageError(f"{path} is too large to be a digit image; shrink it first") from None
        except (OSError, ValueError, SyntaxError) as e:
            raise UsageError(f"{path} is a damaged image ({e}); re-save or re-export it") from None
        return preprocess(image, size)


def _per_file(path, read):
    """(read(path), None), or (None, the file's own one-line error): one file never costs the
    answers of the others, not even when it trips a bug in hdr."""
    try:
        return read(path), None
    except HdrError as e:
        return None, e
    except Exception as e:
        first = (str(e).strip().splitlines() or [""])[0][:200]
        return None, HdrError(f"{path}: could not be read ({type(e).__name__}: {first}); please report this to hdr")


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
                  model_path: str | Path | None = None, warn=None) -> tuple[list[dict], list[HdrError]]:
    """Predict every readable image in one batch call. Returns the results and one error per
    unreadable image, in the order given: one bad file does not cost the others. What the user
    named (--save-preprocessed, the run folder, --model, each file's header) is checked before
    the model loads, so a mistake is told at once, not after TensorFlow's import. Each image is
    reduced to its small model input at once, so many large photos never sit in memory together.
    warn(line): told of each file read with a caveat (several frames: the first is read)."""
    if save_dir is not None and Path(save_dir).exists() and not Path(save_dir).is_dir():
        raise UsageError(f"--save-preprocessed: {save_dir} is a file, not a folder")
    load, where = find_predictor(run, model_path)
    errors: dict[int, HdrError] = {}
    for i, p in enumerate(paths):
        note, errors[i] = _per_file(p, check_image)
        if note and warn:
            warn(note)
    readable = [i for i, e in errors.items() if e is None]
    if not readable:
        return [], list(errors.values())
    model = load(where)
    size = input_size(model)
    inputs, good = [], []
    for i in readable:
        a, errors[i] = _per_file(paths[i], lambda p: preprocess_file(p, size))
        if a is not None:
            inputs.append(a)
            good.append(paths[i])
    bad = [e for e in errors.values() if e is not None]
    if not good:
        return [], bad
    inputs = np.stack(inputs)
    blank = ~inputs.reshape(len(inputs), -1).any(axis=1)
    probs = predict_arrays(model, inputs)
    if save_dir is not None:
        _save_inputs(Path(save_dir), good, inputs)
    return [_result(p, None if b else pr, top) for p, pr, b in zip(good, probs, blank)], bad


def _stream(path: Path) -> bool:
    """Whether --output names a thing written into, not replaced: a terminal, pipe or device
    (/dev/stdout), or the very file this process's stdout is (--output /dev/stdout > out.txt)."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            return True
        out = os.fstat(1)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (out.st_dev, out.st_ino)


def check_output(output: Path | None) -> None:
    """--output, checked before anything is read: a UsageError naming the path and the fix when
    the CSV could not be written there. A file is written as atomic_write does, beside its real
    path (through a symlink), so that is where a file is tried."""
    import tempfile

    if output is None:
        return
    output = Path(output)
    if output.is_dir():
        raise UsageError(f"--output {output}: is a folder; name a file, such as {output / 'digits.csv'}")
    if _stream(output):
        if not os.access(output, os.W_OK):
            raise UsageError(f"--output {output}: not writable; name a file you can write")
        return
    target = Path(os.path.realpath(output))
    if not target.parent.is_dir():
        raise UsageError(f"--output {output}: its folder {target.parent} does not exist; create it or name another")
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=".tmp")
    except OSError as e:
        raise UsageError(f"--output {output}: cannot create a file in {target.parent} ({e.strerror or e}); "
                         "name a file in a folder you can write to") from None
    os.close(fd)
    os.unlink(tmp)


def write_csv(output: Path, results: list[dict]) -> None:
    """The results as CSV at --output, whole or not at all. A symlink is written through (its
    target replaced, the link kept); a stream is written into. A failure is one HdrError line."""
    output = Path(output)
    try:
        if _stream(output):
            with open(output, "a") as f:  # appended: "> out.txt" may hold the answers printed just before
                f.write(_csv(results))
        else:
            atomic_write(Path(os.path.realpath(output)), _csv(results))
    except OSError as e:
        raise HdrError(f"--output {output}: the CSV could not be written ({e.strerror or e}); "
                       "the answers are printed above") from None


def results_text(results: list[dict], as_json: bool = False) -> str:
    """What hdr predict prints: one line per image, or the results as JSON."""
    return json.dumps(results, indent=2) if as_json else "\n".join(map(_line, results))


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
