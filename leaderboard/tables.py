"""The leaderboard's tables, as plain lists of rows, shared by the web page and the Markdown summary."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.analysis import statistics as st
from harness.analysis.safe_zone import NetworkZone, SafeZones, ScopeZone, scope_name
from harness.analysis.zone_grid import HEADLINE, READINGS
from harness.analysis.zone_readings import Reading


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""


def fmt(x: float, digits: int = 2) -> str:
    return "" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{digits}f}"


def ranking(best: pd.DataFrame, density: float) -> Table:
    """Methods ranked by best-validated median test score at one density (best first, in the direction
    of the task's metric)."""
    at = best[np.isclose(best["density"], density)]
    at = at.assign(_worse=-st.signs(at) * at["test_median"]).sort_values("_worse", kind="stable")
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


READING_TITLES = {
    "descriptive": "descriptive (the paper's reading, by rule)",
    "conditional": "conditional (certified for these base networks)",
    "generalizing": "generalizing (to new base networks)",
}


def interval(row: pd.Series) -> str:
    """An effect's interval; one that reaches neither side's bound (too few units or seeds) says so."""
    if not row["bounded"]:
        return "[too few for an interval]"
    return f"[{row['ci_low']:+.2f}, {row['ci_high']:+.2f}]"


def level(value: float | None) -> str:
    return "" if value is None or pd.isna(value) or value <= 0 else f"{value:.3g}"


def share(reading: Reading, fraction: float) -> str:
    return f"{reading.inclusion.get(fraction, np.nan):.0%}" if len(reading.inclusion) else ""


def conditional_effect(effects: pd.DataFrame, method: str, fraction: float) -> str:
    at = effects[(effects["method"] == method) & np.isclose(effects["fraction"], fraction)]
    if at.empty or not at["units"].iloc[0]:
        return ""
    r = at.iloc[0]
    return (f"{r['median']:+.2f} {interval(r)}, wins {r['wins']} of {r['nonzero']} nonzero "
            f"({r['ties']} tied)")


def generalizing_effect(effects: pd.DataFrame, method: str, fraction: float) -> str:
    at = effects[(effects["method"] == method) & np.isclose(effects["fraction"], fraction)]
    if at.empty or not at["seeds"].iloc[0]:
        return ""
    r = at.iloc[0]
    return (f"{r['median']:+.2f} {interval(r)}; P(win) {r['win_rate']:.2f} "
            f"[{r['win_low']:.2f}, {r['win_high']:.2f}] ({r['wins']} of {r['seeds']}, {r['ties']} tied); "
            f"within margin at {r['worst_density']:.3g}: "
            f"{r['within']} of {r['within_of']}")


def reading_table(zone: NetworkZone, kind: str) -> Table:
    """One network, one statistical reading: per retraining time, each method's effect and the call."""
    reading = zone.readings[kind]
    methods = list(dict.fromkeys(reading.effects["method"]))
    effect = conditional_effect if kind == "conditional" else generalizing_effect
    rows = []
    for _, r in reading.axis.iterrows():
        f = r["fraction"]
        rows.append([f"{f:.0%}", *(effect(reading.effects, m, f) for m in methods), f"{r['p_safe']:.4f}",
                     level(r["level"]), r["call"], share(reading, f)])
    if kind == "conditional":
        note = ("Unit: a (density, seed) cell with the same base network, mask and t for the three methods "
                f"({zone.units} here), at the densities considered. Effect: Hodges-Lehmann median of method - "
                "fine-tuning over the nonzero differences (the signed-rank test drops zeros), with the interval "
                "that inverts the test at the level the time was tested at (two-sided 1 - 2 x level; "
                "'unbounded': too few units). p: the larger of the two exact one-sided signed-rank p-values; a "
                "time where some method's median falls below fine-tuning's lowest seed at a considered density "
                "is not tested (p = 1). Assumes the cells independent: cells of one seed share a base network, "
                "so this certifies these base networks' runs, not new ones.")
    else:
        note = (f"Unit: a seed ({zone.seeds} here). Effect: the median over seeds of the method's mean difference "
                "over the densities considered, with the sign test's order-statistic interval at the tested level; "
                "P(win): the share of seeds on which it beats fine-tuning (a tie is no win), Clopper-Pearson "
                f"interval; within margin: seeds whose difference is above -{reading.margin:g} at the density "
                "where that is rarest. p: the largest exact sign-test p over both methods, their 'better' claims "
                "and every density's 'not worse by more than the margin' claim.")
    note += (f" Tested outward from the anchors {', '.join(f'{a:.0%}' for a in reading.anchors)} of T, alpha "
             f"{reading.alpha:g} split equally, by a graphical procedure (family-wise error of calling an unsafe "
             "time safe at most alpha). 'unsafe': a method is significantly worse. 'stable': the share of seed "
             "resamples whose zone holds the time (a stability figure, not a confidence level).")
    return Table(f"{READING_TITLES[kind]}: {reading.describe()}",
                 ["t / T", *(f"{m} - fine-tuning" for m in methods), "p (safe)", "tested at", "call", "stable"],
                 rows, note)


def verdicts_table(found: SafeZones) -> Table:
    """Every network's three readings, then each scope's across its networks."""
    rows = []
    for scope, z in sorted(found.scopes.items(), key=lambda item: item[0] != HEADLINE):
        rows.append([f"across {len(z.networks)} networks: {scope_name(scope)}"
                     + (" (headline)" if scope == HEADLINE else ""), scope_name(scope), "",
                     *(z.readings[k].span() for k in READINGS), ""])
    for name, z in found.networks.items():
        rows.append([name, scope_name(z.scope), ", ".join(f"{d:.3g}" for d in z.densities),
                     *(z.readings[k].span() for k in READINGS), str(z.seeds)])
    note = ("descriptive: both rewinding methods' median over seeds at least fine-tuning's, at every density "
            "considered; set this beside the paper's 25%-90%, read off its plots. conditional: what these base "
            "networks' runs certify ((density, seed) cells as units). generalizing: what holds for new base networks "
            "(seeds as units). Both tested with family-wise error alpha. Across networks: safe in each network of a "
            "scope; schedules and structures are never combined. Densities: "
            + ("the paper's (each network's no-drop and 1-point-drop densities)" if found.density_rule == "paper"
               else f"{found.density_rule}") + ".")
    return Table("the rewinding safe zone: where both weight and LR rewinding beat fine-tuning, three readings",
                 ["network", "scope", "densities", *READINGS, "seeds"], rows, note)


def readings_text(readings: dict[str, Reading], where: str) -> list[str]:
    return [f"{where}, {READING_TITLES[k]}: {r.describe()}" + stability_text(r) + "." for k, r in readings.items()]


def stability_text(reading: Reading) -> str:
    if reading.no_zone_share is None:
        return ""
    return f" (stability: {reading.no_zone_share:.0%} of seed resamples find no zone)"


def across_table(zone: ScopeZone) -> Table:
    """One scope: per common retraining time, each reading's joint evidence and call."""
    c, g, d = (zone.readings[k] for k in ("conditional", "generalizing", "descriptive"))
    rows = []
    for i, r in c.axis.iterrows():
        span = f"{r['low']:.1%}" if np.isclose(r["low"], r["high"]) else f"{r['low']:.1%}-{r['high']:.1%}"
        gr = g.axis.iloc[i]
        rows.append([span, d.axis["call"].iloc[i], f"{r['p_safe']:.4f}", level(r["level"]), r["call"],
                     share(c, r["fraction"]), f"{gr['p_safe']:.4f}", level(gr["level"]), gr["call"],
                     share(g, gr["fraction"])])
    note = ("Each network speaks for a retraining time through its own grid point there, or the two around it (both "
            "must be safe); a time outside a network's grid cannot be safe (p = 1). The time is safe across networks "
            "only if it is safe in each (the largest p), tested from the anchors as in each network. Networks: "
            + "; ".join(zone.networks) + ".")
    return Table(f"across networks, {scope_name(zone.scope)}",
                 ["t / T", "descriptive", "conditional p", "tested at", "call", "stable", "generalizing p",
                  "tested at", "call", "stable"], rows, note)


def profile_table(profile: pd.DataFrame, scope: tuple[str, str]) -> Table:
    wide = profile.pivot_table(index="method", columns="gap", values="share").sort_values(
        by=list(profile["gap"].drop_duplicates()), ascending=False)
    rows = [[m, *(f"{v:.0%}" for v in r)] for m, r in wide.iterrows()]
    cells = int(profile["cells"].iloc[0]) if len(profile) else 0
    return Table(f"performance profile, {scope_name(scope)}: share of the {cells} (network, density) cells where a "
                 "method is within x points of the best", ["method", *(f"x = {g:g}" for g in wide.columns)], rows,
                 "Best-validated median test score per cell (the retraining time chosen on validation).")


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


def cost_table(ranked: pd.DataFrame, axis_label: str, density: float) -> Table:
    """The methods ranked within each budget on one cost axis, at one density (``harness.analysis.cost``)."""
    at = ranked[np.isclose(ranked["density"], density)]
    rows = [[f"{r['budget']:.4g}", str(int(r["rank"])), r["method"], fmt(r["test_median"]),
             f"{fmt(r['test_min'])}-{fmt(r['test_max'])}", f"{r['cost']:.4g}", f"{r['retraining_epochs']:g}"]
            for _, r in at.iterrows()]
    return Table(f"at equal {axis_label}, density {density:.4g}",
                 ["budget", "rank", "method", "test median", "test min-max", "its cost", "t"], rows,
                 note="each method's best median over its cells that cost at most the budget")


def versus_table(found: list, axis_label: str, where: str, baseline: str = "fine-tuning") -> Table:
    """Each method against the baseline at equal cost, the seed the unit (``harness.analysis.cost.Versus``)."""
    rows = [[v.method, f"{v.pair_wins}/{v.pairs}", f"{v.seed_wins}/{v.seeds}", f"{v.median_difference:+.3g}",
             f"{v.p:.3g}", f"{v.p_holm:.3g}"] for v in found]
    return Table(f"against {baseline} at equal {axis_label}, {where}",
                 ["method", "cells better", "seeds better", "median difference", "p (sign test, seeds)",
                  "p (Holm)"], rows,
                 note=f"cells paired with {baseline}'s at the same density, seed and cost (> 0); a seed is better "
                      "when the median of its paired differences favours the method (differences: positive = "
                      "better, in the metric's units); p: one-sided exact sign test over seeds")
