"""The paper's statistics on a results table: medians over seeds, best-validated retraining times,
Pareto frontiers and the compression reachable without losing accuracy (the rewinding safe zone is
``harness.analysis.safe_zone``).

Every function takes a pandas DataFrame with one row per (cell, seed) and these columns (the
columns of ``read_csv``'s external results too):

    task, pruning, schedule, method, density, retraining_epochs, seed, val_acc, test_acc

``val_acc`` and ``test_acc`` hold the task's metric (accuracy in %, BLEU for translation), better in
the direction the metric declares (``harness.core.metrics``). Optional columns: ``metric`` (a
registered metric's name; default ``accuracy``), ``source`` (a label shown in the
tables), ``T`` (the schedule's epochs; inferred as the longest retraining time of the task when
absent), ``target_density`` (what was asked for; ``density`` is what pruning reached),
``unpruned_val_acc`` and ``unpruned_test_acc`` (the base network's), ``flops`` and ``dense_flops``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.core.errors import DamagedFile, HarnessError
from harness.core.metrics import metric_of
from harness.core.protocol import SCHEDULES
from harness.core.registry import METRICS
from harness.core.seeding import MAX_SEED
from harness.storage.record import CellRecord
from harness.storage.store import Store, read_record

COLUMNS = ("task", "pruning", "schedule", "method", "density", "retraining_epochs", "seed", "val_acc", "test_acc")
OPTIONAL = ("metric", "source", "T", "target_density", "unpruned_val_acc", "unpruned_test_acc", "flops",
            "dense_flops", "epochs_scale", "registered_task", "epochs_trained", "retraining_samples",
            "retraining_tokens", "trainable_parameters", "retraining_peak_bytes", "retraining_flops")
CELL = ["task", "pruning", "schedule", "method", "density", "retraining_epochs"]
CURVE = ["task", "pruning", "schedule", "method", "density"]
GROUP = ["task", "pruning", "schedule"]  # rows comparable with one another: one table, one plot, one safe zone


# -- reading results --------------------------------------------------------------------------


def from_records(records: Iterable[CellRecord], source: str = "store") -> pd.DataFrame:
    """Cell records (the store's, or a sweep's ``results.csv``) as a statistics table: the record's
    fields, with ``task`` and ``method`` the labels a comparison is made under."""
    rows = []
    for r in records:
        rows.append({
            "task": task_label(r.task, r.epochs_scale, r.batch_size), "pruning": label(r.pruning, r.pruning_params),
            "schedule": r.schedule, "method": r.variant or label(r.method, r.method_params),
            "density": r.density, "retraining_epochs": r.retraining_epochs, "seed": r.seed,
            "val_acc": r.val_acc, "test_acc": r.test_acc, "T": r.T,
            "target_density": r.target_density if r.target_density is not None else r.density,
            "unpruned_val_acc": r.unpruned_val_acc, "unpruned_test_acc": r.unpruned_test_acc,
            "flops": r.flops, "dense_flops": r.dense_flops, "epochs_scale": r.epochs_scale, "metric": r.metric,
            "source": source, "origin": r.run or source, "registered_task": r.task,
            "epochs_trained": r.epochs_trained, "retraining_samples": r.retraining_samples,
            "retraining_tokens": r.retraining_tokens, "trainable_parameters": r.trainable_parameters,
            "retraining_peak_bytes": r.retraining_peak_bytes, "retraining_flops": r.retraining_flops,
        })
    return normalize(pd.DataFrame.from_records(rows, columns=[*COLUMNS, *OPTIONAL, "origin"]))


def label(name: str, overrides: dict[str, float]) -> str:
    """A method or pruning strategy with the parameters it overrides: another setting is another method,
    or another pruning, in every table (a variant goes by its own name)."""
    if not overrides:
        return name
    return f"{name} ({', '.join(f'{k}={v:g}' for k, v in sorted(overrides.items()))})"


def task_label(task: str, epochs_scale: float, batch_size: int | None) -> str:
    """The task as a comparison unit: a shortened schedule or another batch size is another experiment."""
    label = task
    if float(epochs_scale) != 1.0:
        label += f" (epochs x{float(epochs_scale):g})"
    if batch_size is not None:
        label += f" (batch {int(batch_size)})"
    return label


def task_of_label(label: str) -> str:
    """The task a ``task_label`` names (a task's name has no " (")."""
    return label.split(" (")[0]


def is_blank(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, float) and np.isnan(value))


