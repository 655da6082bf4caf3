"""Re-framing digit images between the MNIST and USPS conventions (and for a user's own image).

The two datasets frame a digit differently, so a plain resize is not enough:

- MNIST (28x28): the digit is scaled to fit a 20x20 box, keeping its aspect ratio, and placed
  so that its centre of mass sits at the centre of the 28x28 field (a 4-pixel margin around it).
- USPS (16x16): the digit fills its frame: its bounding box is scaled so that the longer side is
  16 pixels, keeping the aspect ratio, and centred.

Images are light digits on a dark (0) background, as both datasets store them. No Keras here.
"""

from __future__ import annotations

import numpy as np

# The MNIST convention, written for any size: a 28x28 frame holds a digit of at most 20x20.
MNIST_BOX_FRACTION = 20 / 28
# Pixels fainter than this fraction of the brightest one do not count towards the bounding box,
# so faint specks (scanner noise, anti-aliasing) do not stretch it.
INK_FRACTION = 0.1


STYLES = {
    "centred": "20/28 box, centre of mass at the centre (MNIST's framing)",
    "fill": "digit scaled to fill the frame (USPS's framing)",
}


def dataset_for(shape):
    """The registered dataset (hdr.core.data.DatasetSpec) whose images have this size: a model's input
    size says which dataset it was trained on. None for a size no dataset has."""
    from hdr.core.data import DATASETS

    for ds in DATASETS.values():
        if ds.image_size == tuple(shape[:2]):
            return ds
    return None


def style_for(shape) -> str:
    """The framing of the dataset whose images have this size; "fill" for a size no dataset has."""
    ds = dataset_for(shape)
    return ds.framing if ds is not None else "fill"


def reframe(images, to_shape, style: str | None = None) -> np.ndarray:
    """Re-frame digit images to to_shape (h, w) or (h, w, 1).

    images: one image (h, w) or (h, w, 1), or a batch (n, h, w) or (n, h, w, 1). The result has the
    same layout with the new size, as uint8. style is one of STYLES; by default the framing of
    the dataset of the target size (see style_for). An empty (all-dark) image stays empty.
    """
    x = np.asarray(images)
    out_h, out_w = int(to_shape[0]), int(to_shape[1])
    style = style or style_for((out_h, out_w))
    if style not in STYLES:
        raise ValueError(f"unknown framing style {style!r}; use one of {', '.join(STYLES)}")
    if x.ndim not in (2, 3, 4) or (x.ndim == 4 and x.shape[-1] != 1):
        raise ValueError(f"expected a grey image (h, w[, 1]) or a batch (n, h, w[, 1]), got shape {x.shape}")
    channel = x.ndim == 4 or (x.ndim == 3 and x.shape[-1] == 1)
    batch = x[..., 0] if channel else x
    single = batch.ndim == 2
    if single:
        batch = batch[None]
    out = np.zeros((len(batch), out_h, out_w), np.uint8)
    for i, img in enumerate(batch):
        out[i] = _reframe_one(img.astype(np.float32), out_h, out_w, style)
    if channel:
        out = out[..., None]
    return out[0] if single else out


def _reframe_one(img: np.ndarray, out_h: int, out_w: int, style: str) -> np.ndarray:
    from PIL import Image

    canvas = np.zeros((out_h, out_w), np.float32)
    peak = float(img.max()) if img.size else 0.0
    if peak <= 0:
        return canvas.astype(np.uint8)
    rows = np.flatnonzero((img > INK_FRACTION * peak).any(axis=1))
    cols = np.flatnonzero((img > INK_FRACTION * peak).any(axis=0))
    crop = img[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1]

    if style == "centred":
        box_h, box_w = max(1, round(out_h * MNIST_BOX_FRACTION)), max(1, round(out_w * MNIST_BOX_FRACTION))
    else:
        box_h, box_w = out_h, out_w
    scale = min(box_h / crop.shape[0], box_w / crop.shape[1])
    new_h = min(box_h, max(1, round(crop.shape[0] * scale)))
    new_w = min(box_w, max(1, round(crop.shape[1] * scale)))
    # Lanczos on float pixels: anti-aliased when shrinking (MNIST -> USPS), smooth when growing.
    digit = np.asarray(Image.fromarray(crop).resize((new_w, new_h), Image.Resampling.LANCZOS))
    digit = np.clip(digit, 0, 255)

    if style == "centred":
        mass = digit.sum()
        r, c = np.indices(digit.shape)
        com_r = (r * digit).sum() / mass if mass > 0 else (new_h - 1) / 2
        com_c = (c * digit).sum() / mass if mass > 0 else (new_w - 1) / 2
        top = round(out_h / 2 - com_r)
        left = round(out_w / 2 - com_c)
    else:
        top, left = (out_h - new_h) // 2, (out_w - new_w) // 2
    # A lopsided digit must never be pushed past the edge: keep the whole box inside the frame.
    top = min(max(top, 0), out_h - new_h)
    left = min(max(left, 0), out_w - new_w)
    canvas[top: top + new_h, left: left + new_w] = digit
    return np.round(canvas).astype(np.uint8)
