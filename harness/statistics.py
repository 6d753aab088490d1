"""The paper's statistics on a results table: medians over seeds, best-validated retraining times,
Pareto frontiers, the compression reachable without losing accuracy, and the rewinding safe zone.

Every function takes a pandas DataFrame with one row per (cell, seed) and these columns (the
columns of ``read_csv``'s external results too):

    task, pruning, schedule, method, density, retraining_epochs, seed, val_acc, test_acc

``val_acc`` and ``test_acc`` hold the task's metric (accuracy in %, BLEU for translation); higher
is better. Optional columns: ``T`` (the schedule's epochs; inferred as the longest retraining time
of the task when absent), ``unpruned_val_acc`` and ``unpruned_test_acc`` (the base network's),
``flops`` and ``dense_flops``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from harness.errors import HarnessError

COLUMNS = ("task", "pruning", "schedule", "method", "density", "retraining_epochs", "seed", "val_acc", "test_acc")
CELL = ["task", "pruning", "schedule", "method", "density", "retraining_epochs"]
CURVE = ["task", "pruning", "schedule", "method", "density"]
REWINDING = ("weight-rewinding", "lr-rewinding")
BASELINE = "fine-tuning"


# -- reading results --------------------------------------------------------------------------


def from_rows(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """The store's result rows (``result.json``) as a statistics table."""
    records = []
    for r in rows:
        records.append({
            "task": task_label(r), "pruning": r.get("structured") or r.get("pruning", "global-magnitude"),
            "schedule": r["schedule"], "method": r.get("variant") or r["method"], "density": r["density"],
            "retraining_epochs": r["retrain_epochs"], "seed": r["base.seed"],
            "val_acc": r["val"], "test_acc": r["test"],
            "T": r["retrain_epochs"] / r["retrain_fraction"] if r.get("retrain_fraction") else np.nan,
            "unpruned_val_acc": r.get("base_val"), "unpruned_test_acc": r.get("base_test"),
            "flops": r.get("flops"), "dense_flops": r.get("dense_flops"),
            "epochs_scale": r.get("base.epochs_scale", 1.0), "metric": r.get("metric", "accuracy"),
        })
    return normalize(pd.DataFrame.from_records(records, columns=[*COLUMNS, "T", "unpruned_val_acc",
                                                                  "unpruned_test_acc", "flops", "dense_flops",
                                                                  "epochs_scale", "metric"]))


def task_label(row: dict[str, Any]) -> str:
    """The task as a comparison unit: a shortened schedule or another batch size is another experiment."""
    label = row["base.task"]
    scale, batch = row.get("base.epochs_scale", 1.0), row.get("base.batch_size")
    if scale not in (None, 1.0):
        label += f" (epochs x{scale:g})"
    if batch not in (None, "None", ""):
        label += f" (batch {batch})"
    return label


def read_store(root: str | Path) -> pd.DataFrame:
    paths = sorted(Path(root).glob("retrain/*/result.json"))
    if not paths:
        raise HarnessError(f"no results in {root}: run `harness run` or `harness sweep` with --store {root}")
    return from_rows(json.loads(p.read_text()) for p in paths)


def read_csv(path: str | Path) -> pd.DataFrame:
    """External results (published numbers, another code base) with the documented columns."""
    try:
        df = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise HarnessError(f"{path}: cannot read as CSV ({' '.join(str(e).split())[:200]})") from None
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise HarnessError(f"{path}: missing column(s) {', '.join(missing)}; required: {', '.join(COLUMNS)}")
    for column in ("density", "retraining_epochs", "seed", "val_acc", "test_acc"):
        if not pd.api.types.is_numeric_dtype(df[column]):
            raise HarnessError(f"{path}: column {column} must be numeric")
    return normalize(df)


