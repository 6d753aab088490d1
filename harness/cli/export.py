"""`harness export`: a cell's pruned network."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli.common import (
    StoreDir,
    user_errors,
)
from harness.cli.display import out
from harness.engine.export import export as export_cell
from harness.storage.store import Store


def export(
    cell: Annotated[str, typer.Argument(help="a finished cell: its folder name (results.csv's run), a unique "
                                             "beginning of it, or its folder")],
    format: Annotated[str, typer.Option("--format", help="torch or safetensors")] = "safetensors",
    out_dir: Annotated[Path | None, typer.Option("--out", help="folder to write [default: exported/CELL]")] = None,
    store: StoreDir = Path("results"),
) -> None:
    """Write a cell's pruned network (weights, mask, model.json naming its task and method); a network
    whose filters were removed is written compacted. Loads back with harness.engine.export.load_exported.

    Examples:

    \b
      harness cells --method lr-rewinding
      harness export mnist1d-lr-rewinding-r1-4f35 --out pruned
    """
    with user_errors():
        cell_folder = Store(store).cell_dir(cell)
        folder = out_dir or Path("exported") / cell_folder.name
        written = export_cell(cell_folder, folder, format)
    record = written.record
    compacted = " (compacted)" if written.compacted else ""
    out.print(f"{record.variant or record.method} on {record.task}, density {record.density:.4g}, seed {record.seed}"
              f"{compacted}: {folder}", highlight=False, markup=False)
