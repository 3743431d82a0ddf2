"""Docs that match the behaviour: every setting is in the README and in config/nongyun.toml,
every CLI command is in the README, and CI runs the README's test command."""

from __future__ import annotations

import re
import tomllib

from service.cli import main
from service.settings import SETTINGS
from tests.conftest import CONFIG, REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_documented_in_the_readme_with_its_variable() -> None:
    missing = [s.key for s in SETTINGS if f"`{s.key}`" not in README or f"`{s.env}`" not in README]
    assert missing == []


def test_every_setting_has_its_default_in_the_toml_file() -> None:
    doc = tomllib.loads((CONFIG / "nongyun.toml").read_text(encoding="utf-8"))
    for s in SETTINGS:
        section, name = s.key.split(".")
        assert doc[section][name] == s.default, s.key


def test_every_command_is_in_the_readme() -> None:
    missing = [name for name in main.commands if f"`nongyun {name}`" not in README]
    assert missing == []


def _two_commands() -> list[str]:
    section = README.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section)


def test_ci_runs_the_readme_test_command_exactly_as_written() -> None:
    demo, tests = _two_commands()
    assert demo == "pip install -e . && nongyun demo"
    assert tests == "pip install -c constraints.txt -e '.[test]' && scripts/test"
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert tests in ci  # a line of its own, not a variant of it
    assert not any("npm ci" in line for line in ci if not line.lstrip().startswith("#"))