def read_mlflow(tracking_uri: str, experiment: str) -> pd.DataFrame:
    """Retraining runs of an MLflow experiment (as this harness logs them)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        names = ", ".join(e.name for e in client.search_experiments())
        raise HarnessError(f"no MLflow experiment {experiment!r} at {tracking_uri}; valid: {names}")
    rows, seen = [], set()
    for run in client.search_runs([exp.experiment_id], "tags.`harness.kind` = 'retrain'", max_results=50000):
        folder = run.data.tags.get("harness.folder")
        if folder in seen:  # one cell may be mirrored under several studies
            continue
        seen.add(folder)
        p, m = run.data.params, run.data.metrics
        metric = next((k[len("final_test_"):] for k in m if k.startswith("final_test_")), "accuracy")
        rows.append({
            "base.task": p["base.task"], "structured": p.get("structured") if p.get("structured") != "None" else None,
            "pruning": p.get("pruning", "global-magnitude"),
            "schedule": "iterative" if int(p.get("round", 1)) > 1 else "one-shot",
            "method": p["method"] if p.get("variant") in (None, "None") else p["variant"],
            "density": m["density"], "retrain_epochs": float(p["retrain_epochs"]), "base.seed": int(p["base.seed"]),
            "val": m[f"final_val_{metric}"], "test": m[f"final_test_{metric}"],
            "retrain_fraction": float(p["retrain_epochs"]) / float(p["task.epochs"]),
            "flops": m.get("flops"), "dense_flops": m.get("dense_flops"),
            "base.epochs_scale": float(p.get("base.epochs_scale", 1.0)), "base.batch_size": p.get("base.batch_size"),
        })
    if not rows:
        raise HarnessError(f"MLflow experiment {experiment!r} at {tracking_uri} has no retraining runs")
    return from_rows(rows)


def normalize(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df["density"] = df["density"].astype(float).round(6)
    df["retraining_epochs"] = df["retraining_epochs"].astype(float)
    df["seed"] = df["seed"].astype(int)
    if "T" not in df.columns:
        df["T"] = np.nan
    if "metric" not in df.columns:
        df["metric"] = "accuracy"
    longest = df.groupby("task")["retraining_epochs"].transform("max")
    df["T"] = df["T"].astype(float).fillna(longest)
    df["fraction"] = (df["retraining_epochs"] / df["T"]).round(6)
    df["compression"] = 1.0 / df["density"]
    return df


# -- medians over seeds -----------------------------------------------------------------------


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Median, min and max of test and validation scores over seeds, per cell."""
    g = df.groupby(CELL, sort=True)
    out = g.agg(test_median=("test_acc", "median"), test_min=("test_acc", "min"), test_max=("test_acc", "max"),
                val_median=("val_acc", "median"), val_min=("val_acc", "min"), val_max=("val_acc", "max"),
                seeds=("seed", "nunique"), fraction=("fraction", "first"), compression=("compression", "first"))
    return out.reset_index()


def best_validated(df: pd.DataFrame) -> pd.DataFrame:
    """Per (task, pruning, schedule, method, density): the retraining time with the highest median
    validation score (ties: the shorter, cheaper one), reported with its test score."""
    s = summarize(df).sort_values([*CURVE, "val_median", "retraining_epochs"],
                                  ascending=[True] * len(CURVE) + [False, True])
    return s.groupby(CURVE, sort=True).head(1).sort_values(CURVE).reset_index(drop=True)


def unpruned(df: pd.DataFrame) -> pd.Series:
    """The unpruned network's median test score per task (over seeds)."""
    if "unpruned_test_acc" not in df.columns or df["unpruned_test_acc"].isna().all():
        return pd.Series(dtype=float)
    per_seed = df.dropna(subset=["unpruned_test_acc"]).groupby(["task", "seed"])["unpruned_test_acc"].first()
    return per_seed.groupby("task").median()


# -- Pareto frontiers ---------------------------------------------------------------------------


def pareto_frontier(points: pd.DataFrame, x: str = "compression", y: str = "test_median") -> pd.DataFrame:
    """The points no other point beats on both ``x`` and ``y`` (higher is better on both)."""
    ordered = points.sort_values([x, y], ascending=[False, False])
    keep, best = [], -np.inf
    for index, row in ordered.iterrows():
        if row[y] > best:
            keep.append(index)
            best = row[y]
    return points.loc[keep].sort_values(x).reset_index(drop=True)


