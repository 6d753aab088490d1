"""What a newcomer reads at 80 (and 120) columns: every table of `run`, `sweep`, `tune`, `list` and
`cells` fits the width with every column named, and the leaderboard's verdict lines are broken at
spaces to fit. Piped output takes its width from $COLUMNS, as a terminal would give it."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console
from typer.testing import CliRunner

from harness.cli import cells, display, listing, run, sweep, tune
from harness.cli.app import app
from tests.conftest import QUICK

cli = CliRunner()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("widths")
    study = root / "study.yaml"
    study.write_text(f"task: mnist1d\nmethods: [fine-tuning, lr-rewinding, weight-rewinding]\n"
                     f"retrain_epochs: [1.5, 3]\ndensities: [0.5, 0.2]\nseeds: 2\nepochs_scale: {QUICK}\n")
    result = cli.invoke(app, ["sweep", str(study), "--store", str(root), "--no-tracking"])
    assert result.exit_code == 0, result.output
    return root


@pytest.fixture
def tables(monkeypatch):
    """Every table a command shows, as the real show_table renders it piped at $COLUMNS."""
    shown: list[tuple[list[str], str]] = []

    def record(table, console=display.out):
        headers = [str(c.header) for c in table.columns]
        buffer = io.StringIO()
        display.show_table(table, Console(file=buffer))
        shown.append((headers, buffer.getvalue()))

    for module in (cells, listing, run, sweep, tune):
        monkeypatch.setattr(module, "show_table", record)
    return shown


COMMANDS = {
    "run": ["run", "lr-rewinding", "mnist1d", "--density", "0.5", "-t", "1.5", "-t", "3", "--seed", "0", "--seed",
            "1", "--epochs-scale", str(QUICK), "--no-tracking"],
    "sweep": ["sweep", "{study}", "--no-tracking"],
    "tune": ["tune", "fine-tuning", "mnist1d", "--density", "0.5", "--trials", "2", "--epochs-scale", str(QUICK),
             "--seed", "0", "--no-tracking"],
    "list": ["list"],
    "cells": ["cells"],
}


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("command", COMMANDS)
def test_every_table_fits_the_width_and_names_every_column(command, width, store, tables, monkeypatch):
    monkeypatch.setenv("COLUMNS", str(width))
    args = [a.format(study=store / "study.yaml") for a in COMMANDS[command]]
    result = cli.invoke(app, [*args, "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert tables, f"{command} showed no table"
    for headers, text in tables:
        assert all(h.strip() for h in headers), f"{command}: a column without a header: {headers}"
        wide = [line for line in text.splitlines() if len(line) > width]
        assert wide == [], f"{command} at {width} columns:\n" + "\n".join(wide)
        for header in headers:  # every header and cell is there, whole (it may wrap at spaces)
            assert all(word in text for word in header.split()), (header, text)


@pytest.mark.parametrize("width", [80, 120])
def test_the_leaderboards_verdict_lines_fit_the_width(width, store, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", str(width))
    result = cli.invoke(app, ["leaderboard", "--store", str(store), "--out", str(tmp_path / "site"),
                              "--bootstrap", "0"])
    assert result.exit_code == 0, result.output
    zone = [line for line in result.stdout.splitlines() if line.startswith("safe zone, ")]
    assert zone, result.stdout
    lines = result.stdout.splitlines()
    start = lines.index(zone[0])
    verdicts = [line for line in lines[start:] if line.startswith(("safe zone, ", "  "))]
    assert all(len(line) <= width for line in verdicts), "\n".join(verdicts)


@pytest.mark.parametrize("width", [80, 120])
def test_progress_lines_keep_their_unit_and_both_times_at_the_width(width):
    """A step bar, as `run`, `sweep` and `tune` draw theirs (harness.cli.common.bar_columns), with a
    description and a status too long for the line: they give way; the count, its unit and the labelled
    times stay whole."""
    from rich import progress as bars

    from harness.cli.common import bar_columns

    console = Console(file=io.StringIO(), width=width, color_system=None)
    bar = bars.Progress(*bar_columns("{task.fields[count]}", len("2400/2400 steps"), console), console=console)
    task = bar.add_task("lr-rewinding round 1 density 0.107 t=12.5", total=2400, count="1200/2400 steps",
                        status="epoch 12.5 val 97.25 (a status that goes on and on)")
    bar.update(task, completed=1200)
    console.print(bar.make_tasks_table(bar.tasks))
    [line] = console.file.getvalue().splitlines()
    assert len(line) <= width, line
    assert "1200/2400 steps" in line and re.search(r"elapsed \d+:\d\d, left (\d+:\d\d|\?)", line), line
    assert "…" in line if width == 80 else True  # the description or status gave way, not the times
