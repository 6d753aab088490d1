"""A study's results at a glance: per method and density, the retraining time chosen on validation."""

from __future__ import annotations

from harness.analysis import results_table, statistics
from harness.storage.record import CellRecord


def best_by_method(rows: list[CellRecord]) -> list[tuple[str, list[list[str]]]]:
    """Tables, one per (task, pruning, schedule): rows are methods, columns densities, each entry
    the median test score at the t with the best median validation score."""

    if not rows:
        return []
    df = results_table.from_records(rows)
    best = statistics.best_validated(df)
    base = statistics.unpruned(df)
    tables = []
    for (task, pruning, schedule), group in best.groupby(["task", "pruning", "schedule"]):
        densities = sorted(group["density"].unique(), reverse=True)
        header = ["method", *(f"density {d:.3g}" for d in densities)]
        body = []
        for method, own in group.groupby("method"):
            at = {r["density"]: f"{r['test_median']:.2f} (t={r['retraining_epochs']:g})" for _, r in own.iterrows()}
            body.append([method, *(at.get(d, "") for d in densities)])
        metric = df.loc[df["task"] == task, "metric"].iloc[0]
        unpruned = f" (unpruned {base[task]:.2f})" if task in base.index else ""
        tables.append((f"{task}, {pruning}, {schedule}: median test {metric} at the t chosen on validation"
                       f"{unpruned}", [header, *body]))
    return tables
