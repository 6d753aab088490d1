"""`harness cells`: the finished cells of a store, with the names `harness export` takes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from harness import api
from harness.cli.common import StoreDir, fmt, user_errors
from harness.cli.display import out, show_table


def cells(
    task: Annotated[str | None, typer.Option(help="a task's name or a glob (cifar10-*)")] = None,
    method: Annotated[str | None, typer.Option(help="a method's or variant's name, or a glob (*rewind*)")] = None,
    density: Annotated[float | None, typer.Option(help="the target density (0.2)")] = None,
    seed: Annotated[int | None, typer.Option(min=0, help="one seed")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="print the records as JSON lines")] = False,
    store: StoreDir = Path("results"),
) -> None:
    """List the store's finished cells (filters combine): each with the folder name `harness export`
    takes, for example `harness cells --method lr-rewinding --density 0.2`.

    Examples:

    \b
      harness cells --method '*rewind*' --density 0.2
      harness cells --task mnist1d --seed 0 --json
    """
    with user_errors():
        found = api.cells(store, task=task, method=method, density=density, seed=seed)
    if json_output:
        sys.stdout.writelines(json.dumps(r.to_json()) + "\n" for r in found)
        return
    if not found:
        out.print(f"no finished cell in {Path(store)} matches; `harness cells --store {store}` lists them all",
                  highlight=False, markup=False, soft_wrap=True)
        return
    table = Table(title=f"finished cells of {Path(store)} ({len(found)})")
    for col in ("cell (for harness export)", "method", "density", "t", "seed", "test"):
        table.add_column(col, justify="left" if col in ("cell (for harness export)", "method") else "right",
                         no_wrap=col == "cell (for harness export)")
    for r in found:
        target = r.target_density if r.target_density is not None else r.density
        table.add_row(r.run, r.variant or r.method, f"{target:.4g}" if r.level is None else f"k={r.level}",
                      f"{r.retraining_epochs:g}", str(r.seed), fmt(r.test_acc))
    show_table(table)