def frontiers(df: pd.DataFrame) -> dict[tuple[str, str, str, str], pd.DataFrame]:
    """Accuracy vs compression frontiers of best-validated points: per method, and ``"all"`` methods."""
    best = best_validated(df)
    out = {}
    for (task, pruning, schedule), group in best.groupby(["task", "pruning", "schedule"]):
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
    for (task, pruning, schedule), group in best.groupby(["task", "pruning", "schedule"]):
        if task not in base.index:
            continue
        ok = group[group["test_median"] >= base[task] - drop]
        top = ok.sort_values(["compression", "test_median"], ascending=False).head(1)
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


# -- the rewinding safe zone -------------------------------------------------------------------


@dataclass
class SafeZone:
    """The largest contiguous range of retraining-time fractions where both rewinding methods beat
    fine-tuning, each by a one-sided paired test (Wilcoxon signed-rank over the paired units: same task, pruning,
    schedule, density and seed, so the same base network and mask) significant at ``alpha`` after
    Holm's correction over every (method, fraction) test.

    ``tests`` holds, per (method, fraction), the paired differences' count, mean, median, a
    simultaneous (Bonferroni) confidence interval for the mean difference, the raw and
    Holm-adjusted p-values. ``inclusion`` is, per fraction, the share of bootstrap resamples
    (of the paired units) in which the fraction lies in the zone; ``start_interval`` and
    ``end_interval`` are the 5th and 95th percentiles of the zone's ends over those resamples.
    """

    start: float | None
    end: float | None
    alpha: float
    tests: pd.DataFrame
    inclusion: pd.Series
    start_interval: tuple[float, float] | None
    end_interval: tuple[float, float] | None
    pairs: int

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "start_interval": self.start_interval,
                "end_interval": self.end_interval, "pairs": self.pairs, "alpha": self.alpha}

    def describe(self) -> str:
        if self.start is None:
            return (f"no safe zone: at no retraining time do both rewinding methods beat fine-tuning "
                    f"(one-sided paired signed-rank tests, Holm-corrected, alpha {self.alpha:g})")
        text = f"safe zone {self.start:.0%}-{self.end:.0%} of T"
        if self.start_interval and self.end_interval:
            text += (f" (bootstrap 90% interval of its start {self.start_interval[0]:.0%}-{self.start_interval[1]:.0%},"
                     f" of its end {self.end_interval[0]:.0%}-{self.end_interval[1]:.0%})")
        return text + "; the paper reads 25%-90% off its plots"


def paired_differences(df: pd.DataFrame, method: str, metric: str = "test_acc") -> pd.DataFrame:
    """method minus fine-tuning, per (task, pruning, schedule, density, seed, fraction): the same base
    network and the same retraining time."""
    keys = ["task", "pruning", "schedule", "density", "seed", "fraction"]
    a = df[df["method"] == method].set_index(keys)[metric]
    b = df[df["method"] == BASELINE].set_index(keys)[metric]
    joined = pd.concat([a.rename("method"), b.rename("baseline")], axis=1, join="inner").dropna()
    joined["diff"] = joined["method"] - joined["baseline"]
    return joined.reset_index()


EXACT_UP_TO = 16  # nonzero pairs: beyond, the normal approximation


def signed_rank_test(diffs: np.ndarray) -> float:
    """One-sided p-value that paired differences are centred above 0: Wilcoxon's signed-rank
    statistic (mid-ranks for ties, zero differences dropped), its null distribution enumerated
    exactly over all 2^n sign patterns for n <= 16, distribution-free and suited to few seeds."""
    d = np.asarray(diffs, dtype=float)
    d = d[d != 0]
    n = len(d)
    if n == 0:
        return 1.0
    if n > EXACT_UP_TO:
        return float(stats.wilcoxon(d, alternative="greater", method="approx").pvalue)
    ranks = stats.rankdata(np.abs(d))
    observed = ranks[d > 0].sum()
    signs = (np.arange(1 << n)[:, None] >> np.arange(n)) & 1  # every pattern of positive signs
    null = signs @ ranks
    return float(np.mean(null >= observed - 1e-9))


def holm(pvalues: pd.Series) -> pd.Series:
    """Holm's step-down adjustment (controls the family-wise error rate)."""
    order = pvalues.sort_values()
    m = len(order)
    adjusted = np.maximum.accumulate([(m - i) * p for i, p in enumerate(order.to_numpy())])
    return pd.Series(np.minimum(adjusted, 1.0), index=order.index).reindex(pvalues.index)


