"""Photo-like images of MNIST *test* digits, and how well a run reads them through hdr's preprocessing.

Each test digit is redrawn the way a person's photo of a written digit looks: written large or
small, with a thin, ordinary or thick pen (at 8x resolution, before it is shrunk, so strokes
stay solid: the digit's skeleton redrawn with a round nib, or its own strokes grown or shrunk
a little), dark ink on uneven light
paper (a gradient, blotches, grain), off-centre on a larger page, slightly out of focus, in
colour, saved as JPEG at a random quality. Everything follows from the seed and the digit's
index, so a set is the same on every machine. Only the test split is used, never training digits.

    python -m bench.perf.photos measure RUN [--n 5000] [--seed 0] [--at COMMIT] [--photos DIR] [--failures DIR]
    python -m bench.perf.photos show [--n 24] [--out photos.png]
    python -m bench.perf.photos calibrate

`measure` writes bench/results/photos-<time>.json: accuracy over the set, by size and pen, of
hdr.apps.predict.preprocess as it is at this commit, against the same model on the untouched 28x28
digits. bench/docs/harnesses.py's `photos` shows the newest measurement in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from bench.layout import RESULTS, command
from bench.layout import ROOT as REPO

HI = 8  # the digit is reshaped at 8x MNIST's resolution: 224 px for its 28 px frame
SIZES = {"small": (16, 40), "large": (60, 300)}  # the digit's height in the photo, px (MNIST: 20 of 28)
# Pens, as disk radii at 8x resolution, where MNIST strokes are about 20 px wide (2.4 px at 1x).
# A thin or thick pen redraws the digit's skeleton with a round nib: 0.6 to 1.4 px, or 3.1 to
# 4.6 px at MNIST's scale (thicker closes MNIST's small loops in the photo itself, where no
# preprocessing could reopen them); an ordinary one keeps the digit's own strokes, grown or
# shrunk a little.
PENS = {"thin": (2, 5), "ordinary": (-1, 2), "thick": (12, 18)}


def _disk(r: int) -> np.ndarray:
    y, x = np.ogrid[-r:r + 1, -r:r + 1]
    return (x * x + y * y <= r * r + r).astype(np.float32)


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    """Binary dilation by a disk of radius r, as a convolution through the FFT (fast for large r)."""
    if r <= 0:
        return mask
    h, w = mask.shape
    k = _disk(r)
    shape = (h + 2 * r, w + 2 * r)
    conv = np.fft.irfft2(np.fft.rfft2(mask.astype(np.float32), shape) * np.fft.rfft2(k, shape), shape)
    return conv[r:r + h, r:r + w] > 0.5


def pen(digit: np.ndarray, kind: str, radius: int, threshold: float) -> np.ndarray:
    """The 28x28 digit as solid ink at HI x resolution, float 0..1, on a frame padded for thick
    strokes: its own strokes grown (radius > 0) or shrunk (radius < 0) by a disk (ordinary), or
    its skeleton drawn with a round nib of that radius (thin, thick)."""
    from PIL import Image

    from hdr.apps.predict import skeleton

    pad = 4  # room for thick strokes at the 28 px scale
    a = np.pad(digit, pad).astype(np.float32)
    side = a.shape[0] * HI
    big = np.asarray(Image.fromarray(a).resize((side, side), Image.Resampling.LANCZOS))
    mask = big > threshold * 255
    if kind != "ordinary":
        mask = skeleton(mask)
    mask = _dilate(mask, radius) if radius > 0 else ~_dilate(~mask, -radius)
    return mask.astype(np.float32)


def photo(digit: np.ndarray, rng: np.random.Generator, size: str | None = None, pen_kind: str | None = None):
    """One photo-like RGB image of a 28x28 MNIST digit as JPEG bytes, what was drawn, and the
    pen-drawn digit framed as MNIST frames digits (uint8 28x28), with no photo in between."""
    from PIL import Image, ImageFilter

    from hdr.core import transfer

    size = size or ("small", "large")[rng.integers(2)]
    pen_kind = pen_kind or tuple(PENS)[rng.integers(len(PENS))]
    radius = int(rng.integers(PENS[pen_kind][0], PENS[pen_kind][1] + 1))
    ink = pen(digit, pen_kind, radius, rng.uniform(0.3, 0.6))
    # Scale so the digit's 20 px MNIST box becomes `height` px; shrink with area averaging, so
    # edges are anti-aliased as a camera's sensor would average them.
    height = rng.uniform(*SIZES[size])
    side = max(8, round(ink.shape[0] * height / (20 * HI)))
    cover = np.asarray(Image.fromarray(ink * 255).resize((side, side), Image.Resampling.BOX), np.float32) / 255
    # The page: 1.2x to 2.5x the digit's padded frame each way, the digit anywhere on it.
    ph, pw = (round(side * rng.uniform(1.2, 2.5)) for _ in range(2))
    top, left = rng.integers(0, ph - side + 1), rng.integers(0, pw - side + 1)
    alpha = np.zeros((ph, pw), np.float32)
    alpha[top:top + side, left:left + side] = cover
    # Paper: a level, a gradient in any direction, blotches a few times the page, grain.
    yy, xx = np.mgrid[0:ph, 0:pw].astype(np.float32) / max(ph, pw)
    angle = rng.uniform(0, 2 * np.pi)
    light = rng.uniform(175, 240) + rng.uniform(0, 60) * (np.cos(angle) * xx + np.sin(angle) * yy - 0.5)
    blotch = np.asarray(Image.fromarray(rng.normal(0, 1, (4, 4)).astype(np.float32)).resize(
        (pw, ph), Image.Resampling.BICUBIC))
    light = light + rng.uniform(0, 15) * blotch / np.abs(blotch).max()
    ink_level = rng.uniform(10, 90)
    grey = light * (1 - alpha) + ink_level * light / 255 * alpha
    # Colour: a paper tint and a pen colour (black, blue, grey), both as per-channel factors.
    paper_tint = (1 + rng.uniform(-0.06, 0.06, 3)).astype(np.float32)
    pen_tint = np.array(((1.0, 1.0, 1.0), (0.6, 0.7, 1.6), (1.1, 1.1, 1.1))[rng.integers(3)], np.float32)
    rgb = grey[..., None] * np.where(alpha[..., None] > 0.5, pen_tint, paper_tint)
    rgb = rgb + rng.normal(0, rng.uniform(2, 8), rgb.shape).astype(np.float32)
    image = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")
    blur = rng.uniform(0, 0.6) * side / 40  # focus, relative to the digit's size
    if blur > 0.3:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    quality = int(rng.integers(35, 96))
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    drawn = {"size": size, "pen": pen_kind, "pen_radius": radius, "height_px": round(height, 1),
             "page": [ph, pw], "jpeg_quality": quality}
    return buf.getvalue(), drawn, transfer.reframe(ink * 255, (28, 28), "centred")


def test_digits(n: int, seed: int):
    """n MNIST test digits (x uint8 (n, 28, 28), y, their test-set indices), chosen by seed."""
    from hdr.core import data

    d = data.load("mnist", quiet=True)
    idx = np.sort(np.random.default_rng(seed).choice(len(d.test.y), n, replace=False)) if n < len(d.test.y) \
        else np.arange(len(d.test.y))
    return d.test.x[idx, :, :, 0], d.test.y[idx], idx


def photos(x: np.ndarray, seed: int, indices=None):
    """photo() of each digit; digit i's depends only on (seed, indices[i]), so subsets agree."""
    indices = range(len(x)) if indices is None else indices
    return [photo(a, np.random.default_rng([seed, int(i)])) for a, i in zip(x, indices)]


