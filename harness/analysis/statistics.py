"""The paper's statistics on a results table (``harness.analysis.results_table``): medians over seeds,
best-validated retraining times, Pareto frontiers, the compression reachable without losing accuracy and
performance profiles (the rewinding safe zone is ``harness.analysis.safe_zone``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.analysis.results_table import CELL, CURVE, GROUP, task_of_label
from harness.core.metrics import metric_of

# -- medians over seeds -----------------------------------------------------------------------


@dataclass(frozen=True)
class Spread:
    """How one score varies over seeds: the figures every table reports."""

    median: float
    min: float
    max: float

    def describe(self, digits: int = 2) -> str:
        return f"median {self.median:.{digits}f}, min {self.min:.{digits}f}, max {self.max:.{digits}f}"


def spread(values: Iterable[float]) -> Spread:
    v = [float(x) for x in values]
    return Spread(float(np.median(v)), min(v), max(v))


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Median, min and max of test and validation scores over seeds, per cell."""
    g = df.groupby(CELL, sort=True)
    out = g.agg(test_median=("test_acc", "median"), test_min=("test_acc", "min"), test_max=("test_acc", "max"),
                val_median=("val_acc", "median"), val_min=("val_acc", "min"), val_max=("val_acc", "max"),
                seeds=("seed", "nunique"), fraction=("fraction", "first"), compression=("compression", "first"),
                target_density=("target_density", "first"), source=("source", "first"),
                metric=("metric", "first"))
    return out.reset_index()


def signs(frame: pd.DataFrame) -> pd.Series:
    """Per row, +1 where its metric is higher-is-better and -1 where lower is (``harness.core.metrics``):
    ``signs(frame) * score`` is higher-is-better for every metric."""
    return frame["metric"].map(lambda name: metric_of(str(name)).sign).astype(float)


def best_validated(df: pd.DataFrame) -> pd.DataFrame:
    """Per (task, pruning, schedule, method, density): the retraining time with the best median
    validation score (ties: the shorter, cheaper one), reported with its test score."""
    s = summarize(df)
    s["_worse"] = -signs(s) * s["val_median"]
    s = s.sort_values([*CURVE, "_worse", "retraining_epochs"])
    return s.groupby(CURVE, sort=True).head(1).drop(columns="_worse").sort_values(CURVE).reset_index(drop=True)


def unpruned(df: pd.DataFrame) -> pd.Series:
    """The unpruned network's median test score per task (over seeds)."""
    if "unpruned_test_acc" not in df.columns or df["unpruned_test_acc"].isna().all():
        return pd.Series(dtype=float)
    per_seed = df.dropna(subset=["unpruned_test_acc"]).groupby(["task", "seed"])["unpruned_test_acc"].first()
    return per_seed.groupby("task").median()


def unpruned_bases(df: pd.DataFrame) -> list[tuple[str, float, float]]:
    """(registered task, epochs_scale, median unpruned test score) of each task of the table, as
    ``harness.engine.undertrained`` checks them (a task label is the task's name, then its schedule)."""
    out = []
    for label, score in unpruned(df).items():
        rows = df[df["task"] == label]
        scale = rows["epochs_scale"].dropna() if "epochs_scale" in rows else pd.Series(dtype=float)
        out.append((task_of_label(str(label)), float(scale.iloc[0]) if len(scale) else 1.0, float(score)))
    return out


# -- Pareto frontiers ---------------------------------------------------------------------------


def pareto_frontier(points: pd.DataFrame, x: str = "compression", y: str = "test_median") -> pd.DataFrame:
    """The points no other point beats on both ``x`` and ``y`` (higher ``x`` is better; ``y`` is better
    in its metric's direction)."""
    oriented = points.assign(_y=signs(points) * points[y] if "metric" in points else points[y])
    ordered = oriented.sort_values([x, "_y"], ascending=[False, False])
    keep, best = [], -np.inf
    for index, row in ordered.iterrows():
        if row["_y"] > best:
            keep.append(index)
            best = row["_y"]
    return points.loc[keep].sort_values(x).reset_index(drop=True)


def frontiers(df: pd.DataFrame) -> dict[tuple[str, str, str, str], pd.DataFrame]:
    """Accuracy vs compression frontiers of best-validated points: per method, and ``"all"`` methods."""
    best = best_validated(df)
    out = {}
    for (task, pruning, schedule), group in best.groupby(GROUP):
        out[(task, pruning, schedule, "all")] = pareto_frontier(group)
        for method, own in group.groupby("method"):
            out[(task, pruning, schedule, method)] = pareto_frontier(own)
    return out


# -- compression without losing accuracy ----------------------------------------------------------


def compression_at_drop(df: pd.DataFrame, drop: float) -> pd.DataFrame:
    """Per task (and pruning, schedule): the highest compression at which some method's best-validated
    median test score is within ``drop`` points of the unpruned network's (drop 0: no accuracy drop)."""
    base = unpruned(df)
    best = best_validated(df)
    rows = []
    for (task, pruning, schedule), group in best.groupby(GROUP):
        if task not in base.index:
            continue
        oriented = group.assign(_y=signs(group) * group["test_median"])
        ok = oriented[oriented["_y"] >= signs(group) * base[task] - drop]
        top = ok.sort_values(["compression", "_y"], ascending=False).head(1)
        rows.append({"task": task, "pruning": pruning, "schedule": schedule, "drop": drop,
                     "unpruned": base[task],
                     "compression": float(top["compression"].iloc[0]) if len(top) else np.nan,
                     "density": float(top["density"].iloc[0]) if len(top) else np.nan,
                     "method": top["method"].iloc[0] if len(top) else None})
    return pd.DataFrame(rows, columns=["task", "pruning", "schedule", "drop", "unpruned", "compression", "density",
                                       "method"])


def search_cost_curves(df: pd.DataFrame, density: float, task: str | None = None) -> pd.DataFrame:
    """Median (min, max) test score of every method against its retraining epochs at one density."""
    s = summarize(df)
    s = s[np.isclose(s["density"], density)]
    if task is not None:
        s = s[s["task"] == task]
    return s.sort_values(["method", "retraining_epochs"]).reset_index(drop=True)


# -- many workloads at once ---------------------------------------------------------------------

PROFILE_GAPS = (0.0, 0.5, 1.0, 2.0, 5.0)  # points behind the best method of a cell


def performance_profile(best: pd.DataFrame, gaps: Iterable[float] | None = None) -> pd.DataFrame:
    """Each method's share of (network, density) cells where its best-validated median test score is
    within ``gap`` points of the best method's there (a performance profile, as AlgoPerf summarizes
    many workloads). A method missing from a cell counts as not within any gap."""
    cell = ["task", "pruning", "schedule", "density"]
    score = best.assign(_y=signs(best) * best["test_median"]).pivot_table(index=cell, columns="method", values="_y",
                                                                         aggfunc="first")
    behind = score.max(axis=1).to_numpy()[:, None] - score.to_numpy()
    rows = []
    for gap in gaps if gaps is not None else PROFILE_GAPS:
        within = np.where(np.isnan(behind), False, behind <= gap + 1e-9)
        rows += [{"method": m, "gap": float(gap), "share": float(within[:, j].mean()), "cells": len(score)}
                 for j, m in enumerate(score.columns)]
    return pd.DataFrame(rows, columns=["method", "gap", "share", "cells"])
