"""hdr runs over fabricated run folders: test accuracy, status filter, JSON, damaged folders named
and skipped, control characters in folder names escaped, and no heavy imports; the index
(.hdr-index) never shows what a fresh read would not: runs that changed, finished, appeared or
went, a deleted, torn or foreign index, edits that keep a file's size and mtime, concurrent
writers; pruned and early-stopped runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from hdr.analysis import comparecache
from hdr.runs import runindex
from hdr.cli import runs as runs_cli
from hdr.runs import listing as runs
from hdr.cli.main import cli
from hdr.runs.history import best_val
from hdr.runs.rundir import write_history, write_json
from tests.test_compare import make_run


def invoke(*args):
    """`hdr runs` as hdr.runs_cli.command (the command with --status and --json)."""
    return CliRunner().invoke(runs_cli.command, [str(a) for a in args])


def test_best_val_is_the_earliest_best_epoch():
    hist = [{"epoch": 1, "val_accuracy": 0.9}, {"epoch": 2, "val_accuracy": 0.95}, {"epoch": 3, "val_accuracy": 0.95}]
    assert best_val(hist) == (0.95, 2)
    assert best_val([{"epoch": 1, "val_accuracy": None}]) == (None, None)


def test_runs_lists_test_accuracy(tmp_path):
    make_run(tmp_path, "r1", val_acc=(0.9, 0.95), test_acc=0.9612)
    result = CliRunner().invoke(cli, ["runs", str(tmp_path)])
    assert result.exit_code == 0, result.output
    header, _, row = result.stdout.splitlines()[:3]
    assert "test acc %" in header and "best val %" in header
    assert "96.12" in row and "95.00" in row and "2/3" in row  # one format in every command (hdr.core.numbers)


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
    code = ("import sys\nfrom hdr.cli import runs as runs_cli\n"
            "try:\n    runs_cli.command([sys.argv[1], '--json'])\n"
            "except SystemExit as e:\n    assert not e.code, e.code\n"
            "bad = [m for m in ('tensorflow', 'keras', 'jax', 'torch', 'pydantic', 'matplotlib') if m in sys.modules]\n"
            "assert not bad, bad\n")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# ------------------------------------------------------------------------------ the index (.hdr-index)

def _both(root, *args, cli_args=("runs",)):
    """(with the index, without it): the command's output, each read as a listing would."""
    with_index = CliRunner().invoke(cli, [*cli_args, str(root), *args])
    without = CliRunner().invoke(cli, [*cli_args, str(root), *args], env={"HDR_RUNS_INDEX": "0"})
    assert with_index.exit_code == 0 and without.exit_code == 0, (with_index.output, without.output)
    return with_index.output, without.output


def _same_as_unindexed(root):
    for command in (("runs",), ("compare",)):
        indexed, fresh = _both(root, "--json", cli_args=command)
        assert indexed == fresh, command
    indexed, fresh = _both(root, cli_args=("compare",))
    assert indexed == fresh


def _indexed_names(root) -> set:
    """The run folders whose record the index holds (proof that a listing would use it)."""
    lines = runindex.unframe((root / runindex.NAME).read_bytes(), runindex._header())
    assert lines is not None, "the index is not a whole one"
    return set(json.loads(lines[0])["runs"])


@pytest.fixture
def indexed(tmp_path, monkeypatch):
    """A folder of runs of every kind, listed once so that the index holds them all. MARGIN_NS 0:
    runs written a moment ago count as settled (the margin has its own test)."""
    monkeypatch.setattr(runindex, "MIN_RUNS", 1)
    monkeypatch.setattr(runindex, "MARGIN_NS", 0)
    root = tmp_path / "runs"
    make_run(root, "a-done", val_acc=(0.9, 0.95, 0.94), test_acc=0.95)
    make_run(root, "b-failed", status="failed", val_acc=(0.5,), reason="training diverged")
    make_run(root, "c-running", status="running", val_acc=(0.8,), info={"pid": os.getpid()})
    make_run(root, "d-pruned", status="pruned", val_acc=(0.7, 0.72), reason="pruned by the search at epoch 2")
    make_run(root, "e-seed2", overrides={"training.seed": 2}, val_acc=(0.91, 0.96))
    time.sleep(0.02)  # past the file system's timestamp granularity: later edits get later times
    _same_as_unindexed(root)
    assert _indexed_names(root) == {"a-done", "b-failed", "c-running", "d-pruned", "e-seed2"}
    return root


