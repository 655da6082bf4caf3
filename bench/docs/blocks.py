"""Figures in README.md, BENCHMARKS.md and RECORDS.md are rendered from stored results, never typed.

A generated block in a document reads

    <!-- generated: NAME (python -m bench.docs.blocks render) -->
    ...
    <!-- end generated -->

and its content is BLOCKS[NAME](), a function of files under bench/results/. `render` rewrites
every block in place; `check` exits 1 naming each block that differs (tests/test_docs.py runs it).
The functions live in this package (bench/docs/: tables.py for BENCHMARKS.md's own sections,
harnesses.py for the blocks of bench/perf/'s harnesses, records.py for RECORDS.md), which imports
no harness and no experiment: they import from here, never the other way.

In BENCHMARKS.md every table of figures is such a block. A table outside a block may hold words
only: a number starting a word outside `code` there (`1.2 s`, `98%`; not `AVX-512` or `uint8`) is
a typed figure, and tests/test_docs.py fails on it. A figure in prose must also appear in a
generated block, or the prose points at the table instead; a measurement that was never stored
is said to be so, with the command that re-measures it (the `# ~3 min` beside a command is a
hint, not a figure). README.md's and RECORDS.md's tables of commands and files are not held to
the words-only rule (they name counts such as "exit 1").

    python -m bench.docs.blocks render
    python -m bench.docs.blocks check
"""

from __future__ import annotations

import json
import re
import sys

from bench.docs import harnesses, records, tables
from bench.layout import RESULTS, ROOT

DOCUMENTS = [ROOT / "README.md", ROOT / "BENCHMARKS.md", ROOT / "RECORDS.md"]
COMMAND = "python -m bench.docs.blocks render"
BLOCK = re.compile(r"(<!-- generated: (\S+) \(" + re.escape(COMMAND) + r"\) -->\n)(.*?)(<!-- end generated -->)",
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
                  f"{'; '.join(sorted(machines)) or 'no runs'}), written by "
                  "`python -m bench.experiments.seeds collect`."]
    return "\n".join(lines) + "\n"


# One line per block: its name in the documents and the function that renders it.
BLOCKS = {
    "writeups": writeups,
    "targets": tables.targets,
    "train_now": tables.train_now,
    "feeds": tables.feeds,
    "train_avx512_cnn": tables.train_avx512_cnn,
    "train_avx512_mlp": tables.train_avx512_mlp,
    "accuracy_per_seed": tables.accuracy_per_seed,
    "bf16_speed": tables.bf16_speed,
    "bf16_runs": tables.bf16_runs,
    "bf16_accuracy": tables.bf16_accuracy,
    "bf16_variants": tables.bf16_variants,
    "cli_latency": tables.cli_latency,
    "data_loading": tables.data_loading,
    "predict_throughput": tables.predict_throughput,
    "predict_startup": harnesses.predict_startup,
    "photos": harnesses.photos,
    "resume": tables.resume,
    "gpu": tables.gpu,
    "appendix_measures": tables.appendix_measures,
    "appendix_summary": tables.appendix_summary,
    "records_mnist": records.render_mnist,
    "records_usps": records.render_usps,
    "usps_diagnosis": records.usps_diagnosis,
    "usps_writeup": records.usps_writeup,
    "time_to_99": harnesses.time_to_99,
    "time_to_99_phases": harnesses.time_to_99_phases,
    "manyruns": harnesses.manyruns,
    "sweep": harnesses.sweep,
    "ray_overhead": harnesses.ray_overhead,
    "tune": harnesses.tune,
    "tensorboard_cost": harnesses.tensorboard_cost,
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
        if len(BLOCK.findall(text)) != text.count("<!-- generated: "):
            print(f"{doc.name}: a generated block's markers are not `<!-- generated: NAME ({COMMAND}) -->` "
                  "... `<!-- end generated -->`", file=sys.stderr)
            return 2
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
        print(f"out of date: {', '.join(stale)}; run: {COMMAND}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