def read_store(root: str | Path) -> pd.DataFrame:

    paths = Store(root).result_files()
    if not paths:
        raise HarnessError(f"no results in {root}: run `harness run` or `harness sweep` with --store {root}")
    records = []
    for p in paths:
        try:
            records.append(read_record(p))
        except (OSError, DamagedFile) as e:
            raise HarnessError(f"{p}: not a readable result ({' '.join(str(e).split())[:120]}); delete its folder "
                               "to recompute the cell") from None
    return from_records([r for r in records if r is not None], source="store")


def read_csv(path: str | Path) -> pd.DataFrame:
    """External results (published numbers, another code base) with the documented columns, or a
    sweep's own ``results.csv``. Each row's ``source`` is the file's name unless it has a column."""
    path = Path(path)
    try:
        df = pd.read_csv(path)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise HarnessError(f"{path}: cannot read as CSV ({' '.join(str(e).split())[:200]})") from None
    lines = [f"{path.name}:{i + 2}" for i in range(len(df))]  # line 1 is the header
    if {"run", "weights_sha256"} <= set(df.columns):  # a sweep's results.csv: cell records
        try:
            records = [CellRecord.from_json(row) for row in df.replace({np.nan: None}).to_dict("records")]
        except (HarnessError, TypeError, ValueError) as e:
            raise HarnessError(f"{path}: not a sweep's results ({' '.join(str(e).split())[:200]})") from None
        table = from_records(records, source=path.stem)
        table["origin"] = lines
        return table
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise HarnessError(f"{path}: missing column(s) {', '.join(missing)}; required: {', '.join(COLUMNS)}")
    for column in ("density", "retraining_epochs", "seed", "val_acc", "test_acc"):
        if not pd.api.types.is_numeric_dtype(df[column]):
            bad = ~df[column].map(numeric_or_blank)
            raise HarnessError(f"{path}: column {column} must be numeric; it is not in {rows_of(bad, lines)}")
    seeds = pd.to_numeric(df["seed"], errors="coerce")
    fractional = seeds.notna() & ~(np.isfinite(seeds) & (seeds == np.floor(seeds)) & (seeds >= 0)
                                   & (seeds <= MAX_SEED))
    if fractional.any():
        raise HarnessError(f"{path}: column seed must hold whole numbers from 0 to {MAX_SEED}; it does not in "
                           f"{rows_of(fractional, lines)}")
    df["origin"] = lines
    if "source" not in df.columns:
        df["source"] = path.stem
    return normalize(df)


def read_mlflow(tracking_uri: str, experiment: str) -> pd.DataFrame:
    """Retraining runs of an MLflow experiment (as this harness logs them)."""
    # start-up: MLflow's client only when rows are read from a tracking server
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        names = ", ".join(e.name for e in client.search_experiments())
        raise HarnessError(f"no MLflow experiment {experiment!r} at {tracking_uri}; valid: {names}")
    records, seen = [], set()
    for run in client.search_runs([exp.experiment_id], "tags.`harness.kind` = 'retrain'", max_results=50000):
        folder = run.data.tags.get("harness.folder")
        if folder in seen:  # one cell may be mirrored under several studies
            continue
        seen.add(folder)
        metrics = dict(run.data.metrics)
        for key, value in run.data.metrics.items():  # runs logged before the record: final_val_accuracy, ...
            for split in ("val", "test"):
                if key.startswith(f"final_{split}_"):
                    metrics.setdefault(f"{split}_acc", value)
        raw = {**run.data.params, **metrics, "run": Path(folder or run.info.run_id).name}
        raw.setdefault("schedule", "iterative" if int(raw.get("round", 1)) > 1 else "one-shot")
        if "T" not in raw and "task.epochs" in raw:
            raw["T"] = raw["task.epochs"]
        try:
            records.append(CellRecord.from_json(raw))
        except (HarnessError, TypeError, ValueError) as e:
            raise HarnessError(f"MLflow run {run.info.run_id}: not a retraining run of this harness "
                               f"({' '.join(str(e).split())[:160]})") from None
    if not records:
        raise HarnessError(f"MLflow experiment {experiment!r} at {tracking_uri} has no retraining runs")
    return from_records(records, source=f"mlflow {experiment}")


def numeric_or_blank(value: Any) -> bool:
    try:
        float(value)
        return True
    except (TypeError, ValueError):
        return False