def _append_epoch(root):
    with open(root / "c-running" / "history.csv", "a") as f:  # in place, as a tool appending would
        f.write("2,0.5,0.85,0.15,0.9,0.001,2.0\n")


def _finish(root):
    folder = root / "b-failed"
    info = json.loads((folder / "run.json").read_text())
    write_json(folder / "run.json", {**info, "status": "completed"})  # atomic rename, as hdr writes it


def _metrics_appear(root):
    write_json(root / "b-failed" / "metrics.json", {"test_accuracy": 0.42, "test_loss": 0.9, "params": 12})


def _delete(root):
    shutil.rmtree(root / "e-seed2")


def _add(root):
    make_run(root, "f-new", overrides={"training.seed": 3}, val_acc=(0.5, 0.99))


def _index_deleted(root):
    (root / runindex.NAME).unlink()


def _index_torn(root):
    path = root / runindex.NAME
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _index_garbage(root):
    (root / runindex.NAME).write_text('{"format": "hdr-runs-index", "version": 1}\n[]\n{}\n')


def _config_edited(root):
    path = root / "a-done" / "config.yaml"
    path.write_text(path.read_text().replace("batch_size: 128", "batch_size: 256"))


def _resumed(root):
    """A failed run resumed and completed: history rewritten, metrics written, run.json updated."""
    folder = root / "b-failed"
    write_history(folder / "history.csv", [{"epoch": e, "val_accuracy": v, "seconds": 1.0}
                                            for e, v in ((1, 0.5), (2, 0.8), (3, 0.97))])
    write_json(folder / "metrics.json", {"test_accuracy": 0.96, "test_loss": 0.1, "params": 12})
    info = json.loads((folder / "run.json").read_text())
    write_json(folder / "run.json", {**info, "status": "completed", "epochs_completed": 3})


@pytest.mark.parametrize("change", [_append_epoch, _finish, _metrics_appear, _delete, _add, _index_deleted,
                                    _index_torn, _index_garbage, _config_edited, _resumed],
                         ids=lambda f: f.__name__.strip("_"))
def test_index_never_shows_stale_runs(indexed, change):
    def seen():
        return _both(indexed, "--json")[0] + _both(indexed, "--json", cli_args=("compare",))[0]

    before = seen()
    change(indexed)
    _same_as_unindexed(indexed)
    after = seen()
    if change not in (_index_deleted, _index_torn, _index_garbage):
        assert after != before  # the change is visible, not only consistent
    else:
        assert after == before and _indexed_names(indexed)  # rebuilt, whole


def test_same_size_edit_with_mtime_set_back_is_seen(indexed):
    """An edit that keeps the size and puts the old mtime back (a coarse-mtime file system, cp -p,
    tar): the change time still moves, and the index holds it."""
    path = indexed / "a-done" / "config.yaml"
    st = path.stat()
    path.write_text(path.read_text().replace("learning_rate: 0.001", "learning_rate: 0.002"))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    indexed_out, fresh = _both(indexed, "--json", cli_args=("compare",))
    assert indexed_out == fresh and "0.002" in indexed_out


def test_runs_changed_within_the_margin_are_read_not_kept(tmp_path, monkeypatch):
    """A file changed moments before a listing could change again within the same timestamp tick,
    leaving every stamp as it was: such runs are read afresh until they settle."""
    monkeypatch.setattr(runindex, "MIN_RUNS", 1)
    make_run(tmp_path, "old", val_acc=(0.9,))
    make_run(tmp_path, "new", val_acc=(0.8,))
    monkeypatch.setattr(runindex, "MARGIN_NS", 0)
    _same_as_unindexed(tmp_path)
    assert _indexed_names(tmp_path) == {"old", "new"}
    path = tmp_path / "new" / "history.csv"
    st = path.stat()
    path.write_text(path.read_text().replace("0.8,", "0.7,"))  # same size, and the same mtime below
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    monkeypatch.setattr(runindex, "MARGIN_NS", 2_000_000_000)
    _same_as_unindexed(tmp_path)
    assert _indexed_names(tmp_path) == {"old"}  # "new" changed just now: not kept


