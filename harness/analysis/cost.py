"""Retraining methods ranked at equal cost: on one axis (epochs, tokens, trainable parameters, peak memory,
FLOPs), which method reaches the best score within each budget.

For each comparable group (task, pruning, schedule, density) and each budget B among the costs its cells
reached, every method with a cell costing at most B is ranked by its best median test score over those
cells (medians over seeds; the cost of a cell is its median over seeds too). A method that needs more than B
is not in that budget's ranking.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from harness.analysis.results_table import CELL
from harness.analysis.statistics import signs
from harness.core.errors import HarnessError


@dataclass(frozen=True)
class Axis:
    name: str
    column: str
    label: str  # on plots and tables
    fallback: str | None = None  # the column standing in where the first is blank (samples for non-LM tasks)


AXES = {
    "epochs": Axis("epochs", "epochs_trained", "retraining epochs"),
    "tokens": Axis("tokens", "retraining_tokens", "retraining tokens (samples where not a language model)",
                   "retraining_samples"),
    "params": Axis("params", "trainable_parameters", "trainable parameters"),
    "memory": Axis("memory", "retraining_peak_bytes", "peak memory of a step (bytes)"),
    "flops": Axis("flops", "retraining_flops", "retraining FLOPs"),
}


def axis_of(name: str) -> Axis:
    if name not in AXES:
        raise HarnessError(f"unknown cost axis {name!r}; valid: {', '.join(AXES)}")
    return AXES[name]


def costs(df: pd.DataFrame, axis: Axis) -> pd.Series:
    if axis.column not in df.columns:
        return pd.Series(float("nan"), index=df.index)
    values = pd.to_numeric(df[axis.column], errors="coerce")
    if axis.fallback is not None and axis.fallback in df.columns:
        values = values.fillna(pd.to_numeric(df[axis.fallback], errors="coerce"))
    return values


def recorded(df: pd.DataFrame) -> pd.DataFrame:
    """The rows whose cost was recorded: results stored before costs were have no trainable parameters."""
    if "trainable_parameters" not in df.columns:
        return df.iloc[0:0]
    return df[pd.to_numeric(df["trainable_parameters"], errors="coerce").fillna(0) > 0]


def cell_costs(df: pd.DataFrame, axis: Axis) -> pd.DataFrame:
    """Per cell: the median cost over seeds and the test score's median, min and max."""
    frame = recorded(df)
    frame = frame.assign(cost=costs(frame, axis)).dropna(subset=["cost"])
    if frame.empty:
        return pd.DataFrame(columns=[*CELL, "cost", "test_median", "test_min", "test_max", "metric"])
    out = frame.groupby(CELL, sort=True).agg(cost=("cost", "median"), test_median=("test_acc", "median"),
                                            test_min=("test_acc", "min"), test_max=("test_acc", "max"),
                                            metric=("metric", "first"), seeds=("seed", "nunique"))
    return out.reset_index()


def at_equal_cost(df: pd.DataFrame, axis: Axis) -> pd.DataFrame:
    """Rows (group, density, budget, rank, method, best score, its cost, its retraining time)."""
    cells = cell_costs(df, axis)
    rows = []
    for (task, pruning, schedule, density), group in cells.groupby(["task", "pruning", "schedule", "density"]):
        group = group.assign(_better=signs(group) * group["test_median"])
        for budget in sorted(group["cost"].unique()):
            within = group[group["cost"] <= budget]
            best = within.sort_values(["_better", "cost"], ascending=[False, True]).groupby("method").head(1)
            for rank, (_, row) in enumerate(best.sort_values(["_better", "cost"], ascending=[False, True]).iterrows(),
                                            start=1):
                rows.append({"task": task, "pruning": pruning, "schedule": schedule, "density": density,
                             "budget": float(budget), "rank": rank, "method": row["method"],
                             "test_median": row["test_median"], "test_min": row["test_min"],
                             "test_max": row["test_max"], "cost": row["cost"],
                             "retraining_epochs": row["retraining_epochs"], "metric": row["metric"]})
    return pd.DataFrame(rows)
