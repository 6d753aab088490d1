"""Every `harness` command line shown in the README, the docs and the commands' own --help examples
parses: its command exists and every option and argument it gives is one the command takes (the docs
cannot drift from the CLI). Shell completion is typer's, and completes the commands."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer

from harness.cli.app import app

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def shown_commands() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for block in re.findall(r"```bash\n(.*?)```", page.read_text(), flags=re.S):
            for line in block.splitlines():
                line = line.split("  #")[0].strip()
                if line.startswith("harness "):
                    found.append((page.name, line))
    return found


def help_examples() -> list[tuple[str, str]]:
    group = typer.main.get_command(app)
    found = []
    for name in group.list_commands(None):
        text = group.get_command(None, name).help or ""
        found += [(f"harness {name} --help", line.strip()) for line in text.splitlines()
                  if line.strip().startswith("harness ")]
    return found


COMMANDS = shown_commands() + help_examples()


def test_the_docs_show_every_command():
    shown = {shlex.split(line)[1] for _, line in COMMANDS}
    assert shown >= {"run", "sweep", "leaderboard", "tune", "ui", "export", "list", "cells"}


def test_every_command_shows_examples_in_its_help_that_fit_80_columns():
    group = typer.main.get_command(app)
    with_examples = {page.split()[1] for page, _ in help_examples()}
    assert with_examples == set(group.list_commands(None))
    assert all(len(line) + 6 <= 80 for _, line in help_examples())  # as --help indents them


def test_shell_completion_completes_the_commands(tmp_path):
    import os
    import subprocess
    import sys

    # from a bash, as a user runs it: typer finds the shell among the process's ancestors, which a test run
    # in the background (CI's) may not have ("; true" keeps bash from replacing itself with the command)
    script = subprocess.run(["bash", "-c", f"'{sys.executable}' -m harness --show-completion; true"],
                            capture_output=True, text=True, timeout=120, env={**os.environ, "SHELL": "/bin/bash"})
    assert script.returncode == 0 and "_HARNESS_COMPLETE=complete_bash" in script.stdout, script.stderr
    completed = subprocess.run([sys.executable, "-m", "harness"], capture_output=True, text=True, timeout=120,
                               env={**os.environ, "_HARNESS_COMPLETE": "complete_bash", "COMP_WORDS": "harness ru",
                                    "COMP_CWORD": "1"})
    assert completed.stdout.split() == ["run"], (completed.stdout, completed.stderr)


@pytest.mark.parametrize(("page", "line"), COMMANDS, ids=[f"{p}: {line[:60]}" for p, line in COMMANDS])
def test_a_command_shown_in_the_docs_parses(page, line):
    group = typer.main.get_command(app)
    name, *args = shlex.split(line)[1:]
    command = group.get_command(None, name)
    assert command is not None, f"{page}: no command {name!r}"
    command.make_context(name, args)  # raises on an unknown option, a missing or extra argument