def _commit(rev: str | None) -> str:
    """The commit measured: `rev`, or HEAD plus "+changes" when hdr/ differs from it."""
    git = ["git", "-C", str(REPO)]
    sha = subprocess.run([*git, "rev-parse", "--short", rev or "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = rev is None and subprocess.run([*git, "status", "--porcelain", "hdr"], capture_output=True, text=True).stdout.strip()
    return sha + ("+changes" if dirty else "")


def write_set(folder: Path, n: int, seed: int) -> dict:
    """The photo set on disk (DIGIT-INDEX.jpg) with manifest.json; an existing one is reused."""
    manifest = folder / "manifest.json"
    if manifest.exists():
        m = json.loads(manifest.read_text())
        if (m["n"], m["seed"]) == (n, seed):
            return m
    folder.mkdir(parents=True, exist_ok=True)
    x, y, idx = test_digits(n, seed)
    t0 = time.process_time()
    items, ideal = {}, []
    for (jpeg, drawn, pen28), label, i in zip(photos(x, seed, idx), y, idx):
        name = f"{i:05d}.jpg"
        (folder / name).write_bytes(jpeg)
        items[name] = {"label": int(label), "test_index": int(i), **drawn}
        ideal.append(pen28)
    np.save(folder / "pen28.npy", np.stack(ideal))  # in the order of items
    m = {"n": n, "seed": seed, "cpu_seconds": round(time.process_time() - t0, 1), "photos": items}
    manifest.write_text(json.dumps(m) + "\n")
    return m


def measure(run: Path, folder: Path, rev: str | None, failures: Path | None) -> dict:
    """Read the photo set with `hdr predict RUN FOLDER` as a user would (at commit `rev`, else
    this working tree), and score it against the labels."""
    import resource
    import shutil
    import tempfile

    from PIL import Image

    m = json.loads((folder / "manifest.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        code = REPO
        if rev is not None:  # that commit's hdr/, unpacked beside this one
            code = Path(tmp) / "src"
            code.mkdir()
            archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "hdr"], capture_output=True, check=True)
            subprocess.run(["tar", "-x", "-C", str(code)], input=archive.stdout, check=True)
        seen = Path(tmp) / "seen"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        # Run from `code`: `python -m` puts the working folder first on the import path.
        out = subprocess.run([sys.executable, "-m", "hdr", "predict", str(run.resolve()), str(folder.resolve()),
                              "--json", "--save-preprocessed", str(seen)], cwd=code,
                             capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(code)})
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if out.returncode != 0:
            sys.exit(out.stderr[-3000:])
        results = {Path(r["path"]).name: r for r in json.loads(out.stdout)}
        right = {name: results[name]["digit"] == item["label"] for name, item in m["photos"].items()}
        if failures is not None:
            if failures.exists():
                shutil.rmtree(failures)
            failures.mkdir(parents=True)
            for name, ok in right.items():
                if not ok:
                    item = m["photos"][name]
                    stem = f"{Path(name).stem}_true{item['label']}_read{results[name]['digit']}_{item['size']}_{item['pen']}"
                    shutil.copy(folder / name, failures / f"{stem}.jpg")
                    Image.open(seen / f"{Path(name).stem}.png").resize((112, 112), Image.Resampling.NEAREST).save(
                        failures / f"{stem}_input.png")
    groups = {}
    for key in ("size", "pen"):
        for value in sorted({item[key] for item in m["photos"].values()}):
            sel = [right[name] for name, item in m["photos"].items() if item[key] == value]
            groups[f"{key}={value}"] = {"n": len(sel), "accuracy": round(sum(sel) / len(sel), 4)}
    return {
        "commit": _commit(rev),
        "accuracy": round(sum(right.values()) / len(right), 4),
        "errors": len(right) - sum(right.values()),
        "groups": groups,
        "predict": {"wall_seconds": round(wall, 1), "user_seconds": round(after.ru_utime - before.ru_utime, 1),
                    "system_seconds": round(after.ru_stime - before.ru_stime, 1)},
    }


def references(run: Path, folder: Path) -> dict:
    """The run's accuracy on the same test digits as MNIST has them (28x28, no photo), and on
    the pen-drawn digits made into MNIST images directly: no photo, but strokes as the pen drew
    them, so not a ceiling (preprocessing also brings strokes to MNIST's widths)."""
    from hdr.apps import predict

    m = json.loads((folder / "manifest.json").read_text())
    x, y, idx = test_digits(m["n"], m["seed"])
    model = predict.load_predictor(run)
    pen28 = np.load(folder / "pen28.npy")

    def acc(a):
        return round(float((predict.predict_arrays(model, a).argmax(1) == y).mean()), 4)

    return {"mnist_digits": acc(x), "pen_drawn_digits": acc(pen28)}


def calibrate(n: int = 2000, seed: int = 0) -> dict:
    """Each dataset's stroke width and ink mass as hdr.apps.predict measures them, over its test split:
    median and 5th-95th percentile. The stroke widths go into hdr.core.data's DatasetSpec."""
    from hdr.core import data
    from hdr.apps import predict

    out = {}
    for name in data.DATASETS:
        x = data.load(name, quiet=True).test.x[..., 0]
        x = x[np.random.default_rng(seed).permutation(len(x))[:n]]
        widths = np.array([predict.stroke_width(a) for a in x])
        mass = x.reshape(len(x), -1).sum(1) / 255
        out[name] = {"n": len(x), "stroke_width": [round(float(v), 2) for v in np.percentile(widths, [50, 5, 95])],
                     "ink_mass": [round(float(v), 1) for v in np.percentile(mass, [50, 5, 95])]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure")
    m.add_argument("run", type=Path)
    m.add_argument("--n", type=int, default=5000)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--at", action="append", default=[], metavar="COMMIT",
                   help="also read the set with hdr/ as it was at COMMIT (before a change), first")
    m.add_argument("--photos", type=Path, help="keep the photo set in this folder (reused when there)")
    m.add_argument("--failures", type=Path, help="write each misread photo and the input the model saw here")
    sub.add_parser("calibrate")
    s = sub.add_parser("show")
    s.add_argument("--n", type=int, default=24)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", type=Path, default=Path("photos.png"))
    args = ap.parse_args()

    if args.cmd == "calibrate":
        print(json.dumps(calibrate(), indent=1))
        return
    if args.cmd == "show":
        from PIL import Image

        x, _, idx = test_digits(args.n, args.seed)
        tiles = [Image.open(io.BytesIO(j)).convert("RGB") for j, _, _ in photos(x, args.seed, idx)]
        cell = 160
        sheet = Image.new("RGB", (cell * 8, cell * (-(-len(tiles) // 8))), "white")
        for k, t in enumerate(tiles):
            t.thumbnail((cell - 4, cell - 4))
            sheet.paste(t, ((k % 8) * cell, (k // 8) * cell))
        sheet.save(args.out)
        print(args.out)
        return

    folder = args.photos or Path(tempfile.mkdtemp(prefix="hdr-photos-"))
    made = write_set(folder, args.n, args.seed)
    run_json = json.loads((args.run / "run.json").read_text())
    result = {
        "what": "accuracy of `hdr predict RUN FOLDER` on photo-like images of MNIST test digits",
        "command": command(["measure", str(args.run), "--n", str(args.n), "--seed", str(args.seed),
                            *(f"--at {r}" for r in args.at)]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_average_1min_at_end": round(os.getloadavg()[0], 2)},
        "run": {"path": str(args.run), "config": run_json.get("config_name") or run_json.get("config"),
                "epochs": run_json.get("epochs_completed")},
        "n": args.n, "seed": args.seed,
        "make_photos_cpu_seconds": made["cpu_seconds"],
        "reference_accuracy": references(args.run, folder),
        "measured": [measure(args.run, folder, rev, args.failures and args.failures / (rev or "now"))
                     for rev in [*args.at, None]],
    }
    out = RESULTS / f"photos-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({**result["reference_accuracy"],
                      **{m["commit"]: m["accuracy"] for m in result["measured"]}}))
    print(out)


if __name__ == "__main__":
    main()
