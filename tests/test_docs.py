"""Figures in the documents are rendered from stored results (bench/docs.py), never typed: a
document that differs from what its results render fails here."""

from __future__ import annotations

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