def zone_of(significant: dict[float, bool]) -> tuple[float, float] | None:
    """The longest run of consecutive fractions (in grid order) that are all significant."""
    best, run = None, []
    for fraction in sorted(significant):
        run = [*run, fraction] if significant[fraction] else []
        if run and (best is None or len(run) > len(best)):
            best = list(run)
    return (best[0], best[-1]) if best else None


def safe_zone(df: pd.DataFrame, alpha: float = 0.05, methods: tuple[str, ...] = REWINDING,
              bootstrap: int = 200, seed: int = 0) -> SafeZone:
    diffs = {m: paired_differences(df, m) for m in methods}
    if any(d.empty for d in diffs.values()):
        absent = [m for m, d in diffs.items() if d.empty]
        raise HarnessError(f"the safe zone needs {BASELINE} and {', '.join(methods)} at the same retraining "
                           f"times; no pairs for {', '.join(absent)}")
    fractions = sorted(set.intersection(*(set(d["fraction"]) for d in diffs.values())))

    tests, ok = significance(diffs, fractions, alpha)
    level = 1 - alpha / len(tests)  # simultaneous intervals over every (method, fraction)
    intervals = [mean_interval(diffs[m].loc[diffs[m]["fraction"] == f, "diff"].to_numpy(), level)
                 for m, f in zip(tests["method"], tests["fraction"], strict=True)]
    tests["ci_low"], tests["ci_high"] = zip(*intervals, strict=True)
    tests["ci_level"] = level
    zone = zone_of(ok)

    # resample the paired units (task, pruning, schedule, density, seed) with replacement
    units = ["task", "pruning", "schedule", "density", "seed"]
    ids = diffs[methods[0]][units].drop_duplicates().reset_index(drop=True)
    rng = np.random.default_rng(seed)
    n_boot = bootstrap if len(ids) > 1 else 0
    inclusion = pd.Series(0.0, index=fractions)
    starts, ends = [], []
    for _ in range(n_boot):
        pick = ids.iloc[rng.integers(0, len(ids), len(ids))]
        _, sample_ok = significance({m: pick.merge(d, on=units) for m, d in diffs.items()}, fractions, alpha)
        inclusion += pd.Series(sample_ok, dtype=float)
        if z := zone_of(sample_ok):
            starts.append(z[0])
            ends.append(z[1])
    if n_boot:
        inclusion /= n_boot
    return SafeZone(zone[0] if zone else None, zone[1] if zone else None, alpha, tests, inclusion,
                    percentile_interval(starts), percentile_interval(ends), len(ids))


def mean_interval(x: np.ndarray, level: float) -> tuple[float, float]:
    """A t interval for the mean of paired differences (degenerate when they cannot vary)."""
    if len(x) > 1 and np.std(x) > 0:
        ci = stats.ttest_1samp(x, 0.0).confidence_interval(confidence_level=level)
        return float(ci.low), float(ci.high)
    mean = float(x.mean()) if len(x) else np.nan
    return mean, mean


def percentile_interval(values: list[float]) -> tuple[float, float] | None:
    return (float(np.percentile(values, 5)), float(np.percentile(values, 95))) if values else None


def significance(per_method: dict[str, pd.DataFrame], fractions: list[float],
                 alpha: float) -> tuple[pd.DataFrame, dict[float, bool]]:
    """Per (method, fraction) the one-sided test of "beats fine-tuning", Holm-adjusted over all of
    them; a fraction is in the zone when every method's adjusted p-value is below ``alpha``."""
    rows = []
    for m, d in per_method.items():
        for f in fractions:
            x = d.loc[d["fraction"] == f, "diff"].to_numpy()
            rows.append({"method": m, "fraction": f, "n": len(x), "mean": x.mean() if len(x) else np.nan,
                         "median": np.median(x) if len(x) else np.nan, "p": signed_rank_test(x)})
    table = pd.DataFrame(rows)
    table["p_holm"] = holm(table["p"])
    return table, {f: bool((table.loc[table["fraction"] == f, "p_holm"] < alpha).all()) for f in fractions}
