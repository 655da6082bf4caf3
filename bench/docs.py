"""Figures in README.md, BENCHMARKS.md and RECORDS.md are rendered from stored results, never typed.

A generated block in a document reads

    <!-- generated: NAME (python bench/docs.py render) -->
    ...
    <!-- end generated -->

and its content is BLOCKS[NAME](), a function of files under bench/results/. `render` rewrites
every block in place; `check` exits 1 naming each block that differs (tests/test_docs.py runs it).

In BENCHMARKS.md every table of figures is such a block (bench/tables.py renders the page's own
sections; bench scripts may render theirs). A table outside a block may hold words only: a
number starting a word outside `code` there (`1.2 s`, `98%`; not `AVX-512` or `uint8`) is a
typed figure, and tests/test_docs.py fails on it. A figure in prose must also appear in a
generated block, or the prose points at the table instead; a measurement that was never stored
is said to be so, with the command that re-measures it (the `# ~3 min` beside a command is a
hint, not a figure). README.md's and RECORDS.md's tables of commands and files are not held to
the words-only rule (they name counts such as "exit 1").

    python bench/docs.py render
    python bench/docs.py check
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
DOCUMENTS = [ROOT / "README.md", ROOT / "BENCHMARKS.md", ROOT / "RECORDS.md"]
BLOCK = re.compile(r"(<!-- generated: (\S+) \(python bench/docs.py render\) -->\n)(.*?)(<!-- end generated -->)",
                   re.S)


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def writeups() -> str:
    """The README's table: each write-up's experiment, its figure, and hdr's run of the config."""
    r = json.loads((RESULTS / "writeups.json").read_text())
    lines = ["| config | experiment | reported there | hdr, test accuracy |", "| --- | --- | --- | --- |"]
    machines = set()
    for name, c in r["configs"].items():
        h = c["hdr"]
        if h is None:
            ours = "not run on this machine"
        else:
            ours = _pct(h["test_accuracy"])
            if name == "cnn_small_adam.yaml":
                ours += f" (train {_pct(h['train_accuracy'])}, measured with dropout on)"
            rt = h["runtime"]
            machines.add(f"Keras {rt.get('keras', '?')} on {rt.get('backend', '?')} {rt.get(rt.get('backend'), '')}, "
                         f"{rt.get('cpu_count', '?')}-core {rt.get('cpu', '?')} {rt.get('device', '?').upper()}")
        lines.append(f"| `{name}` | {c['experiment']} | {c['reported']} | {ours} |")
    lines += ["", f"Source: `bench/results/writeups.json` ({r['written'][:10]}; "
                  f"{'; '.join(sorted(machines)) or 'no runs'}), written by `python bench/seeds.py collect`."]
    return "\n".join(lines) + "\n"


def _from(module: str, name: str = "render"):
    """A block rendered by a function of another bench script (bench/MODULE.py), imported when used."""
    def render() -> str:
        import importlib

        if str(BENCH) not in sys.path:
            sys.path.insert(0, str(BENCH))
        return getattr(importlib.import_module(module), name)()
    return render


# One line per block; a bench script that owns its figures renders them itself: "name": _from("script").
BLOCKS = {
    "writeups": writeups,
    "targets": _from("tables", "targets"),
    "train_now": _from("tables", "train_now"),
    "feeds": _from("tables", "feeds"),
    "train_avx512_cnn": _from("tables", "train_avx512_cnn"),
    "train_avx512_mlp": _from("tables", "train_avx512_mlp"),
    "accuracy_per_seed": _from("tables", "accuracy_per_seed"),
    "bf16_speed": _from("tables", "bf16_speed"),
    "bf16_runs": _from("tables", "bf16_runs"),
    "bf16_accuracy": _from("tables", "bf16_accuracy"),
    "bf16_variants": _from("tables", "bf16_variants"),
    "cli_latency": _from("tables", "cli_latency"),
    "data_loading": _from("tables", "data_loading"),
    "predict_throughput": _from("tables", "predict_throughput"),
    "predict_startup": _from("predict_startup"),
    "photos": _from("photos"),
    "resume": _from("tables", "resume"),
    "gpu": _from("tables", "gpu"),
    "appendix_measures": _from("tables", "appendix_measures"),
    "appendix_summary": _from("tables", "appendix_summary"),
    "records_mnist": _from("records", "render_mnist"),
    "records_usps": _from("records", "render_usps"),
    "usps_diagnosis": _from("usps_diagnosis"),
    "usps_writeup": _from("usps_writeup"),
    "time_to_99": _from("time_to_accuracy"),
    "time_to_99_phases": _from("time_to_accuracy", "render_phases"),
    "manyruns": _from("manyruns"),
    "sweep": _from("sweep"),
    "ray_overhead": _from("ray_overhead"),
    "tune": _from("tune"),
    "tensorboard_cost": _from("tensorboard_page"),
}


def render_text(text: str) -> str:
    return BLOCK.sub(lambda m: m.group(1) + BLOCKS[m.group(2)]() + m.group(4), text)


def main(argv: list[str]) -> int:
    if argv not in (["render"], ["check"]):
        print(__doc__, file=sys.stderr)
        return 2
    stale = []
    for doc in DOCUMENTS:
        text = doc.read_text()
        for m in BLOCK.finditer(text):
            if m.group(2) not in BLOCKS:
                print(f"{doc.name}: unknown generated block {m.group(2)!r}", file=sys.stderr)
                return 2
        new = render_text(text)
        if new != text:
            stale.append(doc.name)
            if argv == ["render"]:
                doc.write_text(new)
    if argv == ["check"] and stale:
        print(f"out of date: {', '.join(stale)}; run: python bench/docs.py render", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
