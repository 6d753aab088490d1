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
    """The rows whose cost is known: those that counted FLOPs of their retraining, and those with no
    retraining (t = 0 costs nothing). A result stored before costs were counted has none, whatever its t."""
    if "retraining_flops" not in df.columns:
        return df.iloc[0:0]
    return df[(pd.to_numeric(df["retraining_flops"], errors="coerce").fillna(0) > 0) | (df["retraining_epochs"] == 0)]


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


@dataclass(frozen=True)
class Versus:
    """One method against the baseline at equal cost, the seed the unit (``harness.analysis.sign_test``)."""

    method: str
    pairs: int  # (density, seed, cost) cells paired with the baseline's, cost > 0
    pair_wins: int  # of them, those where the method scores better
    seeds: int
    seed_wins: int  # seeds whose median paired difference favours the method
    median_difference: float  # over all pairs, in the metric's units, positive: the method is better
    p: float  # one-sided exact sign test over seeds: the method beats the baseline on more than half of them
    p_holm: float  # Holm-adjusted over the methods compared


def paired_differences(df: pd.DataFrame, axis: Axis, baseline: str) -> pd.DataFrame:
    """Each method's cells paired with the baseline's at the same density, seed and cost (cost > 0: at no cost
    every method is the pruned network itself); ``difference`` is higher-is-better."""
    frame = recorded(df)
    frame = frame.assign(cost=costs(frame, axis)).dropna(subset=["cost"])
    frame = frame[frame["cost"] > 0].assign(score=lambda f: signs(f) * f["test_acc"])
    keys = ["task", "pruning", "schedule", "density", "seed", "cost"]
    base = frame[frame["method"] == baseline][[*keys, "score"]].rename(columns={"score": "baseline"})
    others = frame[frame["method"] != baseline]
    paired = others.merge(base, on=keys, how="inner")
    return paired.assign(difference=paired["score"] - paired["baseline"])


def against_baseline(df: pd.DataFrame, axis: Axis, baseline: str = "fine-tuning") -> list[Versus]:
    """Which methods beat ``baseline`` at equal cost on ``axis``, over all the groups given (pool them to ask
    across pruning strategies and densities): per seed, the median of the method's paired differences; the
    seeds are independent replications, so the sign test over them is valid however a seed's cells are
    correlated (``sign_test``)."""
    from harness.analysis.sign_test import p_greater

    paired = paired_differences(df, axis, baseline)
    found = []
    for method, rows in paired.groupby("method", sort=True):
        per_seed = rows.groupby("seed")["difference"].median()
        wins = int((per_seed > 0).sum())
        found.append([method, len(rows), int((rows["difference"] > 0).sum()), len(per_seed), wins,
                      float(rows["difference"].median()), float(p_greater(wins, len(per_seed)))])
    order = sorted(range(len(found)), key=lambda i: found[i][-1])
    adjusted, running = [1.0] * len(found), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(found) - rank) * found[i][-1]))
        adjusted[i] = running
    return [Versus(*row, p_holm=adjusted[i]) for i, row in enumerate(found)]
