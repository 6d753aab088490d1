"""The leaderboard's tables, as plain lists of rows, shared by the web page and the Markdown summary."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness import statistics as st


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""


def fmt(x: float, digits: int = 2) -> str:
    return "" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{digits}f}"


def ranking(best: pd.DataFrame, density: float) -> Table:
    """Methods ranked by best-validated median test score at one density."""
    at = best[np.isclose(best["density"], density)].sort_values("test_median", ascending=False)
    rows = [[str(i + 1), r["method"], fmt(r["test_median"]), f"{fmt(r['test_min'])}-{fmt(r['test_max'])}",
             f"{r['retraining_epochs']:g}", fmt(r["val_median"]), str(int(r["seeds"]))]
            for i, (_, r) in enumerate(at.iterrows())]
    return Table(f"density {density:.4g} (compression {1 / density:.2f}x)",
                 ["rank", "method", "test median", "test min-max", "t (chosen on val)", "val median", "seeds"], rows)


def drop_table(df: pd.DataFrame) -> Table:
    rows = []
    for drop in (0.0, 1.0):
        for _, r in st.compression_at_drop(df, drop).iterrows():
            rows.append([r["task"], r["pruning"], r["schedule"], "no drop" if drop == 0 else "within 1 point",
                         fmt(r["unpruned"]), fmt(r["compression"]) + "x" if not np.isnan(r["compression"]) else "none",
                         r["method"] or ""])
    return Table("highest compression without (or within one point of) the unpruned network's median test score",
                 ["task", "pruning", "schedule", "criterion", "unpruned", "compression", "method"], rows)


def safe_zone_table(zone: st.SafeZone) -> Table:
    rows = []
    for _, r in zone.tests.iterrows():
        rows.append([r["method"], f"{r['fraction']:.0%}", str(int(r["n"])), fmt(r["mean"]), fmt(r["median"]),
                     f"[{fmt(r['ci_low'])}, {fmt(r['ci_high'])}]", f"{r['p']:.4f}", f"{r['p_holm']:.4f}",
                     f"{zone.inclusion.get(r['fraction'], np.nan):.0%}"])
    note = (f"Paired differences (method - fine-tuning) over {zone.pairs} units (task, pruning, schedule, density, "
            f"seed). One-sided Wilcoxon signed-rank tests, exact null distribution, Holm-corrected over all "
            f"{len(zone.tests)} tests; intervals are simultaneous t intervals at level "
            f"{zone.tests['ci_level'].iloc[0]:.4f}; 'in zone' is the share of bootstrap resamples of the units "
            f"in which the fraction lies in the zone.")
    return Table(zone.describe(), ["method", "t / T", "pairs", "mean diff", "median diff", "interval", "p",
                                   "p (Holm)", "in zone"], rows, note)


def flops_table(df: pd.DataFrame) -> Table | None:
    if "flops" not in df.columns or df["flops"].isna().all():
        return None
    per_density = df.dropna(subset=["flops"]).groupby(["task", "pruning", "density"]).agg(
        flops=("flops", "median"), dense=("dense_flops", "median")).reset_index()
    rows = [[r["task"], r["pruning"], f"{r['density']:.4g}", f"{r['flops']:,.0f}",
             f"{r['flops'] / r['dense']:.1%}"] for _, r in per_density.iterrows()]
    return Table("theoretical inference FLOPs per sample, counting only non-zero weights (a multiply-add is 2 FLOPs)",
                 ["task", "pruning", "density", "FLOPs", "of dense"], rows)


def pareto_table(frontier: pd.DataFrame) -> Table:
    rows = [[f"{r['compression']:.2f}x", r["method"], fmt(r["test_median"]), f"{r['retraining_epochs']:g}"]
            for _, r in frontier.iterrows()]
    return Table("Pareto frontier across methods: no other (method, density) is both more compressed and more "
                 "accurate", ["compression", "method", "test median", "t"], rows)
