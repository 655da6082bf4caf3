"""hdr draw: a window to draw a digit in with the mouse while a trained model guesses it live.

A drawing is not an MNIST digit until it is preprocessed like one: drawn large and anywhere on
the canvas, it must be cropped, scaled into MNIST's 20x20 box, centred by centre of mass and
given MNIST-like stroke widths, which is what `hdr.apps.predict.preprocess` does for image files too.
Strokes are drawn into a PIL image alongside the screen canvas (no screen grabbing), so what
the model sees does not depend on the display, its scaling or a window on top.

`Sketch` holds the drawing and the model and does all the work; `App` only wires tkinter
events to it, so the logic is tested without a display.
"""

from __future__ import annotations

import base64
import io
import signal
import sys
from pathlib import Path

import numpy as np

from hdr.core.errors import EXIT_SIGNAL, HdrError, UsageError

CANVAS = 280  # 10x MNIST's 28, the size the canvas and its PIL twin share
BRUSH = 24    # pen width in canvas pixels: MNIST-like strokes (2.4 px of 28) for a digit drawn ~3/4 of the canvas high
PREVIEW_ZOOM = 4


class Sketch:
    """The drawing (white strokes on black, like MNIST), the model, and its latest guess."""

    def __init__(self, model, size: tuple[int, int] = (28, 28), canvas: int = CANVAS, brush: int = BRUSH):
        from PIL import Image, ImageDraw

        self.model = model
        self.size = tuple(size)
        self.brush = brush
        self.image = Image.new("L", (canvas, canvas), 0)
        self._draw = ImageDraw.Draw(self.image)
        self.model_input = np.zeros(self.size, np.uint8)  # what the model saw last
        self.probs: np.ndarray | None = None
        self.classes = int(model.output_shape[-1])

    def stroke(self, points) -> None:
        """Draw one pen stroke through the canvas points [(x, y), ...]."""
        pts = [(float(x), float(y)) for x, y in points]
        if not pts:
            return
        r = self.brush / 2
        # Segment by segment with a disc at every point: a round brush, as the screen canvas
        # draws it. (One wide polyline leaves hairline seams at its joins.)
        for a, b in zip(pts, pts[1:]):
            self._draw.line((a, b), fill=255, width=self.brush)
        for x, y in pts:
            self._draw.ellipse((x - r, y - r, x + r, y + r), fill=255)

    def clear(self) -> None:
        self._draw.rectangle((0, 0, *self.image.size), fill=0)
        self.model_input = np.zeros(self.size, np.uint8)
        self.probs = None

    def is_blank(self) -> bool:
        return self.image.getbbox() is None

    def predict(self) -> np.ndarray | None:
        """Class probabilities (10,) for the drawing, or None while the canvas is blank."""
        from hdr.apps.predict import predict_arrays, preprocess

        if self.is_blank():
            self.model_input = np.zeros(self.size, np.uint8)
            self.probs = None
            return None
        self.model_input = preprocess(self.image, self.size)
        self.probs = predict_arrays(self.model, self.model_input[None])[0]
        return self.probs

    def guess(self) -> tuple[int, float] | None:
        if self.probs is None:
            return None
        d = int(np.argmax(self.probs))
        return d, float(self.probs[d])


