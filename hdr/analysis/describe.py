"""`hdr data describe NAME`: class balance, image size, value range and a sanity check of a dataset.

Reads the data with hdr.core.data only: no Keras, so it answers in a second or two.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hdr.core import data as data_mod
from hdr.core.errors import UsageError
from hdr.runs import rundir


def class_counts(y: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(np.asarray(y, dtype=np.int64), minlength=k)[:k]


def check_split(x: np.ndarray, y: np.ndarray, k: int) -> dict:
    """Counts of what a model must never see: labels outside the dataset's classes, and all-dark
    images (no digit at all). Pixels are uint8, so their range needs no check."""
    pixels = x.reshape(len(x), -1) if len(x) else x.reshape(0, 0)
    return {
        "bad_labels": int(((y < 0) | (y >= k)).sum()),
        "blank_images": int((pixels.max(axis=1) == 0).sum()) if pixels.size else 0,
    }


def describe(d: data_mod.Data) -> dict:
    """Everything the command prints, as plain numbers (also the content of NAME-classes.csv)."""
    k = d.spec.num_classes
    out = {"name": d.name, "shape": list(d.input_shape), "dtype": str(d.train.x.dtype),
           "classes": list(d.spec.class_names), "splits": {}}
    for part, split in (("train", d.train), ("test", d.test)):
        counts = class_counts(split.y, k)
        x = split.x
        out["splits"][part] = {
            "size": int(len(split.y)),
            "counts": counts.tolist(),
            "proportions": (counts / max(1, counts.sum())).tolist(),
            "min": float(x.min()) if x.size else None,
            "max": float(x.max()) if x.size else None,
            "mean": float(x.mean()) if x.size else None,
            "checks": check_split(x, split.y, k),
        }
    return out


def class_table(info: dict, tablefmt: str = "simple") -> str:
    from tabulate import tabulate

    tr, te = info["splits"]["train"], info["splits"]["test"]
    rows = [[name, tr["counts"][label], 100 * tr["proportions"][label],
             te["counts"][label], 100 * te["proportions"][label]] for label, name in enumerate(info["classes"])]
    rows.append(["total", tr["size"], 100.0, te["size"], 100.0])
    return tabulate(rows, headers=["label", "train", "train %", "test", "test %"], tablefmt=tablefmt,
                    floatfmt=("", "", ".2f", "", ".2f"), colalign=("left", "right", "right", "right", "right"))


def text(info: dict) -> str:
    h, w, c = info["shape"]
    tr, te = info["splits"]["train"], info["splits"]["test"]
    lines = [
        f"{info['name']}: {tr['size']} train + {te['size']} test images, {h}x{w} pixels, "
        f"{c} channel, {info['dtype']}",
        f"pixel values: train {tr['min']:g}-{tr['max']:g} (mean {tr['mean']:.1f}), "
        f"test {te['min']:g}-{te['max']:g} (mean {te['mean']:.1f}); 0 is the background",
    ]
    labels = f"labels 0-{len(info['classes']) - 1}"
    problems = []
    for part, s in (("train", tr), ("test", te)):
        ch = s["checks"]
        for key, what in (("bad_labels", f"labels outside {labels}"), ("blank_images", "blank (all-dark) images")):
            if ch[key]:
                problems.append(f"{part}: {ch[key]} {what}")
    lines.append("check: " + ("; ".join(problems) if problems else f"ok ({labels}, no blank images)"))
    for part, s in (("train", tr), ("test", te)):
        counts = np.array(s["counts"])
        if counts.min() > 0:
            lines.append(f"{part} balance: largest class {counts.argmax()} ({counts.max()}) is "
                         f"{counts.max() / counts.min():.2f}x the smallest, {counts.argmin()} ({counts.min()})")
    lines += ["", class_table(info)]
    return "\n".join(lines)


# ---------------------------------------------------------------- pictures

def montage(images: np.ndarray, cols: int, pad: int = 2, pad_value: int = 0) -> np.ndarray:
    """Images (n, h, w[, 1]) tiled into one 2-D array, row by row, `pad` pixels apart."""
    images = np.asarray(images)
    if images.ndim == 4:
        images = images[..., 0]
    n, h, w = images.shape
    rows = max(1, -(-n // cols))
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad), pad_value, dtype=images.dtype)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = img
    return grid


def class_distribution_png(info: dict, path: Path) -> None:
    from hdr.core.plots import pyplot, save_figure

    plt = pyplot()
    tr, te = info["splits"]["train"], info["splits"]["test"]
    labels = np.arange(len(info["classes"]))
    fig, ax = plt.subplots(figsize=(max(8, 0.4 * len(labels)), 4.2))
    # Proportions, not counts: train is several times larger than test and would dwarf it.
    for offset, part, s in ((-0.2, "train", tr), (0.2, "test", te)):
        bars = ax.bar(labels + offset, 100 * np.array(s["proportions"]), width=0.4,
                      label=f"{part} (n={s['size']})")
        ax.bar_label(bars, labels=[str(c) for c in s["counts"]], fontsize=6.5, padding=2, rotation=90)
    ax.set_xticks(labels, info["classes"])
    ax.set_xlabel("class")
    ax.set_ylabel("% of split")
    ax.set_ylim(0, 100 * max(max(tr["proportions"]), max(te["proportions"])) * 1.25)
    ax.set_title(f"{info['name']}: class distribution (bar labels: counts)")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    save_figure(fig, path)


def samples_png(d: data_mod.Data, path: Path, per_class: int = 10, seed: int = 0) -> None:
    """A grid with one row per digit class: per_class training images picked at random (seeded)."""
    from hdr.core.plots import pyplot, save_figure

    plt = pyplot()
    rng = np.random.default_rng(seed)
    h, w = d.input_shape[:2]
    picks = []
    names = d.spec.class_names
    for label in range(len(names)):
        idx = np.flatnonzero(d.train.y == label)
        row = np.zeros((per_class, h, w), np.uint8)  # a class with few examples leaves blanks
        if len(idx):
            chosen = np.sort(rng.choice(idx, size=min(per_class, len(idx)), replace=False))
            row[: len(chosen)] = d.train.x[chosen, ..., 0]
        picks.append(row)
    pad = 2
    grid = montage(np.concatenate(picks), cols=per_class, pad=pad)
    fig, ax = plt.subplots(figsize=(per_class * 0.6 + 0.6, len(names) * 0.6 + 0.5))
    ax.imshow(grid, cmap="gray_r", vmin=0, vmax=255, interpolation="nearest")
    ax.set_yticks([pad + r * (h + pad) + h / 2 - 0.5 for r in range(len(names))], labels=names)
    ax.set_xticks([])
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_title(f"{d.name}: {per_class} random training digits per class ({h}x{w})", fontsize=9)
    save_figure(fig, path)


def write_outputs(d: data_mod.Data, info: dict, out: Path) -> list[Path]:
    from hdr.runs.rundir import atomic_write

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create output folder {out}: {e.strerror}; choose another with --out") from None
    paths = [out / f"{d.name}-classes.png", out / f"{d.name}-samples.png", out / f"{d.name}-classes.csv"]
    class_distribution_png(info, paths[0])
    samples_png(d, paths[1])
    tr, te = info["splits"]["train"], info["splits"]["test"]
    lines = ["label,train,train_proportion,test,test_proportion"]
    lines += [f"{k},{tr['counts'][k]},{tr['proportions'][k]:.6f},{te['counts'][k]},{te['proportions'][k]:.6f}"
              for k in range(len(info["classes"]))]
    atomic_write(paths[2], "\n".join(lines) + "\n")
    return paths


def augmented(d: data_mod.Data, cfg, per_class: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One training digit per class and per_class versions of it as the config's augmentation
    changes it in training: (originals (k, h, w), augmented (k, per_class, h, w)), uint8."""
    from hdr.core.backend import quiet_import
    from hdr.engine.models import augmentation

    keras = quiet_import()
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    picks = np.array([rng.choice(np.flatnonzero(d.train.y == k)) for k in range(d.spec.num_classes)
                      if np.any(d.train.y == k)])
    x = d.train.x[picks].astype("float32") / 255
    layer = augmentation(cfg.augment)
    batch = np.repeat(x, per_class, axis=0)
    out = np.asarray(keras.ops.convert_to_numpy(layer(batch, training=True)))
    out = np.clip(np.round(out * 255), 0, 255).astype(np.uint8)
    return d.train.x[picks, ..., 0], out[..., 0].reshape(len(picks), per_class, *x.shape[1:3])


