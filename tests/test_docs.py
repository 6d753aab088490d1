"""Every `harness` command line shown in the README and the docs parses: its command exists and every
option and argument it gives is one the command takes (the docs cannot drift from the CLI)."""

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


COMMANDS = shown_commands()


def test_the_docs_show_every_command():
    shown = {shlex.split(line)[1] for _, line in COMMANDS}
    assert shown >= {"run", "sweep", "leaderboard", "tune", "ui", "export", "list"}


@pytest.mark.parametrize(("page", "line"), COMMANDS, ids=[f"{p}: {line[:60]}" for p, line in COMMANDS])
def test_a_command_shown_in_the_docs_parses(page, line):
    group = typer.main.get_command(app)
    name, *args = shlex.split(line)[1:]
    command = group.get_command(None, name)
    assert command is not None, f"{page}: no command {name!r}"
    command.make_context(name, args)  # raises on an unknown option, a missing or extra argument