def _png_base64(a: np.ndarray, zoom: int) -> str:
    """A grey array as base64 PNG, which Tk 8.6 shows natively (no PIL.ImageTk needed)."""
    from PIL import Image

    img = Image.fromarray(np.asarray(a, np.uint8)).resize((a.shape[1] * zoom, a.shape[0] * zoom), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


class App:
    """The window: canvas on the left; guess, confidence, probability bars and the model's
    input on the right. It only turns mouse events into Sketch calls and shows the result."""

    BAR_W, BAR_H = 150, 18

    def __init__(self, root, sketch: Sketch, title: str = "hdr draw"):
        import tkinter as tk

        self.tk = tk
        self.root = root
        self.sketch = sketch
        self.points: list[tuple[int, int]] = []
        root.title(title)
        side = sketch.image.size[0]

        self.canvas = tk.Canvas(root, width=side, height=side, bg="black", highlightthickness=1,
                                highlightbackground="grey50", cursor="pencil")
        self.canvas.grid(row=0, column=0, rowspan=2, padx=8, pady=8)
        self.canvas.bind("<ButtonPress-1>", self.on_press)
        self.canvas.bind("<B1-Motion>", self.on_motion)
        self.canvas.bind("<ButtonRelease-1>", self.on_release)

        panel = tk.Frame(root)
        panel.grid(row=0, column=1, sticky="n", padx=8, pady=8)
        self.guess_var = tk.StringVar(value="?")
        self.conf_var = tk.StringVar(value="draw a digit")
        tk.Label(panel, textvariable=self.guess_var, font=("TkDefaultFont", 48, "bold")).pack()
        tk.Label(panel, textvariable=self.conf_var).pack()
        self.bars = tk.Canvas(panel, width=self.BAR_W + 70, height=sketch.classes * self.BAR_H,
                              highlightthickness=0)
        self.bars.pack(pady=6)
        tk.Label(panel, text="model input").pack()
        self.preview = tk.Label(panel, bg="black")
        self.preview.pack()

        buttons = tk.Frame(root)
        buttons.grid(row=1, column=1, sticky="s", padx=8, pady=8)
        tk.Button(buttons, text="Clear", command=self.clear).pack(side="left")
        tk.Button(buttons, text="Predict", command=self.show_prediction).pack(side="left")
        root.bind("<Escape>", lambda e: self.clear())
        self.show_prediction()

    # --- mouse ----------------------------------------------------------------------------
    def on_press(self, event):
        self.points = [(event.x, event.y)]
        r = self.sketch.brush / 2
        self.canvas.create_oval(event.x - r, event.y - r, event.x + r, event.y + r, fill="white", outline="")

    def on_motion(self, event):
        if not self.points:  # a drag that started outside the canvas
            self.points = [(event.x, event.y)]
        x0, y0 = self.points[-1]
        self.canvas.create_line(x0, y0, event.x, event.y, fill="white", width=self.sketch.brush,
                                capstyle="round", joinstyle="round")
        self.points.append((event.x, event.y))

    def on_release(self, event):
        if self.points:
            self.sketch.stroke(self.points)
            self.points = []
        self.show_prediction()

    # --- buttons --------------------------------------------------------------------------
    def clear(self):
        self.canvas.delete("all")
        self.sketch.clear()
        self.show_prediction()

    def show_prediction(self):
        probs = self.sketch.predict()
        guess = self.sketch.guess()
        if guess is None:
            self.guess_var.set("?")
            self.conf_var.set("draw a digit")
        else:
            self.guess_var.set(str(guess[0]))
            self.conf_var.set(f"confidence {guess[1]:.0%}")
        self._draw_bars(probs)
        self._preview = self.tk.PhotoImage(data=_png_base64(self.sketch.model_input, PREVIEW_ZOOM), format="png")
        self.preview.configure(image=self._preview)  # the reference above keeps Tk from freeing it

    def _draw_bars(self, probs):
        self.bars.delete("all")
        best = int(np.argmax(probs)) if probs is not None else -1
        for d in range(self.sketch.classes):
            y = d * self.BAR_H
            p = float(probs[d]) if probs is not None else 0.0
            self.bars.create_text(8, y + self.BAR_H / 2, text=str(d))
            self.bars.create_rectangle(20, y + 3, 20 + self.BAR_W, y + self.BAR_H - 3, outline="grey70")
            if p > 0:
                self.bars.create_rectangle(20, y + 3, 20 + max(1, p * self.BAR_W), y + self.BAR_H - 3,
                                           fill="firebrick" if d == best else "steelblue", outline="")
            self.bars.create_text(24 + self.BAR_W, y + self.BAR_H / 2, text=f"{p:.0%}", anchor="w")


def _import_tk():
    try:
        import tkinter
    except ImportError:
        raise HdrError("hdr draw needs tkinter, which this Python lacks; install it "
                       "(Debian/Ubuntu: sudo apt-get install python3-tk; Fedora: sudo dnf install python3-tkinter; "
                       "macOS Homebrew: brew install python-tk) and run again") from None
    return tkinter


def open_root():
    """The Tk root window, or a one-line UsageError when there is no display to put it on: the
    command was run in the wrong place, which is the user's to change (exit 2)."""
    tk = _import_tk()
    try:
        return tk.Tk()
    except tk.TclError as e:
        raise UsageError(f"hdr draw needs a display ({e}); run it where there is one (a desktop, ssh -X, or a "
                         "virtual one: Xvfb :99 & DISPLAY=:99 hdr draw RUN), or save a drawing and use: "
                         "hdr predict RUN IMAGE") from None


def show(run, model_path=None) -> None:
    """Open the window for run folder RUN's model (or an exported one) and run it until closed."""
    from hdr.apps import predict
    from hdr.runs import rundir

    folder = rundir.open_run(run)  # a wrong folder is a usage error, reported before any window
    root = open_root()
    try:
        root.withdraw()  # no empty window while Keras loads
        model = predict.load_predictor(folder, model_path)  # RUN/export/model.onnx if there: no TensorFlow
        sketch = Sketch(model, predict.input_size(model))
        sketch.stroke([(CANVAS / 2, CANVAS / 2)])
        sketch.predict()  # compile the predict function now, so the first real stroke answers at once
        sketch.clear()
        App(root, sketch, title=f"hdr draw - {Path(folder).name}")
        root.deiconify()
        # Tk's loop blocks Python's signal handling; a periodic no-op lets Ctrl-C through.
        def tick():
            root.after(200, tick)
        tick()
        root.mainloop()
    except KeyboardInterrupt:
        sys.exit(EXIT_SIGNAL[signal.SIGINT])
    finally:
        try:
            root.destroy()
        except Exception:  # already closed by the window manager
            pass
