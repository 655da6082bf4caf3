"""Where bench's files are, and each script's command as `python -m bench.PKG.NAME`.

The scripts were flat files (`python bench/NAME.py ...`) until they were split into packages by
purpose; stored results recorded commands in the old form. `current()` rewrites such a text into
the form that runs today, so the documents never show a command that no longer works.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DEFAULT_DATA = ROOT.parent / "shared" / "datasets"

# Each script's module, by the name it had as bench/NAME.py.
MODULES = {
    "docs": "bench.docs.blocks", "tables": "bench.docs.tables",
    **{n: f"bench.baselines.{n}" for n in ("plain_keras_cnn", "plain_keras_mlp", "usps_writeup")},
    **{n: f"bench.experiments.{n}" for n in ("records", "seeds", "usps_diagnosis")},
    **{n: f"bench.perf.{n}" for n in ("run", "feeds", "manyruns", "sweep", "steps", "variants", "resume",
                                      "ray_overhead", "predict_startup", "time_to_accuracy", "gpu", "photos",
                                      "tensorboard_page", "tune")},
}
SHELL_SCRIPTS = {"ab_checkouts": "bench/perf/ab_checkouts.sh"}


def command(args: list[str] | None = None, python: str = "python") -> str:
    """This process's command line as a person types it again: `python -m bench.PKG.NAME ARGS`
    (the module run as __main__; its arguments joined by spaces, unquoted, as bench always did)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    head = ["-m", spec.name] if spec is not None else [sys.argv[0]]
    return " ".join([python, *head, *(sys.argv[1:] if args is None else args)])


_RUN = re.compile(r"\b(python3?)\s+bench/(\w+)\.py\b")
_PATH = re.compile(r"(?<![\w/])bench/(\w+)\.(py|sh)\b")


def current(text: str) -> str:
    """text with each old script named as it is now: `python bench/NAME.py` becomes
    `python -m bench.PKG.NAME`, a bare `bench/NAME.py` becomes the file's path in its package."""
    text = _RUN.sub(lambda m: f"{m[1]} -m {MODULES[m[2]]}" if m[2] in MODULES else m[0], text)

    def path(m):
        if m[2] == "sh":
            return SHELL_SCRIPTS.get(m[1], m[0])
        return MODULES[m[1]].replace(".", "/") + ".py" if m[1] in MODULES else m[0]
    return _PATH.sub(path, text)
