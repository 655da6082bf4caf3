"""`hdr evaluate RUN`: judge a trained model by more than one number.

Writes one folder inside the run, named after what was evaluated:

    eval/               the test split of the run's own dataset (the default)
    eval-val/           --split val: the run's validation split, rebuilt exactly (same seed, same rows)
    eval-on-<dataset>/  --on DATASET: the other dataset's test split, re-framed to the model's input size

Each holds metrics.json, confusion_matrix.csv/.png, per_class.csv, misclassified.png (page 1;
further pages misclassified-02.png, -03.png, ...) and report.md. The folder is built under a
temporary name and swapped in by rename, so it is always either the old one or the new one, whole.
Nothing written holds an absolute path, so a copied run folder evaluates and reads the same.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hdr.core import numbers
from hdr.runs import rundir
from hdr.core.errors import HdrError, UsageError

PER_PAGE = 100          # misclassified digits per picture: 10 x 10 stays readable
EPSILON = 1e-7          # Keras clips probabilities the same way before taking the log


@dataclass
class Evaluation:
    dataset: str            # the data evaluated on
    split: str              # "test" or "val"
    x: np.ndarray           # the images the model saw (re-framed when --on)
    y: np.ndarray
    probs: np.ndarray       # (n, classes) softmax outputs
    index: np.ndarray       # each image's row in its split's file (the training file for --split val)
    reframed: str | None = None

    @property
    def pred(self) -> np.ndarray:
        return self.probs.argmax(axis=1)


# ---------------------------------------------------------------- numbers

def confusion_matrix(y_true, y_pred, k: int) -> np.ndarray:
    """Counts, rows = true label, columns = predicted label."""
    cm = np.zeros((k, k), np.int64)
    np.add.at(cm, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return cm


def per_class(cm: np.ndarray) -> list[dict]:
    """Per label: support, correct, accuracy (= recall), error rate, precision, recall, F1.
    A ratio with nothing to divide by (no such digit, or never predicted) is 0, as in scikit-learn."""
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    correct = np.diag(cm)
    rows = []
    for k in range(len(cm)):
        recall = correct[k] / support[k] if support[k] else 0.0
        precision = correct[k] / predicted[k] if predicted[k] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append({
            "label": k, "support": int(support[k]), "correct": int(correct[k]),
            "accuracy": float(recall), "error_rate": float(1 - recall) if support[k] else 0.0,
            "precision": float(precision), "recall": float(recall), "f1": float(f1),
        })
    return rows


def summary(ev: Evaluation, cm: np.ndarray, classes: list[dict]) -> dict:
    n = len(ev.y)
    p_true = ev.probs[np.arange(n), ev.y.astype(np.int64)] if n else np.zeros(0)
    loss = float(np.mean(-np.log(np.clip(p_true, EPSILON, 1.0)))) if n else float("nan")
    errors = int(n - np.trace(cm))
    accuracy = float(np.trace(cm) / n) if n else float("nan")
    return {
        "dataset": ev.dataset,
        "split": ev.split,
        "size": int(n),
        # Named after the split, so a validation figure can never be read as a test figure.
        f"{ev.split}_loss": loss,
        f"{ev.split}_accuracy": accuracy,
        "error_rate": errors / n if n else float("nan"),  # not 1 - accuracy: that prints 0.14390000000000003
        "errors": errors,
        "macro_precision": float(np.mean([c["precision"] for c in classes])),
        "macro_recall": float(np.mean([c["recall"] for c in classes])),
        "macro_f1": float(np.mean([c["f1"] for c in classes])),
    }


def misclassified_order(ev: Evaluation) -> np.ndarray:
    """Indices of the wrong predictions, most confident first (the worst mistakes)."""
    wrong = np.flatnonzero(ev.pred != ev.y)
    conf = ev.probs[wrong, ev.pred[wrong]]
    return wrong[np.argsort(-conf, kind="stable")]


# ---------------------------------------------------------------- files

def confusion_csv(cm: np.ndarray) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["true\\pred"] + list(range(len(cm))))
    for k, row in enumerate(cm):
        w.writerow([k] + [int(v) for v in row])
    return buf.getvalue()


def predictions_csv(ev: Evaluation) -> str:
    """Every digit: its row in the split's file, label, prediction and the prediction's probability."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["index", "label", "predicted", "confidence"])
    pred = ev.pred
    for i, y, p, c in zip(ev.index, ev.y, pred, ev.probs[np.arange(len(pred)), pred]):
        w.writerow([int(i), int(y), int(p), f"{c:.6f}"])
    return buf.getvalue()