def augmented_png(originals: np.ndarray, versions: np.ndarray, path: Path, title: str) -> None:
    from hdr.core.plots import pyplot, save_figure

    plt = pyplot()
    k, per, h, w = versions.shape
    pad = 2
    rows = np.concatenate([originals[:, None], np.zeros((k, 1, h, w), np.uint8), versions], axis=1)
    grid = montage(rows.reshape(-1, h, w), cols=per + 2, pad=pad)
    fig, ax = plt.subplots(figsize=((per + 2) * 0.6 + 0.6, k * 0.6 + 0.8))
    ax.imshow(grid, cmap="gray_r", vmin=0, vmax=255, interpolation="nearest")
    ax.set_xticks([pad + (h + pad) * 0 + w / 2, pad + (w + pad) * (2 + per / 2) - pad / 2],
                  ["original", f"{per} draws of the augmentation"], fontsize=8)
    ax.set_yticks([])
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_title(title, fontsize=9)
    save_figure(fig, path)


def run(name: str, out: Path | None = None, augment_config: Path | None = None):
    """What `hdr data describe` prints, line by line, writing the pictures into out as it goes."""
    if out is not None:
        rundir.refuse_run_owned(out)
    if out is not None and out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder")
    cfg = None
    if augment_config is not None:
        from hdr.engine import config as config_mod

        cfg = config_mod.load(augment_config)
        if not cfg.augment.active():
            raise UsageError(f"{augment_config} has no augmentation (its augment section is all 0)")
    d = data_mod.load(name)
    info = describe(d)
    yield text(info)
    if out is not None:
        for p in write_outputs(d, info, out):
            yield f"wrote {p}"
    if cfg is not None:
        path = out / f"{name}-augmented.png"
        augmented_png(*augmented(d, cfg), path, f"{name} as {augment_config.name} augments it (training only)")
        yield f"wrote {path}"
