"""The leaderboard's tables, as plain lists of rows, shared by the web page and the Markdown summary."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness import statistics as st
from harness.safe_zone import Zone


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
             f"{r['retraining_epochs']:g}", fmt(r["val_median"]), str(int(r["seeds"])), r["source"]]
            for i, (_, r) in enumerate(at.iterrows())]
    target = at["target_density"].iloc[0] if len(at) else density
    realized = "" if np.isclose(target, density, rtol=1e-3) else f", reached {density:.4g}"
    return Table(f"density {target:.4g} (compression {1 / density:.2f}x{realized})",
                 ["rank", "method", "test median", "test min-max", "t (chosen on val)", "val median", "seeds",
                  "source"], rows)


def drop_table(df: pd.DataFrame) -> Table:
    rows = []
    for drop in (0.0, 1.0):
        for _, r in st.compression_at_drop(df, drop).iterrows():
            found = not pd.isna(r["compression"])
            rows.append([r["task"], r["pruning"], r["schedule"], "no drop" if drop == 0 else "within 1 point",
                         fmt(r["unpruned"]), f"{fmt(r['compression'])}x" if found else "none",
                         str(r["method"]) if found else ""])
    return Table("highest compression without (or within one point of) the unpruned network's median test score",
                 ["task", "pruning", "schedule", "criterion", "unpruned", "compression", "method"], rows)


def effect(effects: pd.DataFrame, method: str, fraction: float) -> str:
    at = effects[(effects["method"] == method) & (effects["fraction"] == fraction)]
    if at.empty or not at["n"].iloc[0]:
        return ""
    r = at.iloc[0]
    return f"{r['median']:+.2f} [{r['ci_low']:+.2f}, {r['ci_high']:+.2f}], wins {r['wins']}/{r['n']}"


def level(value: float | None) -> str:
    return "" if value is None or pd.isna(value) else f"{value:.3g}"


def zone_table(zone: Zone) -> Table:
    """One network: per retraining time, each rewinding method's effect and the procedure's call."""
    methods = list(dict.fromkeys(zone.effects["method"]))
    rows = []
    for _, r in zone.axis.iterrows():
        f = r["fraction"]
        units = int(zone.effects.loc[zone.effects["fraction"] == f, "n"].min())
        share = f"{zone.inclusion.get(f, np.nan):.0%}" if len(zone.inclusion) else ""
        rows.append([f"{f:.0%}", str(units), *(effect(zone.effects, m, f) for m in methods), f"{r['p_safe']:.4f}",
                     level(r["level"]), r["call"], share])
    note = (f"Paired units: (density, seed) cells with the same base network, mask and t ({zone.units} here). Effect: "
            "Hodges-Lehmann median of method - fine-tuning, 95% interval inverting the signed-rank test (an interval "
            "the units cannot narrow is the metric's whole range), and units where the method wins. p: the larger of "
            "the two one-sided exact signed-rank p-values (both methods must beat fine-tuning). Tested outward from "
            f"the pre-declared anchor {zone.anchor:.0%} of T: the anchor at alpha {zone.alpha:g}, each side at "
            "alpha/2 until a test fails, a finished side's share passed to the other (family-wise error of calling "
            "an unsafe time safe at most alpha). 'unsafe': a method is significantly worse. 'in zone': share of "
            "bootstrap resamples of the units whose zone holds the time.")
    return Table(zone.describe(), ["t / T", "units", *(f"{m} - fine-tuning" for m in methods), "p (both beat)",
                                   "tested at", "call", "in zone"], rows, note)


def across_table(zone: Zone, networks: list[str]) -> Table:
    """Across networks: per common retraining time, each network's p-value and the joint call."""
    rows = []
    for _, r in zone.axis.iterrows():
        span = f"{r['low']:.1%}" if np.isclose(r["low"], r["high"]) else f"{r['low']:.1%}-{r['high']:.1%}"
        rows.append([span, *(f"{r[n]:.4f}" for n in networks), f"{r['p_safe']:.4f}", level(r["level"]), r["call"],
                     f"{zone.inclusion.get(r['fraction'], np.nan):.0%}" if len(zone.inclusion) else ""])
    note = ("Each network speaks for a retraining time through its own grid point there, or the two around it (both "
            "must be safe); a time outside a network's grid cannot be safe (p = 1). The time is safe across networks "
            "only if it is safe in each (the largest p), tested outward from the anchor as in each network.")
    return Table(zone.describe(), ["t / T", *networks, "p (all)", "tested at", "call", "in zone"], rows, note)


def verdicts_table(zones: dict[str, Zone], across: Zone | None) -> Table:
    rows = [[name, z.verdict, f"{z.start:.0%}-{z.end:.0%}" if z.verdict == "zone" else "",
             z.bounds[0] if z.verdict == "zone" else z.reason, z.bounds[1] if z.verdict == "zone" else "",
             str(z.units)] for name, z in zones.items()]
    if across is not None:
        rows.append(["across networks (safe in each)", across.verdict,
                     f"{across.start:.0%}-{across.end:.0%}" if across.verdict == "zone" else "",
                     across.bounds[0] if across.verdict == "zone" else across.reason,
                     across.bounds[1] if across.verdict == "zone" else "", ""])
    return Table("the rewinding safe zone: where both weight and LR rewinding beat fine-tuning",
                 ["network", "verdict", "zone (t / T)", "lower end (or why no zone)", "upper end", "units"], rows)


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
