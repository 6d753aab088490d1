"""Where the command line prints, and how its tables print without cutting a name."""

from __future__ import annotations

import copy
import os
import textwrap

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

out = Console(soft_wrap=True)  # prose lines are not broken: a terminal wraps them, a pipe keeps them whole
err = Console(stderr=True, soft_wrap=True)
NATURAL_WIDTH = 100_000  # wider than any table: what "as wide as it needs" is measured against


def show_table(table: Table, console: Console = out) -> None:
    """A table in which no name, number or header is cut, within the width it has: a terminal's, or
    ``$COLUMNS`` when piped (piped without it, as wide as it needs, so a pipe keeps whole rows). Text
    wraps at spaces only (a name column keeps each name on one line). Where the table does not fit, it
    drops its borders; where even that does not fit, each row becomes a block of ``header  value`` lines."""
    for column in table.columns:
        texts = [str(column.header), *map(str, column.cells)]
        words = texts if column.no_wrap else [w for text in texts for w in text.split()]
        column.min_width = max(map(len, words), default=1)
        column.overflow = "fold"
    width = width_of(console)
    target = console if console.is_terminal else Console(
        file=console.file, width=width or NATURAL_WIDTH, highlight=False, color_system=None)
    if width is None:
        width = Measurement.get(target, target.options.update_width(NATURAL_WIDTH), table).maximum
        Console(file=console.file, width=width, highlight=False, color_system=None).print(table)
        return
    title, table.title = table.title, None  # a line of its own, wrapped to the width, not to the table's
    if title:
        target.print(textwrap.fill(str(title), width, break_long_words=False, break_on_hyphens=False),
                     highlight=False, markup=False)
    for layout, overhead in ((table, 3 * len(table.columns) + 1), (borderless(table), len(table.columns) - 1)):
        if (widths := fitted_widths(table, width - overhead)) is not None:
            for column, w in zip(layout.columns, widths, strict=True):
                column.width = w
            target.print(layout)
            return
    for block in row_blocks(table):
        target.print(block)


def say_wrapped(text: str, console: Console = out) -> None:
    """A line of prose broken at spaces to the width there is (a terminal's or ``$COLUMNS``), else whole."""
    width = width_of(console)
    if width:
        text = textwrap.fill(text, width, subsequent_indent="  ", break_long_words=False, break_on_hyphens=False)
    console.print(text, highlight=False, markup=False, soft_wrap=True)


def fitted_widths(table: Table, available: int) -> list[int] | None:
    """Column widths that fit ``available`` characters of text: each column as wide as its widest cell,
    the widest narrowed first, none below its longest word; None when even that does not fit."""
    widths = [max(len(line) for text in [str(c.header), *map(str, c.cells)] for line in text.splitlines() or [""])
              for c in table.columns]
    floors = [c.min_width or 1 for c in table.columns]
    if sum(floors) > available:
        return None
    while sum(widths) > available:
        i = max((j for j in range(len(widths)) if widths[j] > floors[j]), key=lambda j: widths[j])
        widths[i] -= 1
    return widths


def width_of(console: Console) -> int | None:
    """The width output has: a terminal's, or when piped what ``$COLUMNS`` asks for (None: unbounded)."""
    if console.is_terminal:
        return console.width
    value = os.environ.get("COLUMNS", "")
    return int(value) if value.isdigit() and int(value) > 0 else None


def borderless(table: Table) -> Table:
    """The same table without its box or outer padding: one space between columns instead of three
    characters."""
    narrow = copy.copy(table)
    narrow.box, narrow.padding, narrow.show_edge, narrow.pad_edge, narrow.collapse_padding = None, (0, 1), False, \
        False, True
    return narrow


def row_blocks(table: Table) -> list[Table]:
    """Each row as a block of ``header  value`` lines, a blank line between: always fits."""
    blocks = []
    headers = [str(c.header) for c in table.columns]
    for row in zip(*(c.cells for c in table.columns), strict=True):
        block = Table(box=None, show_header=False, padding=(0, 1), show_edge=False)
        block.add_column(justify="left", no_wrap=True)
        block.add_column(justify="left", overflow="fold")
        for header, value in zip(headers, map(str, row), strict=True):
            block.add_row(header, value)
        block.add_row("", "")
        blocks.append(block)
    return blocks