PER_CLASS_FIELDS = ["label", "support", "correct", "accuracy", "error_rate", "precision", "recall", "f1"]


def per_class_csv(classes: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=PER_CLASS_FIELDS, lineterminator="\n")
    w.writeheader()
    for c in classes:
        w.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in c.items()})
    return buf.getvalue()


def confusion_png(cm: np.ndarray, path: Path, title: str) -> None:
    """Counts and row percentages; the diagonal in green, mistakes in red scaled to the largest
    mistake, so that a 2% confusion stands out instead of vanishing next to a 98% diagonal."""
    from hdr.core.plots import pyplot, save_figure

    plt = pyplot()
    k = len(cm)
    support = cm.sum(axis=1, keepdims=True)
    pct = np.divide(100.0 * cm, support, out=np.zeros(cm.shape), where=support > 0)
    off = pct.copy()
    np.fill_diagonal(off, 0)
    top_off = max(off.max(), 1e-9)
    greens, reds = plt.get_cmap("Greens"), plt.get_cmap("Reds")
    rgb = np.ones((k, k, 4))
    for i in range(k):
        for j in range(k):
            if i == j:
                rgb[i, j] = greens(0.15 + 0.7 * pct[i, j] / 100)
            elif cm[i, j]:
                rgb[i, j] = reds(0.1 + 0.75 * off[i, j] / top_off)
    fig, ax = plt.subplots(figsize=(7.6, 6.8))
    ax.imshow(rgb, interpolation="nearest")
    for i in range(k):
        for j in range(k):
            if cm[i, j] == 0 and i != j:
                continue  # empty cells stay blank: the eye finds the mistakes faster
            dark = (i == j and pct[i, j] > 60) or (i != j and off[i, j] / top_off > 0.6)
            ax.text(j, i, f"{cm[i, j]}\n{pct[i, j]:.1f}%", ha="center", va="center", fontsize=7,
                    color="white" if dark else "black")
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    ax.xaxis.set_label_position("top")
    ax.xaxis.tick_top()
    ax.set_xticks(np.arange(-0.5, k), minor=True)
    ax.set_yticks(np.arange(-0.5, k), minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    ax.tick_params(which="minor", length=0)
    n = int(cm.sum())
    ax.set_title(f"{title}\ncell: count and % of the true label's row; "
                 f"accuracy {numbers.percent(np.trace(cm) / max(n, 1))} on {n} digits", fontsize=9)
    save_figure(fig, path)


def _font(size: int):
    """DejaVu Sans, which ships with matplotlib and has the arrow glyph; Pillow's own font otherwise."""
    from PIL import ImageFont

    import matplotlib

    try:
        return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), size)
    except OSError:
        return ImageFont.load_default(size)


