"""Figures in the documents are rendered from stored results (bench/docs/, `python -m
bench.docs.blocks render`), never typed: a document that differs from what its results render
fails here. The renderer is imported as a package (bench.docs), which imports no harness."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from bench.docs import blocks, tables
from tests.conftest import REPO

MARKER = "<!-- generated: {} (python -m bench.docs.blocks render) -->"


def test_documents_equal_their_rendered_results(capsys):
    assert blocks.main(["check"]) == 0, capsys.readouterr().err


def test_the_check_runs_as_its_command():
    """`python -m bench.docs.blocks check`, as the documents name it, from the repository's root."""
    r = subprocess.run([sys.executable, "-m", "bench.docs.blocks", "check"], capture_output=True, text=True,
                       cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr


def test_rendering_imports_no_harness_or_experiment():
    """bench.docs renders from stored results only: bench.perf and bench.experiments import it,
    never the other way (nor hdr, Keras or TensorFlow)."""
    code = ("import sys, bench.docs.blocks as b; [f() for f in b.BLOCKS.values()]; "
            "import json; print(json.dumps(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('bench', 'hdr', 'keras', 'tensorflow'))))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    loaded = json.loads(r.stdout)
    assert loaded and all(m == "bench" or m.startswith(("bench.docs", "bench.layout")) for m in loaded), loaded


def test_the_readme_table_of_write_ups_is_generated():
    text = (REPO / "README.md").read_text()
    assert MARKER.format("writeups") in text


def test_a_changed_result_makes_the_check_fail(tmp_path, monkeypatch):
    """The check is not vacuous: render a block from a result, then change the result."""
    doc = tmp_path / "DOC.md"
    doc.write_text(f"a\n{MARKER.format('writeups')}\nstale\n<!-- end generated -->\n")
    monkeypatch.setattr(blocks, "DOCUMENTS", [doc])
    assert blocks.main(["check"]) == 1
    assert blocks.main(["render"]) == 0 and blocks.main(["check"]) == 0
    assert "stale" not in doc.read_text() and "| `cnn_adam.yaml` |" in doc.read_text()


def test_a_marker_in_another_form_is_refused(tmp_path, monkeypatch):
    """A block whose marker names another command (the flat bench/docs.py of old) is not skipped."""
    doc = tmp_path / "DOC.md"
    doc.write_text("a\n<!-- generated: writeups (python bench/docs.py render) -->\nstale\n<!-- end generated -->\n")
    monkeypatch.setattr(blocks, "DOCUMENTS", [doc])
    assert blocks.main(["check"]) == 2 and blocks.main(["render"]) == 2


NUMBER = re.compile(r"(?<![\w/.\-])\d")  # a number starting a word: 1.2 s, 98%, 0.62; not AVX-512, uint8


def typed_figures(text: str) -> list[str]:
    """Table rows outside generated blocks and code blocks that hold a number outside `code`."""
    text = re.sub(r"<!-- generated: .*?<!-- end generated -->", "", text, flags=re.S)
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return [line for line in text.splitlines()
            if line.lstrip().startswith("|") and NUMBER.search(re.sub(r"`[^`]*`", "", line))]


def test_every_table_of_figures_in_benchmarks_is_generated():
    """bench/docs/blocks.py's rule: in BENCHMARKS.md a table outside a generated block holds words only."""
    assert typed_figures((REPO / "BENCHMARKS.md").read_text()) == []
    assert typed_figures("a\n\n| x | y |\n|---|---|\n| hdr | 1.2 s |\n") == ["| hdr | 1.2 s |"]
    assert typed_figures(f"| AVX-512 | `--epochs 2` |\n{MARKER.format('t')}\n"
                         "| a | 3 |\n<!-- end generated -->\n") == []


def test_the_gpu_table_is_rendered_from_a_stored_gpu_result(tmp_path, monkeypatch):
    """Until bench/perf/gpu.py has run there is no result: the table says so; once there is, it shows it."""
    monkeypatch.setattr(tables, "RESULTS", tmp_path)
    assert "not measured" in tables.gpu()
    run = {"wall": 20.0, "epoch_seconds": [7.5, 0.7, 0.6], "test_accuracy": 0.99}
    record = {"devices": ["gpu:NVIDIA H100"], "per_epoch": {"hdr cnn_adam.yaml (fp32)": [run, run]},
              "to_99": [{**run, "label": "fast", "command": "hdr train configs/cnn_adam.yaml"},
                        {**run, "wall": 9.0, "test_accuracy": 0.985, "label": "faster", "command": "x"}]}
    (tmp_path / "gpu-20270101-000000.json").write_text(json.dumps(record))
    text = tables.gpu()
    assert "not measured" not in text and "7.50 s / 0.650 s" in text and "**20.0 s**" in text
    assert "fastest to ≥ 99.0%: fast, **20.0** s" in tables.gpu_target()
    (row,) = tables._gpu_rows()  # the first screen's GPU row: 20.0 s against the goal of 8 s
    assert "**20.0** s" in row[1] and row[2] == "**not met**" and "gpu:NVIDIA H100" in row[3]


def test_benchmarks_opens_with_its_targets():
    """BENCHMARKS.md's first screen is the generated table of targets, each with its figure, its
    verdict, the CPU it was measured on and a link to its section."""
    lines = (REPO / "BENCHMARKS.md").read_text().splitlines()
    start = lines.index(MARKER.format("targets"))
    end = lines.index("<!-- end generated -->", start)
    assert start < 10 and end < 40
    rows = [line for line in lines[start + 3:end] if line.startswith("| ")]
    assert len(rows) >= 10 and all(re.search(r"\| \[§\d+\]\(#[\w-]+\) \|$", row) for row in rows)
    assert lines[start + 1] == "| target | latest figure | met? | measured on | details |"
