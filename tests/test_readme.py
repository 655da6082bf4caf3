"""The README stays true: its test command is the one CI runs, and it maps every config."""

from __future__ import annotations

import os
import re
from pathlib import Path

from tests.conftest import CONFIGS, REAL_DATA, REPO, realdata


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    setup = text.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", setup)


def test_exactly_two_setup_commands():
    cmds = readme_commands()
    assert len(cmds) == 2
    assert "hdr train configs/cnn_adam.yaml" in cmds[0]
    assert "pytest" in cmds[1]


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    assert readme_commands()[1] in ci.splitlines()


def test_every_config_is_in_the_readme_table():
    text = (REPO / "README.md").read_text()
    for path in CONFIGS.glob("*.yaml"):
        assert f"`{path.name}`" in text, path.name


def tour_commands() -> str:
    text = (REPO / "README.md").read_text()
    tour = text.split("## A first hour", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", tour, re.S)[0]


@realdata
def test_the_first_hour_runs_as_written(tmp_path):
    """The README's tour, pasted into a shell in a fresh copy of the project, with ../shared/datasets
    beside it and `source .venv/bin/activate` putting this environment's hdr on PATH."""
    import shutil
    import subprocess
    import sys

    repo = tmp_path / "hdr"
    tracked = subprocess.run(["git", "ls-files", "configs", "examples"], cwd=REPO, capture_output=True,
                             text=True, check=True).stdout.split()
    for name in tracked:
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, repo / name)
    (repo / ".venv" / "bin").mkdir(parents=True)
    (repo / ".venv" / "bin" / "activate").write_text(f'export PATH="{Path(sys.executable).parent}:$PATH"\n')
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "datasets").symlink_to(REAL_DATA)
    env = {k: v for k, v in os.environ.items() if k not in ("HDR_DATA_DIR", "HDR_NO_VERIFY")}
    env["HDR_CACHE_DIR"] = str(tmp_path / "cache")
    p = subprocess.run(["bash", "-euo", "pipefail", "-c", tour_commands()], cwd=repo, env=env,
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "examples/seven.png: 7" in p.stdout  # the example digit is read right
    runs = sorted((repo / "runs" / "tour").glob("*-mlp_adam-*"))
    assert len(runs) == 2 and (runs[0] / "eval" / "confusion_matrix.png").is_file()
    assert (repo / "runs" / "tour-compare").is_dir() and (repo / "runs" / "tour-usps" / "usps-samples.png").is_file()
    assert len(list((repo / "runs" / "tour" / "sweeps").iterdir())) == 1
    assert len(list((repo / "runs" / "tour" / "cv").iterdir())) == 1
    assert "Traceback" not in p.stderr
