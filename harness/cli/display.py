"""Where the command line prints, and how its tables print without cutting a name."""

from __future__ import annotations

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

out = Console(soft_wrap=True)  # prose lines are not broken: a terminal wraps them, a pipe keeps them whole
err = Console(stderr=True, soft_wrap=True)
NATURAL_WIDTH = 100_000  # wider than any table: what "as wide as it needs" is measured against


def show_table(table: Table, console: Console = out) -> None:
    """A table in which no name, number or header is cut. In a terminal, text wraps at spaces only
    (a name column keeps each name on one line); where even that does not fit, each row is one plain
    line. Piped or redirected, the table is as wide as it needs."""
    for column in table.columns:
        texts = [str(column.header), *map(str, column.cells)]
        words = texts if column.no_wrap else [w for text in texts for w in text.split()]
        column.min_width = max(map(len, words), default=1)
        column.overflow = "fold"
    if not console.is_terminal:
        width = Measurement.get(console, console.options.update_width(NATURAL_WIDTH), table).maximum
        Console(file=console.file, width=width, highlight=False, color_system=None).print(table)
    elif sum(c.min_width + 3 for c in table.columns) + 1 <= console.width:
        console.print(table)
    else:
        if table.title:
            console.print(str(table.title), highlight=False, markup=False)
        headers = [str(c.header) for c in table.columns]
        for row in zip(*(c.cells for c in table.columns), strict=True):
            console.print("  ".join(f"{h}: {v}" if h else str(v) for h, v in zip(headers, map(str, row), strict=True)),
                          highlight=False, markup=False)
