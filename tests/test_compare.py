"""hdr compare over fabricated run folders: differing keys, mixed and failed runs, seed groups,
fairness notes, outputs, and that it never imports TensorFlow."""

from __future__ import annotations

import copy
import statistics
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from hdr.analysis import compare
from hdr.cli.main import cli
from hdr.runs.rundir import write_history
from hdr.runs.listing import Run, flatten, load_run

BASE = {
    "dataset": {"name": "mnist", "validation_split": 0.2},
    "model": {"type": "mlp", "initializer": "glorot_uniform", "hidden": [512, 512], "activation": "relu",
              "dropout": 0.0},
    "optimizer": {"name": "adam", "learning_rate": 0.001, "beta_1": 0.9, "epsilon": 1e-7},
    "training": {"epochs": 3, "batch_size": 128, "seed": 1},
}
RUNTIME = {"keras": "3.15.1", "backend": "tensorflow", "tensorflow": "2.21.0", "device": "cpu"}
CHECKSUMS = {"train-images-idx3-ubyte.gz": "aaa", "t10k-images-idx3-ubyte.gz": "bbb"}


def set_key(cfg: dict, dotted: str, value) -> None:
    node = cfg
    *parents, last = dotted.split(".")
    for p in parents:
        node = node[p]
    node[last] = value