def rows_of(mask: pd.Series, origins: list[str] | pd.Series, limit: int = 5) -> str:
    hits = [o for o, bad in zip(origins, mask, strict=True) if bad]
    more = f" and {len(hits) - limit} more" if len(hits) > limit else ""
    return ", ".join(hits[:limit]) + more


def check(df: pd.DataFrame) -> pd.DataFrame:
    """The checks a table passes before the leaderboard is built from it (once, on every source
    combined, so a cell given twice is found across files too): one line naming the rows at fault."""
    origin = df["origin"] if "origin" in df.columns else pd.Series([f"row {i}" for i in range(len(df))], df.index)
    unnamed = df[["task", "pruning", "schedule", "method"]].isna().any(axis=1) | df[
        ["task", "pruning", "schedule", "method"]].astype(str).apply(lambda c: c.str.strip() == "").any(axis=1)
    if unnamed.any():
        raise HarnessError(f"blank task, pruning, schedule or method in {rows_of(unnamed, origin)}; every row names "
                           "all four")
    blank = df[["val_acc", "test_acc", "density", "retraining_epochs", "seed"]].isna().any(axis=1)
    if blank.any():
        raise HarnessError(f"blank val_acc, test_acc, density or retraining_epochs in {rows_of(blank, origin)}; "
                           "every row needs all four, and a seed")
    bad_density = ~((df["density"] > 0) & (df["density"] <= 1))
    if bad_density.any():
        raise HarnessError(f"density outside (0, 1] in {rows_of(bad_density, origin)}; density is the share of "
                           "prunable weights that remain")
    bad_schedule = ~df["schedule"].isin(SCHEDULES)
    if bad_schedule.any():
        raise HarnessError(f"unknown schedule {df.loc[bad_schedule, 'schedule'].iloc[0]!r} in "
                           f"{rows_of(bad_schedule, origin)}; valid: {', '.join(SCHEDULES)}")
    bad_metric = ~df["metric"].isin(METRICS.names())
    if bad_metric.any():
        raise HarnessError(f"unknown metric {df.loc[bad_metric, 'metric'].iloc[0]!r} in {rows_of(bad_metric, origin)};"
                           f" valid: {', '.join(METRICS.names())}")
    for task, group in df[df["metric"] == "accuracy"].groupby("task"):
        if (group[["val_acc", "test_acc"]] <= 1).all().all():
            raise HarnessError(f"task {task}: every accuracy is at most 1, so it looks like a fraction; accuracy is "
                               "in percent (0-100): multiply by 100")
    for name, rows in df.groupby("metric"):
        metric = metric_of(str(name))
        scores = rows[["val_acc", "test_acc"]]
        bad_range = ~(scores.ge(metric.low).all(axis=1) & scores.le(metric.high).all(axis=1))
        if bad_range.any():
            raise HarnessError(f"{metric.label or metric.name} outside {metric.low:g}-{metric.high:g} in "
                               f"{rows_of(bad_range.reindex(df.index, fill_value=False), origin)}; "
                               f"{metric.name} is in {metric.unit}")
    dup = df.duplicated([*CELL, "seed"], keep=False)
    if dup.any():
        raise HarnessError(f"the same cell and seed appears more than once: {rows_of(dup, origin)}; give each "
                           "(task, pruning, schedule, method, density, retraining_epochs, seed) one row")
    return df


def normalize(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df["density"] = pd.to_numeric(df["density"]).astype(float).round(6)
    df["retraining_epochs"] = pd.to_numeric(df["retraining_epochs"]).astype(float)
    df["seed"] = pd.to_numeric(df["seed"]).astype("Int64")  # nullable: check() names the rows without one
    for column, default in (("T", np.nan), ("metric", "accuracy"), ("source", ""), ("target_density", np.nan)):
        if column not in df.columns:
            df[column] = default
    df["metric"] = df["metric"].fillna("accuracy")
    df["source"] = df["source"].astype(object).fillna("").astype(str)
    df["target_density"] = pd.to_numeric(df["target_density"]).astype(float).fillna(df["density"])
    longest = df.groupby("task")["retraining_epochs"].transform("max")
    df["T"] = pd.to_numeric(df["T"]).astype(float).fillna(longest)
    # t / T; a checkpoint's task has no T of ours (T = 0), and its t stands as epochs of its data
    df["fraction"] = (df["retraining_epochs"] / df["T"].where(df["T"] > 0, 1.0)).round(6)
    df["compression"] = 1.0 / df["density"]
    return df
