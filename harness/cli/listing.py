"""`harness list`: what is registered, and a store's variants."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from harness.catalog import KINDS, catalog
from harness.cli.common import (
    StoreDir,
    user_errors,
)
from harness.cli.display import out, show_table


def list_registered(
    words: Annotated[list[str] | None, typer.Argument(
        metavar="[tasks|methods|pruning|presets|variants]... [NAME|GLOB]...",
        help="what to list [all of them], and names or globs of entries to keep ('*rewind*')")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="print JSON instead of tables")] = False,
    store: StoreDir = Path("results"),
) -> None:
    """Tasks, retraining methods and recipes, pruning strategies, study presets, and a store's method
    variants, with their parameters.

    Examples:

    \b
      harness list
      harness list methods pruning --json
      harness list methods '*rewind*'
      harness list variants --store results
    """


    kinds = tuple(w for w in words or [] if w in KINDS)
    names = tuple(w for w in words or [] if w not in KINDS)
    with user_errors():
        entries = catalog(kinds or KINDS, store, names)
    if json_output:
        sys.stdout.write(json.dumps(entries, indent=2) + "\n")
        return
    if names and not any(entries.values()):
        out.print(f"nothing registered matches {' '.join(names)}", highlight=False, markup=False)
        return
    for kind, items in entries.items():
        for table in TABLES_OF[kind](items):
            if table.row_count:
                show_table(table)


def task_tables(items: list[dict[str, Any]]) -> list[Table]:
    table = Table(title="tasks")
    for col in ("name", "parameters", "T", "batch", "optimizer", "schedule S", "documented unpruned", "description"):
        table.add_column(col, no_wrap=col == "name")
    for t in items:
        table.add_row(t["name"], f"{t['parameters']:,}" if t["parameters"] is not None else t["unavailable"],
                      f"{t['T']:g}", str(t["batch_size"]), t["optimizer"], t["schedule"],
                      "" if t["documented_unpruned"] is None else f"{t['documented_unpruned']:g} ({t['metric']})",
                      t["description"])
    return [table]


def parameter_table(title: str, items: list[dict[str, Any]]) -> list[Table]:
    table = Table(title=title)
    for col in ("of", "parameter", "default", "range", "description"):
        table.add_column(col, no_wrap=col in ("of", "parameter"))
    for item in items:
        for p in item.get("parameters", []):
            table.add_row(item["name"], p["name"], f"{p['default']:g}", p["range"], p["description"])
    return [table] if table.row_count else []


def method_tables(items: list[dict[str, Any]]) -> list[Table]:
    methods = Table(title="retraining methods")
    for col in ("name", "runs", "t", "learning rate over the t epochs", "trains", "minimizes", "paper",
                "description"):
        methods.add_column(col, no_wrap=col == "name")
    recipes = Table(title="recipes")
    for col in ("name", "method", "pruning", "description"):
        recipes.add_column(col, no_wrap=col in ("name", "method"))
    for m in items:
        if m["kind"] == "method":
            methods.add_row(m["name"], m["runs"], m["t"], m["learning_rate"], m["trains"], m["minimizes"], m["paper"],
                            m["description"])
        else:
            recipes.add_row(m["name"], m["method"], m["pruning"], m["description"])
    return [methods, recipes, *parameter_table("parameters of methods (study key method_params)", items)]


def pruning_tables(items: list[dict[str, Any]]) -> list[Table]:
    table = Table(title="pruning strategies (--pruning NAME; L1 filter configurations also --structured)")
    for col in ("name", "removes", "target", "iterative", "gradual", "task", "description"):
        table.add_column(col, no_wrap=col == "name")
    for g in items:
        table.add_row(g["name"], g["removes"], g["target"], "yes" if g["iterative"] else "no",
                      "yes" if g["gradual"] else "no",
                      g["task"] or ("with calibration data" if g["calibrated"] else "any"), g["description"])
    return [table, *parameter_table("parameters of pruning strategies (--pruning-param, study key pruning_params)",
                                    items)]


def preset_tables(items: list[dict[str, Any]]) -> list[Table]:
    table = Table(title="study presets (harness sweep NAME)")
    for col in ("name", "task", "cells", "description"):
        table.add_column(col, no_wrap=col in ("name", "task"))
    for p in items:
        table.add_row(p["name"], p["task"], f"{p['cells']:,}", p["description"])
    return [table]


def variant_tables(items: list[dict[str, Any]]) -> list[Table]:
    if not items:
        return []
    table = Table(title="method variants of the store")
    for col in ("name", "method", "parameters", "t / T", "file"):
        table.add_column(col, no_wrap=col == "name")
    for v in items:
        params = ", ".join(f"{k}={x:g}" for k, x in v["params"].items()) or "the method's defaults"
        fraction = "" if v["retrain_fraction"] is None else f"{v['retrain_fraction']:.0%}"
        table.add_row(v["name"], v["method"], params, fraction, v["file"])
    return [table]


TABLES_OF = {"tasks": task_tables, "methods": method_tables, "pruning": pruning_tables, "presets": preset_tables,
             "variants": variant_tables}