def make_run(root: Path, name: str, *, overrides: dict | None = None, val_acc=(0.90, 0.95, 0.97),
             test_acc: float | None = 0.96, status: str = "completed", config: dict | None = None,
             runtime: dict | None = None, checksums: dict | None = None, info: dict | None = None,
             reason: str | None = None) -> Path:
    """A run folder as hdr train writes it; val_acc None entries mean no validation data."""
    cfg = copy.deepcopy(config or BASE)
    for k, v in (overrides or {}).items():
        set_key(cfg, k, v)
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    history = [{"epoch": i + 1, "loss": 1.0 / (i + 1), "accuracy": 0.8 + 0.01 * i,
                "val_loss": None if v is None else 1.0 - v, "val_accuracy": v, "learning_rate": 0.001,
                "seconds": 2.0} for i, v in enumerate(val_acc)]
    write_history(folder / "history.csv", history)
    run_info = {"id": name, "status": status, "config_name": "test", "pid": None, "seed": cfg["training"]["seed"],
                "epochs_completed": len(history), "dataset": cfg["dataset"]["name"],
                "epochs_planned": cfg["training"]["epochs"], "runtime": runtime or RUNTIME,
                "data_checksums": checksums or CHECKSUMS}
    if reason:
        run_info["reason"] = reason
    run_info.update(info or {})
    (folder / "run.json").write_text(json.dumps(run_info))
    if status == "completed":
        vals = [v for v in val_acc if v is not None]
        metrics = {"test_accuracy": test_acc, "test_loss": 0.1, "params": 669706,
                   "train_seconds": 2.0 * len(history), "epochs": len(history)}
        if vals:
            metrics["best_val_accuracy"] = max(vals)
        (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def run_cli(*args):
    result = CliRunner().invoke(cli, list(args))
    return result


def test_flatten_dotted_keys_and_lists():
    flat = flatten({"a": {"b": 1, "c": [1, 2]}, "conv": [{"filters": 32}, {"filters": 64}]})
    assert flat == {"a.b": 1, "a.c": (1, 2), "conv.0.filters": 32, "conv.1.filters": 64}


def test_differing_keys_found_and_variant_keys_hidden():
    configs = [flatten(c) for c in (
        {"optimizer": {"name": "adam", "learning_rate": 0.001, "beta_1": 0.9}, "training": {"seed": 1}},
        {"optimizer": {"name": "sgd", "learning_rate": 0.01, "momentum": 0.0}, "training": {"seed": 1}},
        {"optimizer": {"name": "adam", "learning_rate": 0.001, "beta_1": 0.5}, "training": {"seed": 1}},
    )]
    # beta_1 takes two values among the runs that have it: shown; momentum exists only for
    # sgd with one value: it follows from optimizer.name, so it is not a column.
    assert compare.differing_keys(configs) == ["optimizer.name", "optimizer.learning_rate", "optimizer.beta_1"]


def test_compare_table_shows_only_differing_keys(tmp_path):
    make_run(tmp_path, "r1", overrides={"optimizer.name": "adam"}, test_acc=0.97)
    make_run(tmp_path, "r2", overrides={"optimizer.name": "adagrad"}, test_acc=0.93)
    make_run(tmp_path, "r3", overrides={"optimizer.name": "adadelta"}, test_acc=0.91)
    result = run_cli("compare", str(tmp_path / "r1"), str(tmp_path / "r2"), str(tmp_path / "r3"))
    assert result.exit_code == 0, result.output
    header = result.output.splitlines()[0]
    assert "optimizer.name" in header
    assert "learning_rate" not in header and "training.seed" not in header and "hidden" not in header
    assert "97.00" in result.output and "adagrad" in result.output
    assert "fairness" not in result.output  # same versions, data, batch size, epochs


def test_mixed_failed_interrupted_and_no_validation_runs(tmp_path):
    make_run(tmp_path, "a-long", overrides={"model.hidden": [256]}, val_acc=(0.9, 0.95, 0.97))
    make_run(tmp_path, "b-failed", overrides={"model.hidden": [128]}, val_acc=(0.5,), status="failed",
             reason="training diverged: the loss became NaN")
    make_run(tmp_path, "c-interrupted", overrides={"model.hidden": [64]}, val_acc=(0.8, 0.85),
             status="interrupted")
    make_run(tmp_path, "d-noval", overrides={"model.hidden": [32], "dataset.validation_split": None},
             val_acc=(None, None, None), test_acc=0.9)
    out = tmp_path / "report"
    result = run_cli("compare", str(tmp_path / "a-long"), str(tmp_path / "b-failed"),
                     str(tmp_path / "c-interrupted"), str(tmp_path / "d-noval"), "--out", str(out))
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines() if line[:2] in ("a-", "b-", "c-", "d-")}
    assert set(lines) == {"a-long", "b-failed", "c-interrupted", "d-noval"}  # marked, not dropped
    assert "failed" in lines["b-failed"] and "1/3" in lines["b-failed"]
    assert "interrupted" in lines["c-interrupted"] and "2/3" in lines["c-interrupted"]
    assert "[256]" in lines["a-long"]
    assert "not completed" in result.output and "diverged" in result.output
    rows = {r["run"]: r for r in csv.DictReader((out / "compare.csv").open())}
    assert rows["d-noval"]["best_val_accuracy"] == "" and rows["d-noval"]["test_accuracy"] == "0.9"
    assert rows["b-failed"]["test_accuracy"] == "" and rows["b-failed"]["status"] == "failed"
    assert float(rows["a-long"]["best_val_accuracy"]) == 0.97 and rows["a-long"]["best_epoch"] == "3"
    assert rows["c-interrupted"]["model.hidden"] == "[64]"
    md = (out / "compare.md").read_text()
    assert "| a-long" in md and "not completed" in md
    for png in ("val_accuracy.png", "val_loss.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_glob_skips_non_runs_but_missing_path_is_error(tmp_path):
    make_run(tmp_path, "r1")
    make_run(tmp_path, "r2", overrides={"training.seed": 2})
    (tmp_path / "sweeps").mkdir()
    (tmp_path / "notes.txt").write_text("hello")
    paths = sorted(str(p) for p in tmp_path.iterdir())
    result = CliRunner().invoke(cli, ["compare", *paths])
    assert result.exit_code == 0, result.output
    assert "skipping" in result.stderr and "notes.txt" in result.stderr and "sweeps" in result.stderr
    assert "r1" in result.stdout and "r2" in result.stdout
    assert "2 seeds of one setting: test accuracy 96.00 ± 0.00 %" in result.stdout
    result = CliRunner().invoke(cli, ["compare", str(tmp_path / "r1"), str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert result.stderr.startswith("hdr: error: not found:") and "nope" in result.stderr
    result = CliRunner().invoke(cli, ["compare", str(tmp_path / "notes.txt")])
    assert result.exit_code == 2 and "no run folders" in result.stderr


def test_sort_and_unknown_sort_key(tmp_path):
    make_run(tmp_path, "low", overrides={"optimizer.learning_rate": 0.1}, test_acc=0.80)
    make_run(tmp_path, "high", overrides={"optimizer.learning_rate": 0.01}, test_acc=0.99)
    make_run(tmp_path, "mid", overrides={"optimizer.learning_rate": 0.001}, test_acc=0.90)
    result = run_cli("compare", str(tmp_path), "--sort", "test_accuracy")
    assert result.exit_code == 0, result.output
    order = [line.split()[0] for line in result.output.splitlines()[2:5]]
    assert order == ["high", "mid", "low"]  # accuracies sort best first
    result = run_cli("compare", str(tmp_path), "--sort", "optimizer.learning_rate")
    assert [line.split()[0] for line in result.output.splitlines()[2:5]] == ["mid", "high", "low"]
    result = CliRunner().invoke(cli, ["compare", str(tmp_path), "--sort", "accuracy"])
    assert result.exit_code == 2
    assert "unknown column" in result.stderr and "test_accuracy" in result.stderr
    assert "optimizer.learning_rate" in result.stderr


def test_fairness_line_names_what_else_differs(tmp_path):
    make_run(tmp_path, "r1", overrides={"optimizer.name": "adam"})
    make_run(tmp_path, "r2", overrides={"optimizer.name": "sgd", "training.batch_size": 64},
             runtime={**RUNTIME, "keras": "3.3.3"}, checksums={**CHECKSUMS, "t10k-images-idx3-ubyte.gz": "ccc"})
    result = run_cli("compare", str(tmp_path))
    assert result.exit_code == 0, result.output
    fair = [line for line in result.output.splitlines() if line.startswith("fairness:")]
    assert len(fair) == 1
    assert "training.batch_size (128, 64)" in fair[0]
    assert "keras (3.15.1, 3.3.3)" in fair[0]
    assert "mnist dataset checksum" in fair[0]
    assert "optimizer.name" not in fair[0]


def test_single_differing_key_is_the_subject_not_a_confounder(tmp_path):
    make_run(tmp_path, "r1", overrides={"training.batch_size": 64})
    make_run(tmp_path, "r2", overrides={"training.batch_size": 256})
    result = run_cli("compare", str(tmp_path))
    assert "fairness" not in result.output


def test_seed_groups_mean_std_and_noise_flag(tmp_path):
    # adam and rmsprop overlap within seed noise; sgd is clearly worse (validation and test alike).
    accs = {"adam": (0.980, 0.982, 0.978), "rmsprop": (0.979, 0.983, 0.977), "sgd": (0.950, 0.951, 0.949)}
    for opt, values in accs.items():
        for seed, acc in enumerate(values, start=1):
            make_run(tmp_path, f"{opt}-{seed}", overrides={"optimizer.name": opt, "training.seed": seed},
                     val_acc=(0.9, acc), test_acc=acc)
    result = run_cli("compare", str(tmp_path), "--sort", "test_accuracy", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "seeds" in lines[0] and "training.seed" not in lines[0]
    rows = [line for line in lines[2:5]]
    assert rows[0].startswith("adam") and "98.00 ± 0.20" in rows[0] and "best" in rows[0]
    assert rows[1].startswith("rmsprop") and "~noise" in rows[1]
    assert rows[2].startswith("sgd") and "-3.00" in rows[2] and "~noise" not in rows[2]
    assert "within seed noise of the best (optimizer.name=adam): optimizer.name=rmsprop" in result.output
    assert "Welch" in result.output
    md = (tmp_path / "out" / "compare.md").read_text()
    assert "mean ± std over seeds" in md and "| adam-1" in md


def test_within_noise_rule():
    g = compare.Stat  # mean, sample std, distinct seeds
    assert compare.within_noise(g(0.98, 0.002, 3), g(0.979, 0.003, 3)) is True
    assert compare.within_noise(g(0.98, 0.001, 3), g(0.95, 0.001, 3)) is False
    # Same gap, more seeds: the noise estimate shrinks and the gap becomes real.
    assert compare.within_noise(g(0.980, 0.002, 3), g(0.976, 0.002, 3)) is True
    assert compare.within_noise(g(0.980, 0.002, 20), g(0.976, 0.002, 20)) is False
    assert compare.within_noise(g(0.98, 0.0, 1), g(0.97, 0.0, 3)) is None


def test_sweep_and_cv_folders_expand_to_their_runs(tmp_path):
    runs = tmp_path / "runs"
    # As hdr sweep records them: the sweep and the point (its grid keys and values) in run.json.
    make_run(runs, "p1", overrides={"optimizer.name": "adam"},
             info={"sweep_id": "S1", "sweep_point": "optimizer.name=adam,training.batch_size=128"})
    make_run(runs, "p2", overrides={"optimizer.name": "sgd", "training.batch_size": 64},
             info={"sweep_id": "S1", "sweep_point": "optimizer.name=sgd,training.batch_size=64"})
    make_run(runs, "other", overrides={"optimizer.name": "nadam"})
    sweep = runs / "sweeps" / "S1"
    sweep.mkdir(parents=True)
    (sweep / "sweep.json").write_text(json.dumps({
        "id": "S1", "grid": {"optimizer.name": ["adam", "sgd"], "training.batch_size": [128, 64]}, "seeds": [1],
        "points": [{"label": "a", "run": "../../p1"}, {"label": "b", "run": "../../p2"},
                   {"label": "c", "run": None}]}))
    result = CliRunner().invoke(cli, ["compare", str(sweep)])
    assert result.exit_code == 0, result.output
    assert "p1" in result.stdout and "p2" in result.stdout and "other" not in result.stdout
    assert "fairness" not in result.stdout  # batch size was swept on purpose
    cv = runs / "cv" / "C1"
    for k in (1, 2):
        make_run(cv, f"fold{k}", info={"cv_id": "C1", "fold": k}, val_acc=(0.9, 0.9 + k / 100))
    result = CliRunner().invoke(cli, ["compare", str(cv)])
    assert result.exit_code == 0, result.output
    assert "fold" in result.stdout.splitlines()[0] and "fold1" in result.stdout


def test_compare_does_not_import_tensorflow_and_is_fast(tmp_path):
    for i in range(200):
        make_run(tmp_path, f"run{i:03d}", overrides={"optimizer.learning_rate": 0.0001 * (i + 1)})
    code = ("import sys; from hdr.cli.main import cli\n"
            "try:\n    cli(['compare', sys.argv[1], '--sort', 'test_accuracy', '--top', '0'], prog_name='hdr')\n"
            "except SystemExit as e:\n    assert not e.code, e.code\n"
            "bad = [m for m in ('tensorflow', 'keras', 'jax', 'torch', 'pydantic', 'matplotlib') if m in sys.modules]\n"
            "assert not bad, bad\nprint('IMPORTS-OK')\n")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr
    assert "IMPORTS-OK" in proc.stdout and proc.stdout.count("run1") >= 100
    # Target is under a second; the bound leaves room for a busy shared machine, while still
    # failing if TensorFlow (several seconds to import) crept in.
    assert elapsed < 3.0, elapsed


def test_runs_of_unrelated_configs_are_labelled_by_folder(tmp_path):
    """A label listing many differing keys would be wider than the plot: such runs go by name."""
    a = make_run(tmp_path, "20261124-061952-usps_cnn-c2f9", overrides={"dataset.name": "usps"})
    b = make_run(tmp_path, "20261124-062217-mlp_sgd-cf99", overrides={
        "optimizer.name": "sgd", "optimizer.learning_rate": 0.01, "training.batch_size": 64,
        "model.hidden": [64, 64], "model.dropout": 0.3})
    c = make_run(tmp_path, "20261124-062300-mlp_lr-0001", overrides={"optimizer.learning_rate": 0.01})
    labels = {r.run.id: r.label for r in compare.analyse([load_run(f) for f in (a, b, c)]).rows}
    assert labels[b.name] == b.name                      # seven differing keys: too long
    assert all(len(v) <= compare.MAX_LABEL for v in labels.values())
    two = compare.analyse([load_run(a), load_run(c)])
    assert [r.label for r in two.rows] == ["dataset.name=usps, optimizer.learning_rate=0.001",
                                                  "dataset.name=mnist, optimizer.learning_rate=0.01"]


# ------------------------------------------------------------------------------ the analysis, in memory

def mem_run(name: str, *, seed: int = 1, val=(0.90, 0.97), test_acc: float | None = 0.96, status="completed",
            **overrides) -> Run:
    """A Run built in memory: analyse() needs no file. Overrides use __ for dots."""
    config = flatten(copy.deepcopy(BASE))
    config.update({k.replace("__", "."): tuple(v) if isinstance(v, list) else v for k, v in overrides.items()})
    config["training.seed"] = seed
    history = tuple({"epoch": i + 1, "val_accuracy": v, "val_loss": 1 - v, "seconds": 1.0} for i, v in enumerate(val))
    return Run(Path("runs") / name, {"status": status, "epochs_planned": len(val)}, config,
               {"test_accuracy": test_acc, "test_loss": 0.1}, history, status)


def test_analyse_is_pure_and_ranks_by_validation_not_test():
    # "high-test" has the best test accuracy but the worse validation accuracy: it is not the best.
    runs = [mem_run("high-test", optimizer__name="sgd", val=(0.90, 0.95), test_acc=0.99),
            mem_run("high-val", optimizer__name="adam", val=(0.90, 0.97), test_acc=0.95)]
    fields = ("folder", "info", "config", "metrics", "history", "status")
    before = [copy.deepcopy({f: getattr(r, f) for f in fields}) for r in runs]
    result = compare.analyse(runs)
    assert [{f: getattr(r, f) for f in fields} for r in runs] == before  # nothing written into its inputs
    best = [row.run.id for row in result.rows if row.best]
    assert best == ["high-val"] and result.ranked_by == "best_val_accuracy"
    assert {row.run.id: row.delta for row in result.rows}["high-test"] == pytest.approx(-0.02)
    # Seed groups likewise: the setting with the best test accuracy but worse validation is not best.
    runs = [mem_run(f"sgd-{s}", seed=s, optimizer__name="sgd", val=(0.9, 0.950 + s / 1000), test_acc=0.99)
            for s in (1, 2, 3)]
    runs += [mem_run(f"adam-{s}", seed=s, optimizer__name="adam", val=(0.9, 0.970 + s / 1000), test_acc=0.95)
             for s in (1, 2, 3)]
    groups = compare.analyse(runs).groups
    assert [g.label for g in groups if g.best] == ["optimizer.name=adam"]
    assert next(g for g in groups if not g.best).delta == pytest.approx(-0.02)


def test_compare_marks_best_by_validation_accuracy(tmp_path):
    for s in (1, 2):
        make_run(tmp_path, f"sgd-{s}", overrides={"optimizer.name": "sgd", "training.seed": s},
                 val_acc=(0.9, 0.95 + s / 1000), test_acc=0.99)
        make_run(tmp_path, f"adam-{s}", overrides={"optimizer.name": "adam", "training.seed": s},
                 val_acc=(0.9, 0.97 + s / 1000), test_acc=0.95)
    result = run_cli("compare", str(tmp_path))
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.output.splitlines() if line.startswith(("adam ", "sgd "))}
    assert "best" in rows["adam"] and "best" not in rows["sgd"] and "-2.00" in rows["sgd"]
    assert "validation accuracy at each run's best epoch" in " ".join(result.output.split())


def test_repeats_of_one_seed_are_one_sample():
    # adam ran seed 1 twice (identical config and seed) and seed 2 once: 3 runs, 2 distinct seeds.
    runs = [mem_run("adam-1a", seed=1, optimizer__name="adam", val=(0.9, 0.970)),
            mem_run("adam-1b", seed=1, optimizer__name="adam", val=(0.9, 0.972)),
            mem_run("adam-2", seed=2, optimizer__name="adam", val=(0.9, 0.980)),
            mem_run("sgd-1", seed=1, optimizer__name="sgd", val=(0.9, 0.950)),
            mem_run("sgd-2", seed=2, optimizer__name="sgd", val=(0.9, 0.952))]
    result = compare.analyse(runs)
    adam = next(g for g in result.groups if g.values["optimizer.name"] == "adam")
    assert len(adam.runs) == 3 and adam.seeds == 2
    stat = adam.stats["best_val_accuracy"]
    assert stat.n == 2  # Welch sees two samples, not three
    assert stat.mean == pytest.approx((0.971 + 0.980) / 2)  # seed 1's repeats averaged first
    assert stat.std == pytest.approx(statistics.stdev([0.971, 0.980]))
    out = compare.text(result)
    assert "2 (3 runs)" in out
    assert "3 runs, 2 distinct seeds" in " ".join(out.split())
    # Two identical runs alone are one setting with one seed, not "2 seeds".
    one = compare.text(compare.analyse(runs[:2]))
    assert "2 runs, 1 distinct seed of one setting" in one and "2 seeds" not in one


def test_repeated_seed_is_not_counted_as_seeds_in_the_cli(tmp_path):
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        make_run(tmp_path, name, overrides={"training.seed": seed})
    result = run_cli("compare", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "3 runs, 2 distinct seeds of one setting" in result.output and "3 seeds" not in result.output


CNN = {**BASE, "model": {"type": "cnn", "initializer": "he_uniform", "activation": "relu",
                         "conv": [{"filters": 32, "kernel": 3, "pool": 2}, {"filters": 64, "kernel": 3, "pool": 2}],
                         "dense": [100], "dropout": 0.0}}


def test_list_valued_keys_differ_and_groups_keep_run_ids(tmp_path):
    make_run(tmp_path, "base-s1", config=CNN)
    make_run(tmp_path, "base-s2", config=CNN, overrides={"training.seed": 2})
    make_run(tmp_path, "dense-s1", config=CNN, overrides={"model.dense": [256, 64]})
    make_run(tmp_path, "dense-s2", config=CNN, overrides={"model.dense": [256, 64], "training.seed": 2})
    three = copy.deepcopy(CNN)
    three["model"]["conv"] = [{"filters": 16, "kernel": 3, "pool": 2}, {"filters": 64, "kernel": 3, "pool": 2},
                              {"filters": 64, "kernel": 3, "pool": 0}]
    make_run(tmp_path, "conv-s1", config=three)
    make_run(tmp_path, "conv-s2", config=three, overrides={"training.seed": 2})
    result = run_cli("compare", str(tmp_path), "--wide")
    assert result.exit_code == 0, result.output
    tables = result.output.split("\n\n")
    header = " ".join(tables[0].splitlines()[0].split())
    assert "model.dense" in header and "model.conv.0.filters" in header
    assert "model.conv.2.filters" in header  # the third block only one setting has is a difference
    assert "[256, 64]" in tables[0] and "16" in tables[0]
    for name in ("base-s1", "base-s2", "dense-s1", "dense-s2", "conv-s1", "conv-s2"):
        assert name in tables[1]  # every run stays reachable by id under the grouped table
    # Three settings, not one: the models are not pooled as seeds of one setting.
    assert len(tables[0].splitlines()) == 2 + 3


def test_table_fits_120_columns_unless_wide(tmp_path):
    long = "20261125-101010-a-config-with-a-long-name-ab12"
    make_run(tmp_path, long + "1", overrides={"optimizer.learning_rate": 0.01, "training.batch_size": 64,
                                              "model.hidden": [512, 256, 128], "model.activation": "gelu"})
    make_run(tmp_path, long + "2", overrides={"optimizer.learning_rate": 0.1, "optimizer.epsilon": 1e-8})
    result = run_cli("compare", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert max(map(len, result.output.splitlines())) <= 120, result.output
    assert "--wide" in result.output
    wide = run_cli("compare", str(tmp_path), "--wide")
    assert max(map(len, wide.output.splitlines())) > 120
    assert all(h in wide.output for h in ("params", "train s", "optimizer.epsilon", "model.activation"))


def test_compare_json_for_scripts(tmp_path):
    make_run(tmp_path, "r1", overrides={"model.hidden": [64]}, val_acc=(0.9, 0.95))
    make_run(tmp_path, "r2", overrides={"model.hidden": [128]}, val_acc=(0.9, 0.97))
    result = CliRunner().invoke(cli, ["compare", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ranked_by"] == "best_val_accuracy" and data["keys"] == ["model.hidden"]
    runs = {r["run"]: r for r in data["runs"]}
    assert runs["r2"]["best"] and not runs["r1"]["best"] and runs["r1"]["config"] == {"model.hidden": [64]}
    assert runs["r1"]["best_val_accuracy"] == 0.95 and runs["r1"]["test_accuracy"] == 0.96
    assert data["groups"] is None


def test_damaged_and_escaped_run_folders_in_compare(tmp_path):
    make_run(tmp_path, "good")
    make_run(tmp_path, "evil\x1b[2Jname", overrides={"training.seed": 2})
    bad = make_run(tmp_path, "bad-history")
    (bad / "history.csv").write_text("abc,def\n1,2\n")
    result = CliRunner().invoke(cli, ["compare", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "evil\\x1b[2Jname" in result.stdout
    assert "bad-history" not in result.stdout
    assert "skipping" in result.stderr and "bad-history" in result.stderr and "history.csv" in result.stderr


def test_swept_keys_come_from_run_json_not_sweep_json():
    """A batch size swept on purpose is no confounder; the runs say so themselves (sweep_keys, or
    their point's label), with no sweep.json read."""
    def swept(name, batch, **info):
        r = mem_run(name, optimizer__name=name, training__batch_size=batch)
        return Run(r.folder, {**r.info, "sweep_id": "S1", **info}, r.config, r.metrics, r.history, r.status)

    keys = "optimizer.name,training.batch_size"
    runs = [swept("adam", 128, sweep_keys=keys), swept("sgd", 64, sweep_keys=keys)]
    assert not any(n.startswith("fairness") for n in compare.analyse(runs).notes)
    runs = [swept("adam", 128, sweep_point="optimizer.name=adam,training.batch_size=128,model.hidden=[64,64]"),
            swept("sgd", 64, sweep_point="optimizer.name=sgd,training.batch_size=64,model.hidden=[64,64]")]
    assert compare.swept_keys(runs) == {"optimizer.name", "training.batch_size", "model.hidden"}
    assert not any(n.startswith("fairness") for n in compare.analyse(runs).notes)
    # Only the optimizer was swept: the batch size difference is flagged.
    runs = [swept("adam", 128, sweep_keys="optimizer.name"), swept("sgd", 64, sweep_keys="optimizer.name")]
    assert any("training.batch_size (128, 64)" in n for n in compare.analyse(runs).notes)


def test_past_top_rows_the_best_are_shown_and_said(tmp_path):
    """Over many runs the text view shows the best --top of each table (the first, with --sort), says
    so, and --top 0, --json show them all."""
    for i in range(6):
        for seed in (1, 2):
            make_run(tmp_path, f"lr{i}-s{seed}", overrides={"optimizer.learning_rate": 0.001 * (i + 1),
                                                            "training.seed": seed},
                     val_acc=(0.5, 0.90 + 0.01 * i + 0.001 * seed), test_acc=0.99 - 0.01 * i)
    runs = lambda out: [ln.split()[0] for ln in out.splitlines() if ln.startswith("lr")]  # noqa: E731
    top = run_cli("compare", str(tmp_path), "--top", "3")
    assert top.exit_code == 0, top.output
    assert runs(top.output) == ["lr5-s2", "lr5-s1", "lr4-s2"]  # the best by validation accuracy
    assert "the best 3 of 6 settings and the best 3 of 12 runs (by best validation accuracy)" in top.output
    settings = [ln.split()[0] for ln in top.output.split("\n\n")[0].splitlines()[2:] if ln[:1].isdigit()]
    assert settings == ["0.006", "0.005", "0.004"]
    by_test = run_cli("compare", str(tmp_path), "--top", "2", "--sort", "test_accuracy")
    assert runs(by_test.output) == ["lr0-s1", "lr0-s2"] and "the first 2 of 12 runs (by --sort test_accuracy)" \
        in by_test.output.replace("\n", " ")
    every = run_cli("compare", str(tmp_path), "--top", "0")
    assert len(runs(every.output)) == 12 and "shown:" not in every.output
    assert len(json.loads(run_cli("compare", str(tmp_path), "--top", "1", "--json").output)["runs"]) == 12
    assert "shown:" not in run_cli("compare", str(tmp_path)).output  # 12 runs: under the default 50


# --- the fast paths agree with what they stand in for ---------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(["1", "a", "a,b", "'", ""]),
                     st.sampled_from([0.0, -0.0, 1.0, 0.1, float("nan"), float("inf")]), st.floats(allow_nan=True))
_values = st.one_of(_scalars, st.lists(_scalars, max_size=3).map(tuple), st.lists(_scalars, max_size=3),
                    st.lists(st.lists(_scalars, max_size=2).map(tuple), max_size=2).map(tuple))


@settings(max_examples=400, deadline=None)
@given(st.lists(_values, min_size=1, max_size=8))
def test_differ_and_codes_are_json_equality(values):
    """Two config values are one setting exactly when their JSON texts are equal."""
    texts = [compare._key(v) for v in values]
    assert compare._differ(values) == (len(set(texts)) > 1)
    codes = compare._codes(values)
    for i in range(len(values)):
        for j in range(len(values)):
            assert (codes[i] == codes[j]) == (texts[i] == texts[j]), (values[i], values[j])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(st.sampled_from("ab.-± 日\n"), min_size=1, max_size=6), min_size=1, max_size=4),
       st.data())
def test_compare_tables_are_tabulates_text(headers, data):
    """hdr compare lays its text tables out itself (tabulate takes a tenth of a second to import);
    the text is tabulate's: right and left columns, missing cells, headers broken over lines."""
    from tabulate import tabulate

    from hdr.runs.listing import simple_table

    headers = [h.strip("\n") or "h" for h in headers]
    cell = st.one_of(st.none(), st.text(st.sampled_from("ab.-± 9日"), max_size=5))
    rows = data.draw(st.lists(st.lists(cell, min_size=len(headers), max_size=len(headers)), max_size=4))
    align = data.draw(st.lists(st.sampled_from(["left", "right"]), min_size=len(headers), max_size=len(headers)))
    expected = tabulate(rows, headers=headers, tablefmt="simple", missingval="-", disable_numparse=True,
                        colalign=align)
    if compare._plain([h.replace("\n", "") for h in headers], rows):  # what compare hands to simple_table
        assert simple_table(headers, rows, align, missingval="-") == expected
    cols = [compare.Column(h, [r[i] for r in rows], a) for i, (h, a) in enumerate(zip(headers, align))]
    assert compare._tabulate(cols, "simple") == expected


# ------------------------------------------------------------------------------ the kept result (.hdr-compare)

def _views(result, out: Path | None) -> dict:
    """Every view of a result: the text (default, --top 2, --wide), markdown, CSV, JSON and, given
    out, the files of --out, curves included."""
    views = {"text": compare.text(result), "top2": compare.text(result, top=2), "wide": compare.text(result, wide=True),
             "md": compare.markdown(result), "csv": compare.csv_text(result), "json": compare.json_text(result)}
    if out is not None:  # the curves take a second or two: drawn for one sorting only
        views.update({p.name: p.read_bytes() for p in compare.write(result, out)})
    return views


@pytest.mark.parametrize("sort_key", [None, "optimizer.learning_rate", "status"])
@pytest.mark.parametrize("grouped", [True, False])
def test_kept_result_renders_as_the_computed_one(tmp_path, sort_key, grouped):
    """A result written to .hdr-compare and read back gives every view byte for byte: list values
    (tuples), keys only some runs have, repeated seeds, failed and unvalidated runs, NaN."""
    from hdr.analysis import comparecache
    from hdr.runs import listing as runs

    root = tmp_path / "runs"
    seeds = (1, 2) if grouped else (1,)
    for lr in (0.001, 0.01):
        for s in seeds:
            make_run(root, f"adam-{lr}-{s}", overrides={"optimizer.learning_rate": lr, "training.seed": s,
                                                        "model.hidden": [64, 32]}, val_acc=(0.9, 0.9 + lr + s / 100))
    sgd = copy.deepcopy(BASE)
    sgd["optimizer"] = {"name": "sgd", "learning_rate": 0.1, "momentum": 0.9}
    make_run(root, "sgd-failed", config=sgd, status="failed", val_acc=(0.5,), reason="training diverged\nat 2")
    make_run(root, "sgd-noval", config=sgd, overrides={"optimizer.learning_rate": 0.2}, val_acc=(None, None),
             test_acc=float("nan"))
    if grouped:
        make_run(root, "adam-repeat", overrides={"optimizer.learning_rate": 0.01, "training.seed": 1,
                                                 "model.hidden": [64, 32]}, val_acc=(0.95,))
    (root / "not-a-run").mkdir()
    paths = [str(root)]
    found = runs.find(paths, lambda msg: None)
    read = runs.load_found(paths, found, lambda msg: None)
    result = compare.analyse(read, sort_key)
    assert result.grouped == grouped
    doc = json.loads(json.dumps(comparecache._encode(result, read, found)))
    back = comparecache._decode(doc, found)
    out = sort_key is None
    assert _views(back, tmp_path / "kept" if out else None) == _views(result, tmp_path / "computed" if out else None)
