"""The README stays true: its test command is the one CI runs, and it maps every config."""

from __future__ import annotations

import re

from tests.conftest import CONFIGS, REPO


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
