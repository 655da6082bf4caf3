"""The architecture as a checked rule: hdr's layers import only downward and no modules import each
other in a circle (import-linter's contracts in pyproject.toml), functions' own imports included."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
        "sys.exit(lint_imports_command())"]


def lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(LINT, cwd=root, capture_output=True, text=True, env={"PYTHONPATH": str(root),
                                                                              "PATH": "/usr/bin:/bin"})


def test_the_layers_contract_holds():
    r = lint(REPO)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 kept, 0 broken" in r.stdout


@pytest.mark.parametrize("module, added, broken", [
    # the core reaching up to the command line, from inside a function as the lazy imports do
    ("core/errors.py", "\ndef _late():\n    from hdr.cli import main  # noqa\n", "hdr's layers"),
    # two modules of one layer importing each other: listing imports history already
    ("runs/history.py", "\ndef _late():\n    from hdr.runs import listing  # noqa\n", "no import circle"),
])
def test_an_upward_import_or_a_circle_breaks_it(tmp_path, module, added, broken):
    shutil.copytree(REPO / "hdr", tmp_path / "hdr", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    with open(tmp_path / "hdr" / module, "a") as f:
        f.write(added)
    r = lint(tmp_path)
    assert r.returncode != 0 and f"{broken}" in r.stdout and "BROKEN" in r.stdout, r.stdout + r.stderr
