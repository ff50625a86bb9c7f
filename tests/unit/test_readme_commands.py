"""README's commands: every flag a `leadrelay` command takes is told, and every flag told is one it takes."""

from __future__ import annotations

import re

import pytest

from app import cli
from tests.support import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()
FLAG = r"(?<![\w-])--[a-z][a-z-]*"
COMMANDS = ("dev", "web", "worker", "sandbox", "stats", "retry", "check-config", "bench")


def flags_of(command: str, capsys) -> set[str]:
    with pytest.raises(SystemExit) as stopped:
        cli.main([command, "--help"])
    assert stopped.value.code == 0
    return set(re.findall(FLAG, capsys.readouterr().out)) - {"--help"}


def commands_row(command: str) -> str:
    return re.search(rf"^\| `leadrelay {re.escape(command)}` \|(.*)$", README, re.M).group(1)


# The sections that tell a command at length, beyond its row of the Commands table.
SECTIONS = {"dev": "## First run", "bench": "## Benchmark"}


def flags_told_of(command: str) -> set[str]:
    """Flags README names beside the command: in its row of the Commands table, as `leadrelay <command> --flag`, or
    in the section that tells it at length."""
    told = set(re.findall(FLAG, commands_row(command)))
    told |= set(re.findall(rf"leadrelay {re.escape(command)} [^`\n]*?(--[a-z][a-z-]*)", README))
    if command in SECTIONS:
        section = README.split(SECTIONS[command], 1)[1].split("\n## ", 1)[0]
        told |= set(re.findall(r"`(--[a-z][a-z-]*)", section))
    return told


def test_the_commands_checked_here_are_every_command_leadrelay_takes(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])

    listed = re.findall(r"^ {4}([a-z][a-z-]*)", capsys.readouterr().out, re.M)  # wrapped help is indented further

    assert sorted(listed) == sorted(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_tells_every_flag_of_each_command(command, capsys):
    taken = flags_of(command, capsys)

    untold = sorted(taken - flags_told_of(command))  # beside this command: another's row telling it says nothing here

    assert not untold, f"say in README.md what `leadrelay {command}` does with {untold}"


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_tells_only_flags_each_command_takes(command, capsys):
    taken = flags_of(command, capsys)

    assert flags_told_of(command) <= taken