def test_a_live_run_that_dies_shows_crashed_though_indexed(indexed):
    """The status of a running run depends on its process, checked at every listing, never kept."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        folder = indexed / "g-live"
        make_run(indexed, "g-live", status="running", val_acc=(0.5,), info={"pid": proc.pid})
        time.sleep(0.02)
        statuses = lambda: {r["id"]: r["status"] for r in json.loads(invoke(indexed, "--json").stdout)}  # noqa: E731
        assert statuses()["g-live"] == "running" and "g-live" in _indexed_names(indexed)
    finally:
        proc.kill()
        proc.wait()
    assert statuses()["g-live"] == "crashed"
    assert (folder / "run.json").read_text().count('"running"') == 1  # no file changed


def test_concurrent_listings_write_one_whole_index(tmp_path):
    """Four `hdr runs` at once over 60 runs and no index: each writes a whole one by rename."""
    for i in range(60):
        make_run(tmp_path, f"run{i:02d}", overrides={"training.seed": i})
    time.sleep(2.1)  # settled (runindex.MARGIN_NS): the listings will keep them
    procs = [subprocess.Popen([sys.executable, "-m", "hdr", "runs", str(tmp_path), "--json"],
                              stdout=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate()[0] for p in procs]
    assert all(p.returncode == 0 for p in procs) and len(set(outs)) == 1
    assert len(_indexed_names(tmp_path)) == 60
    assert [p.name for p in tmp_path.iterdir() if not p.is_dir()] == [runindex.NAME]  # no temporary left
    fresh = CliRunner().invoke(runs_cli.command, [str(tmp_path), "--json"], env={"HDR_RUNS_INDEX": "0"})
    assert json.loads(fresh.stdout) == json.loads(outs[0])


def test_small_folders_and_switched_off_get_no_index(tmp_path, monkeypatch):
    make_run(tmp_path, "r1")
    invoke(tmp_path)
    assert not (tmp_path / runindex.NAME).exists()  # fewer than MIN_RUNS runs
    monkeypatch.setattr(runindex, "MIN_RUNS", 1)
    monkeypatch.setattr(runindex, "MARGIN_NS", 0)
    CliRunner().invoke(runs_cli.command, [str(tmp_path)], env={"HDR_RUNS_INDEX": "0"})
    assert not (tmp_path / runindex.NAME).exists()
    invoke(tmp_path)
    assert (tmp_path / runindex.NAME).exists()


def test_pruned_and_early_stopped_runs_are_reported(tmp_path):
    make_run(tmp_path, "pruned", status="pruned", val_acc=(0.6, 0.65), reason="pruned by the search at epoch 2")
    es = make_run(tmp_path, "stopped", overrides={"training.epochs": 10}, val_acc=(0.90, 0.96, 0.94, 0.93))
    metrics = json.loads((es / "metrics.json").read_text())
    metrics.update(val_accuracy=0.96, early_stopping={"monitor": "val_accuracy", "patience": 2, "min_delta": 0.0,
                                                      "best_epoch": 2, "stopped_epoch": 4, "restored_best": True})
    (es / "metrics.json").write_text(json.dumps(metrics))
    data = {r["id"]: r for r in json.loads(invoke(tmp_path, "--json").stdout)}
    assert data["pruned"]["status"] == "pruned" and data["pruned"]["epochs_completed"] == 2
    assert data["stopped"]["status"] == "completed" and data["stopped"]["best_epoch"] == 2
    assert data["stopped"]["epochs_completed"] == 4 and data["stopped"]["epochs_planned"] == 10
    assert invoke(tmp_path, "--status", "pruned").stdout.splitlines()[2].split()[:2] == ["pruned", "pruned"]
    result = CliRunner().invoke(cli, ["compare", str(tmp_path), "--json"])
    rows = {r["run"]: r for r in json.loads(result.stdout)["runs"]}
    # the final validation accuracy is that of the weights the run ended with: the best epoch's
    assert rows["stopped"]["val_accuracy"] == 0.96 and rows["stopped"]["epochs"] == 4
    notes = json.loads(result.stdout)["notes"]
    assert any(n.startswith("pruned by a search") and "pruned (" in n for n in notes)
    assert not any(n.startswith("not completed") for n in notes)


# ------------------------------------------------------------------------------ the kept comparison (.hdr-compare)

def _kept(root, sort_key=None):
    """The result .hdr-compare holds for `hdr compare root` as the folder is now; None when the
    comparison would be computed afresh."""
    paths = [str(root)]
    found = runs.find(paths, lambda msg: None)
    return comparecache.load(comparecache.key(paths, found, sort_key), found)


def _metrics_edited(root):
    path = root / "a-done" / "metrics.json"
    write_json(path, {**json.loads(path.read_text()), "test_accuracy": 0.5})


def _kept_deleted(root):
    (root / comparecache.NAME).unlink()


def _kept_torn(root):
    path = root / comparecache.NAME
    path.write_bytes(path.read_bytes()[:-100])


def _kept_garbage(root):
    path = root / comparecache.NAME
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b"a-done", b"x-done")  # its CRC no longer matches
    path.write_bytes(b"\n".join(lines))


@pytest.mark.parametrize("change", [_append_epoch, _finish, _metrics_appear, _metrics_edited, _delete, _add,
                                    _config_edited, _resumed, _kept_deleted, _kept_torn, _kept_garbage],
                         ids=lambda f: f.__name__.strip("_"))
def test_kept_comparison_is_never_stale(indexed, change):
    def seen():
        return _both(indexed, cli_args=("compare",))[0] + _both(indexed, "--json", cli_args=("compare",))[0]

    before = seen()
    assert _kept(indexed) is not None  # what the next comparison would print
    change(indexed)
    assert _kept(indexed) is None
    _same_as_unindexed(indexed)
    assert _kept(indexed) is not None  # kept again, whole
    after = seen()
    assert (after == before) == (change in (_kept_deleted, _kept_torn, _kept_garbage))


def test_kept_comparison_is_per_sort_and_repeats_warnings(indexed):
    bad = indexed / "h-damaged"
    bad.mkdir()
    (bad / "run.json").write_text('{"id": "half')
    first = CliRunner().invoke(cli, ["compare", str(indexed)])
    again = CliRunner().invoke(cli, ["compare", str(indexed)])
    assert _kept(indexed) is not None and again.stdout == first.stdout
    assert "h-damaged: run.json is unreadable" in first.stderr and again.stderr == first.stderr
    assert _kept(indexed, "run") is None  # another --sort: computed afresh
    CliRunner().invoke(cli, ["compare", str(indexed), "--sort", "run"])
    assert _kept(indexed, "run") is not None and _kept(indexed) is None  # the last comparison's is kept


def test_kept_comparison_sees_a_live_run_die(indexed):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        make_run(indexed, "g-live", status="running", val_acc=(0.5,), info={"pid": proc.pid})
        time.sleep(0.02)

        def status():
            out = CliRunner().invoke(cli, ["compare", str(indexed), "--json"]).stdout
            return {r["run"]: r["status"] for r in json.loads(out)["runs"]}["g-live"]

        assert status() == "running" and _kept(indexed) is not None
    finally:
        proc.kill()
        proc.wait()
    assert _kept(indexed) is None and status() == "crashed"


def test_kept_comparison_needs_settled_files_and_the_same_hdr(tmp_path, monkeypatch):
    monkeypatch.setattr(runindex, "MIN_RUNS", 1)
    make_run(tmp_path, "r1")
    make_run(tmp_path, "r2", overrides={"training.seed": 2})
    CliRunner().invoke(cli, ["compare", str(tmp_path)])
    assert not (tmp_path / comparecache.NAME).exists()  # written just now: could change within a tick
    monkeypatch.setattr(runindex, "MARGIN_NS", 0)
    source = tmp_path / "hdr-source"
    source.mkdir()
    (source / "compare.py").write_text("# hdr as installed\n")
    monkeypatch.setattr(comparecache, "__file__", str(source / "comparecache.py"))
    CliRunner().invoke(cli, ["compare", str(tmp_path)])
    assert _kept(tmp_path) is not None
    (source / "compare.py").write_text("# hdr edited\n")
    assert _kept(tmp_path) is None  # another hdr may compare otherwise


def test_simple_table_is_tabulates_text():
    from tabulate import tabulate

    headers = ["id", "status", "日本"]
    for rows in ([], [["a", "", "x"]], [["bé", " padded ", "日本語"], ["", "c", ""]], [["e\u0301", "wide日", "z  "]]):
        assert runs.simple_table(headers, rows) == tabulate(rows, headers=headers, tablefmt="simple",
                                                           disable_numparse=True)


def test_one_number_format_everywhere():
    """Shares as percentages with two decimals, losses with four, parameters short (issue 23)."""
    from hdr.core import numbers

    assert numbers.percent(0.98754) == "98.75%" and numbers.pct(0.98754) == "98.75"
    assert numbers.points(0.0012) == "+0.12" and numbers.loss(0.041234) == "0.0412"
    assert numbers.param(0.017826497151386938) == "0.01783" and numbers.param(64) == "64"
    assert numbers.metric("val_accuracy", 0.5) == "50.00%" and numbers.metric("val_loss", 0.5) == "0.5000"
    assert numbers.percent(None) == "-"
