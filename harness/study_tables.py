"""A study's results at a glance: per method and density, the retraining time chosen on validation."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from harness.selection import best_validated


def sparsity_label(row: dict[str, Any]) -> str:
    return f"k={row['level']}" if row.get("structured") else f"{row['density']:.3g}"


def best_by_method(rows: list[dict[str, Any]]) -> list[tuple[str, list[list[str]]]]:
    """Tables, one per (task, pruning, schedule): rows are methods, columns densities (or levels),
    each entry the median test score at the t with the best median validation score."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["base.task"], r.get("structured") or r["pruning"], r["schedule"])].append(r)
    tables = []
    for (task, pruning, schedule), members in sorted(groups.items()):
        by_cell: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for r in members:
            by_cell[(r["method"], sparsity_label(r))].append(r)
        order = sorted({sparsity_label(r): (-r["density"], r.get("level", 0)) for r in members}.items(),
                       key=lambda kv: kv[1])
        columns = [label for label, _ in order]
        header = ["method", *columns]
        body = []
        for method in sorted({r["method"] for r in members}):
            line = [method]
            for col in columns:
                cell = by_cell.get((method, col))
                if not cell:
                    line.append("")
                    continue
                best = best_validated(cell)
                line.append(f"{best['test_median']:.2f} (t={best['retrain_epochs']:g})")
            body.append(line)
        metric = members[0]["metric"]
        unpruned = sorted({r["base_test"] for r in members})
        title = (f"{task}, {pruning}, {schedule}: median test {metric} at the t chosen on validation "
                 f"(unpruned {min(unpruned):.2f}-{max(unpruned):.2f})")
        tables.append((title, [header, *body]))
    return tables
