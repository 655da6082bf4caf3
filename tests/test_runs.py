"""hdr runs over fabricated run folders: test accuracy, status filter, JSON, damaged folders named
and skipped, control characters in folder names escaped, and no heavy imports."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner

from hdr import runs
from hdr.cli import cli
from hdr.history import best_val
from tests.test_compare import make_run


def invoke(*args):
    """`hdr runs` as hdr.runs.command (the command with --status and --json)."""
    return CliRunner().invoke(runs.command, [str(a) for a in args])


def test_best_val_is_the_earliest_best_epoch():
    hist = [{"epoch": 1, "val_accuracy": 0.9}, {"epoch": 2, "val_accuracy": 0.95}, {"epoch": 3, "val_accuracy": 0.95}]
    assert best_val(hist) == (0.95, 2)
    assert best_val([{"epoch": 1, "val_accuracy": None}]) == (None, None)


def test_runs_lists_test_accuracy(tmp_path):
    make_run(tmp_path, "r1", val_acc=(0.9, 0.95), test_acc=0.9612)
    result = CliRunner().invoke(cli, ["runs", str(tmp_path)])
    assert result.exit_code == 0, result.output
    header, _, row = result.stdout.splitlines()[:3]
    assert "test acc" in header and "best val acc" in header
    assert "0.9612" in row and "0.9500" in row and "2/3" in row


def test_one_damaged_folder_does_not_break_the_listing(tmp_path):
    make_run(tmp_path, "a-good")
    bad = make_run(tmp_path, "b-bad-history")
    (bad / "history.csv").write_text("abc,def\n1,2\n")
    (make_run(tmp_path, "c-list-json") / "run.json").write_text("[1, 2]")
    make_run(tmp_path, "d-good", status="failed", val_acc=(0.5,))
    result = CliRunner().invoke(cli, ["runs", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert "a-good" in result.stdout and "d-good" in result.stdout
    assert "b-bad-history" not in result.stdout and "c-list-json" not in result.stdout
    warnings = result.stderr.splitlines()
    assert len(warnings) == 2 and all(w.startswith("hdr: warning: skipping") for w in warnings)
    assert "b-bad-history" in warnings[0] and "history.csv" in warnings[0]
    assert "c-list-json" in warnings[1] and "run.json" in warnings[1]


def test_control_characters_in_folder_names_are_escaped(tmp_path):
    make_run(tmp_path, "evil\x1b]0;owned\x07name")
    result = CliRunner().invoke(cli, ["runs", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "evil\\x1b]0;owned\\x07name" in result.stdout


def test_status_filter_repeatable_or_comma_list(tmp_path):
    make_run(tmp_path, "done")
    make_run(tmp_path, "broke", status="failed", val_acc=(0.5,))
    make_run(tmp_path, "stopped", status="interrupted", val_acc=(0.5, 0.6))
    names = lambda r: {line.split()[0] for line in r.stdout.splitlines()[2:]}  # noqa: E731
    assert names(invoke(tmp_path, "--status", "completed")) == {"done"}
    assert names(invoke(tmp_path, "--status", "failed,interrupted")) == {"broke", "stopped"}
    assert names(invoke(tmp_path, "--status", "failed", "--status", "completed")) == {"broke", "done"}
    assert "no runs" in invoke(tmp_path, "--status", "crashed").stdout
    bad = invoke(tmp_path, "--status", "finished")
    assert bad.exit_code == 2 and "unknown status" in bad.output and "completed" in bad.output


def test_runs_json_for_scripts(tmp_path):
    make_run(tmp_path, "r1", val_acc=(0.9, 0.95, 0.95), test_acc=0.96)
    make_run(tmp_path, "r2", status="failed", val_acc=(0.5,))
    result = invoke(tmp_path, "--json")
    assert result.exit_code == 0, result.output
    data = {r["id"]: r for r in json.loads(result.stdout)}
    assert data["r1"]["status"] == "completed" and data["r1"]["test_accuracy"] == 0.96
    assert data["r1"]["best_val_accuracy"] == 0.95 and data["r1"]["best_epoch"] == 2
    assert data["r1"]["epochs_completed"] == 3 and data["r2"]["test_accuracy"] is None
    only = json.loads(invoke(tmp_path, "--json", "--status", "failed").stdout)
    assert [r["id"] for r in only] == ["r2"]


def test_runs_does_not_import_keras_or_pydantic(tmp_path):
    make_run(tmp_path, "r1")
    code = ("import sys\nfrom hdr import runs\n"
            "try:\n    runs.command([sys.argv[1], '--json'])\n"
            "except SystemExit as e:\n    assert not e.code, e.code\n"
            "bad = [m for m in ('tensorflow', 'keras', 'jax', 'torch', 'pydantic', 'matplotlib') if m in sys.modules]\n"
            "assert not bad, bad\n")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
