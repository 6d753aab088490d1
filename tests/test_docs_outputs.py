"""Every output the README and the docs show is what its command prints today: each is run again here
and compared token by token (the table borders and column widths, the store's folder and wall times
aside), so a shown result cannot drift from the code.

An output is shown in one of two ways: a plain code block whose first line is ``$ harness ...`` (the
command, then what it prints), or a ``python`` block whose next block is a plain one (the code, then
what it prints). Each runs in a fresh folder, so its default store ``results`` starts empty: what is
shown is what a reader sees on a fresh store."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from harness.cli.app import main

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHOWN_HOME = "/home/me"  # where the docs' outputs were run: their paths begin with it
BLOCK = re.compile(r"```(\w*)\n(.*?)```[ \t]*\n", flags=re.S)


def shown_outputs() -> list[tuple[str, str, str, str]]:
    """(page, kind, command or code, the output shown) for every output in the docs."""
    found = []
    for page in PAGES:
        blocks = [(m.group(1), m.group(2)) for m in BLOCK.finditer(page.read_text())]
        for i, (lang, body) in enumerate(blocks):
            if lang == "" and body.startswith("$ harness "):
                command, _, output = body.partition("\n")
                found.append((page.name, "command", command[2:], output))
            elif lang == "python" and i + 1 < len(blocks) and blocks[i + 1][0] == "":
                found.append((page.name, "python", body, blocks[i + 1][1]))
    return found


OUTPUTS = shown_outputs()
BOX = re.compile(r"[\u2500-\u257f]")  # rich's table borders
SECONDS = re.compile(r"^\d+(\.\d+)?s$")  # wall times


def tokens(text: str, home: str) -> list[str]:
    text = BOX.sub(" ", text.replace(home, SHOWN_HOME))
    return ["<seconds>" if SECONDS.match(t) else t for t in text.split()]


def test_the_docs_show_outputs():
    assert {kind for _, kind, _, _ in OUTPUTS} == {"command", "python"} and len(OUTPUTS) >= 3


@pytest.mark.parametrize(("page", "kind", "source", "shown"), OUTPUTS,
                         ids=[f"{p}: {s.splitlines()[0][:50]}" for p, _, s, _ in OUTPUTS])
def test_a_shown_output_is_what_its_command_prints(page, kind, source, shown, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COLUMNS", raising=False)  # piped: tables as wide as they need, as shown
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        if kind == "command":
            assert main(shlex.split(source)[1:]) == 0
        else:
            exec(compile(source, f"{page} (python block)", "exec"), {})
    assert tokens(printed.getvalue(), str(tmp_path)) == tokens(shown, str(tmp_path)), printed.getvalue()