def misclassified_pngs(ev: Evaluation, folder: Path, title: str) -> list[str]:
    """Every misclassified digit, worst first, PER_PAGE to a picture. Returns the file names.

    Drawn with Pillow rather than matplotlib: a page holds 100 captions, which matplotlib renders
    in seconds per page, and a poor model has dozens of pages."""
    from PIL import Image, ImageDraw

    order = misclassified_order(ev)
    pages = max(1, -(-len(order) // PER_PAGE))
    cols = 10
    h, w = ev.x.shape[1:3]
    zoom = max(1, round(84 / max(h, w)))          # MNIST x3, USPS x5: about 84 pixels a digit
    dh, dw = h * zoom, w * zoom
    cell_w, caption, gap, header = max(dw + 40, 150), 18, 12, 34
    font, title_font = _font(12), _font(14)
    names = []
    for page in range(pages):
        first = rundir.EVAL_FILES["misclassified"]
        name = first if page == 0 else first.replace(".png", f"-{page + 1:02d}.png")
        chunk = order[page * PER_PAGE: (page + 1) * PER_PAGE]
        rows = max(1, -(-len(chunk) // cols))
        cell_h = caption + dh + gap
        img = Image.new("L", (cols * cell_w, header + rows * cell_h + gap), 255)
        draw = ImageDraw.Draw(img)
        if len(chunk):
            shown = f"{page * PER_PAGE + 1}-{page * PER_PAGE + len(chunk)} of {len(order)}"
        else:
            shown = "none"
            draw.text((img.width // 2, header + 20), "no misclassified digits", fill=0, font=title_font, anchor="mt")
        draw.text((img.width // 2, 8), f"{title}: misclassified digits, most confident mistakes first: {shown} "
                  f"(page {page + 1} of {pages})", fill=0, font=title_font, anchor="mt")
        for i, idx in enumerate(chunk):
            r, c = divmod(i, cols)
            x0, y0 = c * cell_w, header + r * cell_h
            pred = ev.pred[idx]
            draw.text((x0 + cell_w // 2, y0 + caption - 3), f"true {ev.y[idx]} → pred {pred} "
                      f"({ev.probs[idx, pred]:.2f})", fill=0, font=font, anchor="ms")
            # Dark ink on white paper, enlarged without smoothing so the pixels stay honest.
            digit = Image.fromarray(255 - ev.x[idx, ..., 0]).resize((dw, dh), Image.Resampling.NEAREST)
            left = x0 + (cell_w - dw) // 2
            img.paste(digit, (left, y0 + caption))
            draw.rectangle((left - 1, y0 + caption - 1, left + dw, y0 + caption + dh), outline=190)
        buf = io.BytesIO()
        img.save(buf, format="PNG", optimize=False)
        rundir.write(folder, name, buf.getvalue())
        names.append(name)
    return names


def _md_table(rows: list[dict], **kwargs) -> str:
    from tabulate import tabulate

    return tabulate(rows, headers="keys", tablefmt="github", floatfmt=".4f", **kwargs)


def report_md(run: Path, metrics: dict, cm: np.ndarray, classes: list[dict], pages: list[str],
              config_text: str) -> str:
    """One page: config, training curves, metrics, confusion matrix, per-class table, mistakes.
    Links are relative (../accuracy.png) so the report reads the same wherever the run is."""
    m = metrics
    what = f"{m['dataset']} {m['split']} split ({m['size']} digits)"
    lines = [f"# Evaluation of {run.name}", "",
             f"Model trained on **{m['model_dataset']}**, evaluated on the **{what}**, {m['evaluated']}.", ""]
    if m.get("reframed"):
        lines += [f"Images re-framed: {m['reframed']}.", ""]
    lines += ["## Metrics", ""]
    rows = [{"metric": k, "value": numbers.metric(k, m[k])} for k in
            (f"{m['split']}_loss", f"{m['split']}_accuracy", "error_rate", "macro_precision", "macro_recall",
             "macro_f1")]
    rows.insert(3, {"metric": "errors", "value": f"{m['errors']} of {m['size']}"})
    if m.get("in_domain_accuracy") is not None:
        rows += [{"metric": f"in-domain accuracy ({m['in_domain_dataset']} test)",
                  "value": numbers.percent(m['in_domain_accuracy'])},
                 {"metric": "transfer gap (in-domain - this), points", "value": numbers.points(m['transfer_gap'])}]
    lines += [_md_table(rows, colalign=("left", "right")), ""]
    lines += ["## Config", "", "```yaml", config_text.rstrip(), "```", ""]
    curves = [p for p in rundir.CURVES.values() if (run / p).is_file()]
    if curves:
        lines += ["## Training curves", "", " ".join(f"![{Path(p).stem}](../{p})" for p in curves), ""]
    lines += ["## Confusion matrix", "", f"![confusion matrix]({rundir.EVAL_FILES['confusion_png']})", "",
              f"Rows: true label; columns: predicted label ([{rundir.EVAL_FILES['confusion_csv']}]({rundir.EVAL_FILES['confusion_csv']})).", ""]
    cm_rows = [{"true \\ pred": str(k), **{str(j): int(v) for j, v in enumerate(row)}} for k, row in enumerate(cm)]
    lines += [_md_table(cm_rows), ""]
    lines += ["## Per class", "", f"([{rundir.EVAL_FILES['per_class']}]({rundir.EVAL_FILES['per_class']}))", "", _md_table(classes), ""]
    lines += ["## Misclassified digits", "",
              f"{m['errors']} of {m['size']} digits, the most confident mistakes first.", ""]
    lines += [f"![misclassified page 1]({rundir.EVAL_FILES['misclassified']})", ""]
    if len(pages) > 1:
        lines += ["More pages: " + ", ".join(f"[{i + 2}]({p})" for i, p in enumerate(pages[1:])), ""]
    return "\n".join(lines)


# ---------------------------------------------------------------- the run

def in_domain_accuracy(folder: Path) -> float | None:
    """The model's accuracy on its own test split: from hdr evaluate if run, else from training."""
    for where in (folder / rundir.EVAL, folder):
        try:
            value = rundir.read_metrics(where).get(rundir.TEST_ACCURACY)  # checked: a number from 0 to 1
        except (OSError, ValueError):
            continue
        if value is not None:
            return float(value)
    return None


def validation_rows(folder: Path, cfg, labels: np.ndarray) -> np.ndarray:
    """The training-set rows the run validated on: its fold for a cross-validation run, else
    the seeded, stratified split of dataset.validation_split."""
    from hdr.core import data as data_mod

    rows = rundir.held_out_rows(rundir.read_info(folder), labels)
    if rows is not None:
        return rows
    if not cfg.dataset.validation_split:
        raise UsageError(f"{folder} was trained without a validation split "
                         "(dataset.validation_split: null); use --split test")
    return data_mod.validation_indices(labels, cfg.dataset.validation_split, cfg.training.seed)


def gather(folder: Path, cfg, model, split: str, on: str | None) -> Evaluation:
    """The images and labels to evaluate, and the model's predictions on them."""
    from hdr.core import data as data_mod

    want = tuple(model.input_shape[1:])
    reframed = None
    recorded = rundir.read_info(folder).get("data_dir")  # where the run found its data
    if on is None and split == "val":
        dataset = cfg.dataset.name
        train = data_mod.load(dataset, quiet=True, recorded_dir=recorded).train
        index = validation_rows(folder, cfg, train.y)
        x, y = train.x[index], train.y[index]
    else:
        dataset = on or cfg.dataset.name
        test = data_mod.load(dataset, quiet=True, recorded_dir=recorded).test
        x, y, index = test.x, test.y, np.arange(len(test.y))
        if on is not None and x.shape[1:] != want:
            from hdr.core.transfer import STYLES, reframe

            style = data_mod.get(cfg.dataset.name).framing
            reframed = f"{dataset} {x.shape[1]}x{x.shape[2]} -> {want[0]}x{want[1]}, {STYLES[style]}"
            x = reframe(x, want, style)
    if x.shape[1:] != want:
        raise HdrError(f"{folder}/{rundir.MODEL} takes {want[0]}x{want[1]} images but {dataset} has "
                       f"{x.shape[1]}x{x.shape[2]}; config.yaml and model.keras disagree")
    probs = model.predict(x, batch_size=cfg.training.eval_batch_size, verbose=0)
    return Evaluation(dataset, split, x, np.asarray(y), np.asarray(probs, dtype=np.float64), index, reframed)


def analyse(ev: Evaluation) -> tuple[np.ndarray, list[dict], dict]:
    """Probabilities and labels -> (confusion matrix, per-class rows, metrics). Pure."""
    cm = confusion_matrix(ev.y, ev.pred, ev.probs.shape[1])
    classes = per_class(cm)
    return cm, classes, summary(ev, cm, classes)


def write_folder(tmp: Path, ev: Evaluation, cm: np.ndarray, classes: list[dict], metrics: dict, title: str,
                 report) -> None:
    """Write an evaluation's files into tmp (a fresh folder the caller renames into place):
    misclassified pages, confusion matrix png/csv, per-class csv, predictions.csv, metrics.json and
    report.md, whose text is report(pages). Adds misclassified_pages to metrics."""
    pages = misclassified_pngs(ev, tmp, title)
    metrics["misclassified_pages"] = pages
    files = rundir.EVAL_FILES
    confusion_png(cm, tmp / files["confusion_png"], title)
    rundir.write(tmp, files["confusion_csv"], confusion_csv(cm))
    rundir.write(tmp, files["per_class"], per_class_csv(classes))
    rundir.write(tmp, files["predictions"], predictions_csv(ev))
    rundir.write_json(tmp / files["metrics"], metrics)
    rundir.write(tmp, files["report"], report(pages))


def evaluate(folder: Path, split: str = "test", on: str | None = None) -> tuple[Path, dict, list[dict]]:
    """Evaluate a run and write its eval folder; returns (folder written, metrics, per-class rows)."""
    from hdr.engine import config as config_mod

    folder = rundir.open_run(folder)
    cfg = config_mod.load_run_config(folder / rundir.CONFIG)
    if on == cfg.dataset.name:
        on = None  # the model's own dataset: a plain evaluation
    if on is not None and split != "test":
        raise UsageError(f"--on {on} evaluates on {on}'s test split; leave out --split {split}")
    name = rundir.eval_name(split, on)
    with rundir.writing_into(folder, f"hdr evaluate writes {name}/ into it"):  # checked before the model runs
        return _evaluate(folder, cfg, split, on, name)


def _evaluate(folder: Path, cfg, split: str, on: str | None, name: str) -> tuple[Path, dict, list[dict]]:
    """evaluate()'s work, once the folder is known to be writable."""
    model = rundir.load_model(folder)
    ev = gather(folder, cfg, model, split, on)

    cm, classes, metrics = analyse(ev)
    metrics.update(model_dataset=cfg.dataset.name, run=folder.name, evaluated=rundir.now_iso())
    if on is not None:
        base = in_domain_accuracy(folder)
        metrics.update(reframed=ev.reframed, in_domain_dataset=cfg.dataset.name, in_domain_accuracy=base,
                       transfer_gap=None if base is None else base - metrics[rundir.TEST_ACCURACY])

    config_text = (folder / rundir.CONFIG).read_text()
    with rundir.evaluation_folder(folder, name) as tmp:
        write_folder(tmp, ev, cm, classes, metrics, f"{folder.name} on {ev.dataset} {ev.split}",
                     lambda pages: report_md(folder, metrics, cm, classes, pages, config_text))
    if cfg.training.tensorboard:
        from hdr.engine import tensorboard_log

        tensorboard_log.log_evaluation(folder, name, metrics, model)  # the images, in RUN/tensorboard/<name>/
    return folder / name, metrics, classes


def summary_text(metrics: dict, classes: list[dict]) -> str:
    from tabulate import tabulate

    m = metrics
    p = numbers.percent
    lines = [f"{m['dataset']} {m['split']} ({m['size']} digits): loss {numbers.loss(m[m['split'] + '_loss'])}, "
             f"accuracy {p(m[m['split'] + '_accuracy'])}, error rate {p(m['error_rate'])} ({m['errors']} wrong)",
             f"macro precision {p(m['macro_precision'])}, recall {p(m['macro_recall'])}, f1 {p(m['macro_f1'])}"]
    if m.get("reframed"):
        lines.append(f"re-framed: {m['reframed']}")
    if "in_domain_accuracy" in m:
        if m["in_domain_accuracy"] is None:
            lines.append("in-domain accuracy unknown (no test_accuracy in the run's metrics.json)")
        else:
            lines.append(f"in-domain ({m['in_domain_dataset']} test) accuracy {p(m['in_domain_accuracy'])}; "
                         f"on {m['dataset']} {p(m[rundir.TEST_ACCURACY])}; transfer gap "
                         f"{numbers.points(m['transfer_gap'])} points")
    shares = ("accuracy", "precision", "recall", "f1")
    rows = [{"label": c["label"], "support": c["support"], "correct": c["correct"],
             **{f"{k} %": numbers.pct(c[k]) for k in shares}} for c in classes]
    lines += ["", tabulate(rows, headers="keys", tablefmt="simple", disable_numparse=True,
                           colalign=("left",) + ("right",) * 6)]
    return "\n".join(lines)
