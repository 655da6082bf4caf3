"""Configs written to hurt: alias bombs, devices and pipes, huge seeds, loose types, infinities,
duplicated keys. Each gets one line on stderr, exit 2, nothing created, and comes back fast."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hdr.engine import config
from tests.conftest import CONFIGS, REPO

VALID = "dataset: {name: mnist}\nmodel: {type: slp}\noptimizer: {name: sgd}\n"


def one_line_exit_2(r, *words):
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hdr: error: "), r.stderr[:500]
    assert len(lines[0]) < 400, len(lines[0])  # a bounded line, whatever the input held
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def bomb(levels: int, fanout: int, where: str) -> str:
    lines = [f"l0: &l0 [{', '.join(['lol'] * fanout)}]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * fanout)}]")
    return "\n".join(lines) + "\n" + VALID + f"training: {{epochs: *l{levels - 1}}}\n"


@pytest.mark.parametrize("levels,fanout", [(4, 10), (9, 9)])
def test_alias_bombs_are_refused_before_validation(cli_run, tmp_path, levels, fanout):
    """(4, 10): a few hundred bytes expanding to 10,000 values, whose value the error used to
    print whole; (9, 9): a billion laughs, which took minutes and gigabytes."""
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb(levels, fanout, "training.epochs"))
    assert path.stat().st_size < 1000
    r = cli_run("train", path, "--runs-dir", tmp_path / "runs")
    if levels == 9:
        one_line_exit_2(r, "aliases")
    else:
        one_line_exit_2(r, "training.epochs", "characters)")  # small enough to expand; the value is cut
    assert not (tmp_path / "runs").exists()


def test_device_and_pipe_are_not_configs(tmp_path):
    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)
    for path in ("/dev/zero", fifo):
        # A subprocess with a timeout: reading a FIFO used to block forever, /dev/zero until MemoryError.
        p = subprocess.run([sys.executable, "-m", "hdr", "train", str(path), "--runs-dir", str(tmp_path / "runs")],
                           capture_output=True, text=True, timeout=60, cwd=REPO)
        assert p.returncode == 2 and p.stderr.strip().splitlines() == [
            f"hdr: error: {path} is not a regular file (a device or pipe?); give a YAML config file"]
    assert not (tmp_path / "runs").exists()


def test_a_config_too_large_to_be_one(cli_run, tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text(VALID + "# " + "x" * (config.MAX_CONFIG_BYTES + 10) + "\n")
    one_line_exit_2(cli_run("train", path), "too large to be a config")


@pytest.mark.parametrize("override,words", [
    ("training.seed=100000000000000000000000", ("training.seed", "less than 4294967296")),
    ("training.epochs=true", ("training.epochs", "valid integer")),
    ("optimizer.learning_rate='0.01'", ("optimizer.learning_rate", "valid number")),
    ("optimizer.learning_rate=.inf", ("optimizer.learning_rate", "finite")),
    ("optimizer.learning_rate=.nan", ("optimizer.learning_rate", "finite")),
    ("model.dropout=[0.1]", ("model.dropout has 1 rates but model.hidden has 2",)),
])
def test_loose_types_and_impossible_values_are_refused(cli_run, tmp_path, override, words):
    r = cli_run("train", CONFIGS / "mlp_adam.yaml", override, "--runs-dir", tmp_path / "runs")
    one_line_exit_2(r, *words)
    assert not (tmp_path / "runs").exists()


def test_a_key_given_twice_is_refused(cli_run, tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text(VALID + "dataset: {name: usps}\n")
    one_line_exit_2(cli_run("train", path), "'dataset' is given twice", "line 4")


def test_floats_without_a_dot_are_floats():
    """YAML 1.1 reads 1e-3 as a string; strict types would then refuse it. hdr reads it as 0.001."""
    cfg = config.validate(config.parse_yaml(VALID.replace("{name: sgd}", "{name: sgd, learning_rate: 1e-3}"), "t"))
    assert cfg.optimizer.learning_rate == 0.001
    assert config.parse_override("optimizer.learning_rate=3E-4")[1] == 0.0003


def test_run_folders_of_earlier_versions_still_load(tmp_path):
    """hdr once wrote leaky_relu_slope into SLP configs; such run folders must still evaluate and
    resume, while a new config with that key is a mistake."""
    old = tmp_path / "config.yaml"
    old.write_text("dataset: {name: mnist}\nmodel: {type: slp, initializer: glorot_uniform, leaky_relu_slope: 0.3}\n"
                   "optimizer: {name: sgd}\n")
    assert config.load_run_config(old).model.type == "slp"
    with pytest.raises(config.UsageError, match="model.leaky_relu_slope: unknown key"):
        config.load(old)
