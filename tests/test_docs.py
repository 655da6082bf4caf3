"""Figures in the documents are rendered from stored results (bench/docs.py), never typed: a
document that differs from what its results render fails here."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from tests.conftest import REPO


def test_documents_equal_their_rendered_results():
    r = subprocess.run([sys.executable, str(REPO / "bench" / "docs.py"), "check"], capture_output=True, text=True,
                       cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr


def test_the_readme_table_of_write_ups_is_generated():
    text = (REPO / "README.md").read_text()
    assert "<!-- generated: writeups (python bench/docs.py render) -->" in text


def test_a_changed_result_makes_the_check_fail(tmp_path, monkeypatch):
    """The check is not vacuous: render a block from a result, then change the result."""
    sys.path.insert(0, str(REPO / "bench"))
    try:
        import docs
    finally:
        sys.path.pop(0)
    doc = tmp_path / "DOC.md"
    doc.write_text("a\n<!-- generated: writeups (python bench/docs.py render) -->\nstale\n<!-- end generated -->\n")
    monkeypatch.setattr(docs, "DOCUMENTS", [doc])
    assert docs.main(["check"]) == 1
    assert docs.main(["render"]) == 0 and docs.main(["check"]) == 0
    assert "stale" not in doc.read_text() and "| `cnn_adam.yaml` |" in doc.read_text()


NUMBER = re.compile(r"(?<![\w/.\-])\d")  # a number starting a word: 1.2 s, 98%, 0.62; not AVX-512, uint8


def typed_figures(text: str) -> list[str]:
    """Table rows outside generated blocks and code blocks that hold a number outside `code`."""
    text = re.sub(r"<!-- generated: .*?<!-- end generated -->", "", text, flags=re.S)
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return [line for line in text.splitlines()
            if line.lstrip().startswith("|") and NUMBER.search(re.sub(r"`[^`]*`", "", line))]


def test_every_table_of_figures_in_benchmarks_is_generated():
    """bench/docs.py's rule: in BENCHMARKS.md a table outside a generated block holds words only."""
    assert typed_figures((REPO / "BENCHMARKS.md").read_text()) == []
    assert typed_figures("a\n\n| x | y |\n|---|---|\n| hdr | 1.2 s |\n") == ["| hdr | 1.2 s |"]
    assert typed_figures("| AVX-512 | `--epochs 2` |\n<!-- generated: t (python bench/docs.py render) -->\n"
                         "| a | 3 |\n<!-- end generated -->\n") == []


def test_the_gpu_table_is_rendered_from_a_stored_gpu_result(tmp_path, monkeypatch):
    """Until bench/gpu.py has run there is no result: the table says so; once there is, it shows it."""
    sys.path.insert(0, str(REPO / "bench"))
    try:
        import tables
    finally:
        sys.path.pop(0)
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
