"""The rewinding safe zone, by the paper's definition: "the maximal region (as a percentage of
original training time) across all networks in which both forms of rewinding outperform
fine-tuning for an equivalent search cost".

A network is one (task, pruning, schedule) group. Its runs form a grid: retraining time f (a
fraction of T) x density d x seed s, for fine-tuning, weight rewinding and LR rewinding, the same
base network, mask and t for the three. The zone is read three ways, each named on the page and in
``safe_zone.json``:

**descriptive**, the paper's reading by rule. At f, a rewinding method *matches* fine-tuning at a
density when its median over seeds is at least fine-tuning's median (the curves the paper's plots
draw; "matches" is "not below", with no allowance for the seeds' spread, so that a time with no
effect passes at each density only about half the time). f is in the zone when both methods match
at every density considered; the zone is the longest run of such times. A point estimate with no
error control: this is the reading to set beside the paper's 25%-90%.

**conditional** on these base networks. The unit is a (density, seed) cell, and each method's claim
is a one-sided exact Wilcoxon signed-rank test of its differences against fine-tuning over the cells
of the densities considered (zeros dropped, as the test does). Its null is that the methods'
results are exchangeable within each cell, independently across cells. Cells of one seed share a
base network and its data order, and in iterative schedules each round prunes the previous one, so
across new base networks the cells are not independent: under within-seed correlation the test
rejects more often than alpha (``harness.analysis.zone_simulation`` measures how much). What it certifies is
a statement about these base networks' runs. A time is tested only if at every considered density
both methods' medians reach at least fine-tuning's lowest seed (a filter applied before the test can
only remove rejections, so it adds no error): the pooled test alone would call a time safe while a
method loses points at some density.

**generalizing** over base networks. A seed draws a whole replication (base network, data order,
every retraining run pruned from it), so seeds are i.i.d. while everything within a seed is
correlated: the seed is the replicate, and each test below has one observation per seed. At f, a
method's claim is the intersection of two kinds of claims, each an exact sign test over seeds
(``harness.analysis.sign_test``: valid for the composite null "P(claim holds on a new base network) <= 1/2"
with no assumption on the differences' shape; a tie counts against the claim):
- *better*: the seed's mean difference over the densities considered is positive on most base
  networks;
- *not worse at any density*: at each density considered, the seed's difference is above
  ``-margin`` (1 point by default) on most base networks, a non-inferiority claim per density.
"f is safe" is the intersection over both methods and all these claims, so its p-value is the
largest of theirs: an intersection-union test (Berger 1982), inside alpha with no correction and for
any dependence between densities. Asking each density to be *better* would be a stricter estimand
and, with 10 densities, needs far more seeds than any study runs (``harness.analysis.zone_simulation``); the
margin keeps a time from being called safe while a method loses points at some density. The
estimand is what a researcher choosing a retraining time for a new network wants: on most new base
networks rewinding wins on average over these densities, and loses at none by more than the margin.
With n seeds the best p-value is 2^-n: with the paper's 3 seeds (1/8) nothing can be shown at 5%.
A t-test on per-seed summaries would need normality of 3 values, and a mixed model with seed as a
random effect a variance component estimated from 3 levels; the sign test needs neither.

**Across retraining times** (both statistical readings): the zone is contiguous and may lie
anywhere, so alpha is split equally over pre-declared anchors (25%, 50% and 75% of T by default,
each network's nearest grid points) and a graphical procedure (``harness.analysis.graphical``, Bretz et al.
2009) walks outward from each: a rejected time passes half its level to each neighbour, and levels
flow past rejected times to the fronts of each run. It controls the family-wise rate of calling any
unsafe time safe at alpha in the strong sense, for any dependence between times. The zone is the
longest run of rejected times; other runs are listed. "No zone" is a finding only with evidence: at
every time some method (at some density, for the generalizing reading) is significantly worse,
Bonferroni over the methods and densities (a false "no zone" needs a wrong call at a truly safe time,
at most alpha). Otherwise the verdict is *inconclusive*, with how many units or seeds would do.

**Across networks**, one verdict per scope (schedule, and unstructured or structured pruning):
schedules and structures are never intersected with each other, and the headline is the paper's,
one-shot unstructured. Grids differ (t/182, t/90, t/5), so networks are compared on a common axis:
the union of their grid points merged within ``SAME_FRACTION``; a network speaks for an axis point
through its own point there, or the two around it (both must be safe). Safe at f in every network is
again an intersection-union test (the largest p), run through the same graphical procedure. "No
zone" across networks needs, at every axis point, some network significantly unsafe there,
Bonferroni over the networks. The networks failing just beyond each end are named as its bounds.

Stability (not a confidence interval): the seeds are resampled with replacement, each resample
keeping a seed's whole block of densities, and both statistical readings are recomputed; the page
reports the share of resamples with no zone and, per time, the share with the time in the zone.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

import methods as _registered  # noqa: F401  (registers the pruning strategies whose structure defines a scope)
from harness.analysis import results_table, sign_test
from harness.analysis import statistics as st
from harness.analysis.graphical import Rejections, graphical, line_graph, runs
from harness.analysis.signed_rank import hodges_lehmann, noether_units, signed_rank_rows, units_to_reach
from harness.analysis.signed_rank import smallest_p as smallest_p_units
from harness.analysis.statistics import GROUP
from harness.core.errors import HarnessError
from harness.core.metrics import metric_of
from methods.pruning import PRUNING, Prunes

ALPHA = 0.05
ANCHORS = (0.25, 0.5, 0.75)
REWINDING = ("weight-rewinding", "lr-rewinding")
BASELINE = "fine-tuning"
SAME_FRACTION = 0.02  # grid points closer than this (as a fraction of T) are the same retraining time
POWER = 0.8
MARGIN = 1.0  # points of the metric a rewinding method may lose at one density and still count as not worse
READINGS = ("descriptive", "conditional", "generalizing")
TESTED = ("conditional", "generalizing")
DENSITY_RULES = ("paper", "all")
HEADLINE = ("one-shot", "unstructured")
STRUCTURE = {Prunes.WEIGHTS: "unstructured", Prunes.GROUPS: "semi-structured", Prunes.FILTERS: "structured"}


# -- one network's grid --------------------------------------------------------------------------


@dataclass(frozen=True)
class Paired:
    """One network's runs on a full grid: ``values[method]`` is (times, densities, seeds), NaN where
    a run is missing; the three methods share every index."""

    name: str
    fractions: np.ndarray
    densities: np.ndarray  # descending
    seeds: np.ndarray
    values: dict[str, np.ndarray]  # oriented by the metric's sign: higher is better
    bound: float  # the largest difference the metric allows

    def diff(self, method: str) -> np.ndarray:
        return self.values[method] - self.values[BASELINE]

    def restrict(self, densities: np.ndarray) -> Paired:
        keep = np.isin(self.densities, densities)
        return Paired(self.name, self.fractions, self.densities[keep], self.seeds,
                      {m: v[:, keep, :] for m, v in self.values.items()}, self.bound)

    def resample(self, pick: np.ndarray) -> Paired:
        return Paired(self.name, self.fractions, self.densities, self.seeds[pick],
                      {m: v[:, :, pick] for m, v in self.values.items()}, self.bound)

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(m for m in self.values if m != BASELINE)


def paired(group: pd.DataFrame, name: str, methods: tuple[str, ...] = REWINDING, metric: str = "test_acc") -> Paired:
    present = set(group["method"])
    if BASELINE not in present or not all(m in present for m in methods):
        absent = [m for m in methods if m not in present] or [BASELINE]
        raise HarnessError(f"the safe zone needs {BASELINE} and {', '.join(methods)} at the same retraining times "
                           f"and units; no pairs for {', '.join(absent)}")
    rows = group[group["method"].isin((BASELINE, *methods))]
    per_method = {m: rows[rows["method"] == m] for m in (BASELINE, *methods)}
    fractions = sorted(set.intersection(*(set(r["fraction"]) for r in per_method.values())))
    if not fractions:
        raise HarnessError(f"the safe zone needs {BASELINE} and {', '.join(methods)} at the same retraining times; "
                           "they share none")
    densities = np.array(sorted(set(rows["density"]), reverse=True))
    seeds = np.array(sorted(set(rows["seed"].astype(int))))
    f_index = {f: i for i, f in enumerate(fractions)}
    d_index = {d: i for i, d in enumerate(densities)}
    s_index = {s: i for i, s in enumerate(seeds)}
    kind = metric_of(str(group["metric"].iloc[0]) if "metric" in group.columns else "accuracy")
    values = {}
    for m, r in per_method.items():
        r = r[r["fraction"].isin(f_index)]
        grid = np.full((len(fractions), len(densities), len(seeds)), np.nan)
        grid[r["fraction"].map(f_index).to_numpy(), r["density"].map(d_index).to_numpy(),
             r["seed"].astype(int).map(s_index).to_numpy()] = r[metric].to_numpy(dtype=float)
        values[m] = kind.sign * grid  # oriented: a positive difference favours rewinding for any metric
    common = np.logical_and.reduce([~np.isnan(v) for v in values.values()])
    for v in values.values():
        v[~common] = np.nan  # a unit counts only where all three methods ran
    return Paired(name, np.array(fractions), densities, seeds, values, kind.span)


def chosen_densities(group: pd.DataFrame, rule: str | Sequence[float]) -> tuple[np.ndarray, str]:
    """The densities a network's zone is read at, and the rule in words.

    ``paper``: the highest compression with no drop in accuracy and the highest within one point of
    the unpruned network (best-validated median test score of any method, as the paper's Figure 3),
    falling back to every density when the table gives no unpruned score or no density qualifies.
    ``all``: every density of the grid. A list: those target densities."""
    grid = np.array(sorted(set(group["density"]), reverse=True))
    if isinstance(rule, str) and rule == "all":
        return grid, "every density of the grid"
    if isinstance(rule, str) and rule == "paper":
        found: dict[str, float] = {}
        for drop, what in ((0.0, "no-drop"), (1.0, "1-point-drop")):
            at = st.compression_at_drop(group, drop)
            if len(at) and not pd.isna(at["density"].iloc[0]):
                found[what] = float(at["density"].iloc[0])
        if not found:
            return grid, ("every density of the grid (the paper's no-drop and 1-point-drop densities need an "
                          "unpruned score that some density reaches; none does here)")
        picked = ", ".join(f"{what} {d:.3g}" for what, d in found.items())
        missing = "" if len(found) == 2 else " (no density keeps the unpruned score)"
        return np.array(sorted(set(found.values()), reverse=True)), f"the paper's: {picked}{missing}"
    if isinstance(rule, str):
        raise HarnessError(f"--zone-densities must be one of {', '.join(DENSITY_RULES)} or a list of densities, "
                           f"not {rule!r}")
    targets = group.groupby("density")["target_density"].first()
    picked = []
    for want in rule:
        hit = [d for d, t in targets.items()
               if math.isclose(t, want, rel_tol=1e-3) or math.isclose(d, want, rel_tol=1e-3)]
        if not hit:
            valid = ", ".join(f"{t:.4g}" for t in sorted(set(targets), reverse=True))
            raise HarnessError(f"--zone-densities {want:g} is not a density of this grid; valid: {valid}")
        picked.append(hit[0])
    return np.array(sorted(set(picked), reverse=True)), "the densities asked for"


# -- the readings of one network -----------------------------------------------------------------


@dataclass
class Reading:
    """One reading's verdict on one network, or across the networks of a scope.

    ``verdict``: "zone", "no zone" or "inconclusive". ``axis``: per retraining time, its fraction
    and call, with the p-values of "safe" and "unsafe" and the level it was tested at (the
    descriptive reading: its margin instead). ``effects``: per (method, time), the effect sizes.
    ``segments``: every run of safe times, the zone being the longest. ``stability``: the share of
    seed resamples with no zone, and per time the share with it in the zone."""

    kind: str
    verdict: str
    start: float | None = None
    end: float | None = None
    axis: pd.DataFrame = field(default_factory=pd.DataFrame)
    reason: str = ""
    bounds: tuple[str, str] = ("", "")
    segments: list[tuple[float, float]] = field(default_factory=list)
    effects: pd.DataFrame | None = None
    needed: str = ""
    alpha: float = ALPHA
    anchors: tuple[float, ...] = ANCHORS
    margin: float | None = None  # the generalizing reading's non-inferiority margin per density
    no_zone_share: float | None = None
    inclusion: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))

    def span(self) -> str:
        if self.verdict != "zone":
            return self.verdict
        return f"{self.start:.0%} of T" if self.start == self.end else f"{self.start:.0%}-{self.end:.0%} of T"

    def describe(self) -> str:
        if self.verdict != "zone":
            return f"{self.verdict}: {self.reason}"
        text = f"safe zone {self.span()}"
        others = [s for s in self.segments if s != (self.start, self.end)]
        if others:
            text += " (also safe: " + ", ".join(f"{a:.0%}-{b:.0%}" for a, b in others) + ")"
        text += f"; lower end: {self.bounds[0]}; upper end: {self.bounds[1]}"
        if self.kind == "descriptive":
            text += "; the paper reads 25%-90% off its plots"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "span": self.span(), "start": self.start, "end": self.end,
                "reason": self.reason,
                "bounds": list(self.bounds), "segments": [list(s) for s in self.segments], "needed": self.needed,
                "alpha": self.alpha, "anchors": list(self.anchors), "margin": self.margin,
                "stability": None if self.no_zone_share is None else {
                    "no_zone_share": self.no_zone_share,
                    "in_zone_share": {f"{f:g}": float(v) for f, v in self.inclusion.items()}}}


def longest(segments: list[tuple[int, int]], fractions: Sequence[float]) -> tuple[int, int]:
    """The longest run (ties: the one nearest half of T)."""
    return max(segments, key=lambda s: (s[1] - s[0], -abs((fractions[s[0]] + fractions[s[1]]) / 2 - 0.5)))


def over_seeds(values: np.ndarray, reduce: str) -> np.ndarray:
    """The median or minimum over the seeds axis, ignoring missing runs (numpy's NaN-aware median is
    slow, and a full grid has none)."""
    if not np.isnan(values).any():
        return np.median(values, axis=2) if reduce == "median" else values.min(axis=2)
    with quiet_nan():
        return np.nanmedian(values, axis=2) if reduce == "median" else np.nanmin(values, axis=2)


def floor_of(p: Paired, rule: str) -> np.ndarray:
    """Per (time, density), what a rewinding method's median must reach: fine-tuning's median over
    seeds (``median``: the descriptive reading) or its lowest seed (``spread``: the filter of the
    conditional reading, which only keeps out times where a method falls below all of fine-tuning's seeds)."""
    return over_seeds(p.values[BASELINE], "median" if rule == "median" else "min")


def margins(p: Paired, rule: str) -> np.ndarray:
    """Per (method, time, density): the method's median over seeds minus the floor of ``rule``."""
    floor = floor_of(p, rule)
    return np.array([over_seeds(p.values[m], "median") - floor for m in p.methods])


def matching(p: Paired, rule: str) -> np.ndarray:
    """Per time: both methods reach the floor of ``rule`` at every density considered."""
    return (margins(p, rule) >= 0).all(axis=(0, 2))


@contextlib.contextmanager
def quiet_nan() -> Iterator[None]:
    """numpy's all-NaN warnings: a missing unit is NaN by design here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def descriptive(p: Paired, alpha: float = ALPHA, anchors: tuple[float, ...] = ANCHORS) -> Reading:
    ok = matching(p, "median")
    with quiet_nan():
        margin = np.nanmin(margins(p, "median"), axis=(0, 2))
    axis = pd.DataFrame({"fraction": p.fractions, "margin": margin,
                         "call": np.where(ok, "matches", "falls short")})
    found = runs(ok)
    reading = Reading("descriptive", "zone", axis=axis, alpha=alpha, anchors=anchors)
    if not found:
        reading.verdict = "no zone"
        reading.reason = ("at every retraining time, some rewinding method's median falls below fine-tuning's median "
                          "at some density considered")
        return reading
    lo, hi = longest(found, p.fractions)
    reading.start, reading.end = float(p.fractions[lo]), float(p.fractions[hi])
    reading.segments = [(float(p.fractions[a]), float(p.fractions[b])) for a, b in found]
    reading.bounds = (short_of(axis, lo - 1, "lower"), short_of(axis, hi + 1, "upper"))
    return reading


def short_of(axis: pd.DataFrame, index: int, side: str) -> str:
    if index < 0 or index >= len(axis):
        return f"the {side} end of the retraining times"
    row = axis.iloc[index]
    return f"{row['fraction']:.0%} (a median {-row['margin']:.2f} below fine-tuning's)"


@dataclass(frozen=True)
class Tests:
    """One statistical reading's per-time evidence, before the procedure across times."""

    p_safe: np.ndarray  # per time
    p_unsafe: np.ndarray  # per time
    effects: pd.DataFrame | None  # per (method, time), filled once the levels are known


def conditional_tests(p: Paired) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per time: the intersection-union p of "both methods beat fine-tuning" over (density, seed)
    cells (1 where the filter of the module docstring fails), the Bonferroni p of "some method is
    worse", and the differences as (method, time, cell)."""
    guard = matching(p, "spread")
    d = np.array([p.diff(m) for m in p.methods])
    cells = d.reshape(len(p.methods), len(p.fractions), -1)
    greater, less, _ = signed_rank_rows(cells.reshape(-1, cells.shape[2]))
    greater = greater.reshape(len(p.methods), -1)
    less = less.reshape(len(p.methods), -1)
    p_safe = np.where(guard, greater.max(axis=0), 1.0)
    p_unsafe = np.minimum(less.min(axis=0) * len(p.methods), 1.0)
    return p_safe, p_unsafe, cells


def seed_counts(p: Paired) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per (method, time, density): seeds won, lost, and present."""
    d = np.array([p.diff(m) for m in p.methods])
    present = ~np.isnan(d)
    return (d > 0).sum(axis=3), (d < 0).sum(axis=3), present.sum(axis=3)


@dataclass(frozen=True)
class SeedClaims:
    """The generalizing reading's evidence at each (method, time): per seed, the mean difference over
    the densities considered (``summary``), the seeds on which it is positive or negative, and per
    density the seeds whose difference is above ``-margin``."""

    summary: np.ndarray  # (method, time, seed)
    wins: np.ndarray  # (method, time)
    losses: np.ndarray
    seeds: np.ndarray
    within: np.ndarray  # (method, time, density)
    present: np.ndarray
    p_better: np.ndarray  # (method, time)
    p_within: np.ndarray  # (method, time, density)

    @property
    def p_method(self) -> np.ndarray:
        """Per (method, time): the intersection-union p of "better on average and within the margin
        at every density"."""
        return np.maximum(self.p_better, self.p_within.max(axis=2))


def seed_claims(p: Paired, margin: float) -> SeedClaims:
    d = np.array([p.diff(m) for m in p.methods])  # (method, time, density, seed)
    present = ~np.isnan(d)
    with quiet_nan():
        summary = np.nanmean(d, axis=2) if not present.all() else d.mean(axis=2)
    seeds = (~np.isnan(summary)).sum(axis=2)
    wins, losses = (summary > 0).sum(axis=2), (summary < 0).sum(axis=2)
    within, count = (d > -margin).sum(axis=3), present.sum(axis=3)
    return SeedClaims(summary, wins, losses, seeds, within, count, sign_test.p_greater(wins, seeds),
                      sign_test.p_greater(within, count))


def generalizing_tests(p: Paired, margin: float = MARGIN) -> tuple[np.ndarray, np.ndarray, SeedClaims]:
    """Per time: the p-value of "safe" (the largest over the methods' claims), the Bonferroni p of
    "some method is worse on most base networks", and the evidence."""
    claims = seed_claims(p, margin)
    p_safe = claims.p_method.max(axis=0)
    p_unsafe = np.minimum(sign_test.p_greater(claims.losses, claims.seeds).min(axis=0) * len(p.methods), 1.0)
    return p_safe, p_unsafe, claims


def anchor_points(fractions: Sequence[float], anchors: Sequence[float]) -> list[int]:
    return sorted({nearest(fractions, a) for a in anchors})


def nearest(points: Sequence[float], target: float) -> int:
    return int(np.argmin([abs(p - target) for p in points]))


def call(p_unsafe: float, level: float, safe: bool, alpha: float) -> str:
    if safe:
        return "safe"
    if p_unsafe <= alpha:
        return "unsafe"
    return "undecided" if level > 0 else "not reached"


def safe_runs(fractions: Sequence[float], p_safe: np.ndarray, alpha: float, anchors: Sequence[float]
              ) -> tuple[Rejections, list[tuple[int, int]]]:
    """The graphical procedure across times: its rejections, and the runs of safe times."""
    weights, transitions = line_graph(len(fractions), anchor_points(fractions, anchors), alpha)
    result = graphical(p_safe, weights, transitions)
    return result, runs(result.rejected)


def procedure(fractions: Sequence[float], p_safe: np.ndarray, p_unsafe: np.ndarray, alpha: float,
              anchors: Sequence[float]) -> tuple[pd.DataFrame, list[tuple[int, int]]]:
    """The graphical procedure across times: the axis table, and the runs of safe times."""
    result, found = safe_runs(fractions, p_safe, alpha, anchors)
    axis = pd.DataFrame({"fraction": list(fractions), "p_safe": p_safe, "p_unsafe": p_unsafe,
                         "level": result.levels,
                         "call": [call(pu, lv, r, alpha) for pu, lv, r in
                                  zip(p_unsafe, result.levels, result.rejected, strict=True)]})
    return axis, found


def end_reason(axis: pd.DataFrame, index: int, side: str) -> str:
    if index < 0 or index >= len(axis):
        return f"the {side} end of the retraining times"
    row = axis.iloc[index]
    if row["call"] == "unsafe":
        return f"{row['fraction']:.0%} (a rewinding method is worse than fine-tuning: p = {row['p_unsafe']:.3g})"
    tested = f"at level {row['level']:.3g}" if row["level"] > 0 else "never reached"
    return f"{row['fraction']:.0%} (not shown safe: p = {row['p_safe']:.3g}, {tested})"


def tested_level(axis: pd.DataFrame, i: int, alpha: float, anchors: int) -> float:
    """The level a time was tested at, or an anchor's share where it was never reached."""
    level = float(axis["level"].iloc[i])
    return level if level > 0 else alpha / anchors


def conditional(p: Paired, alpha: float = ALPHA, anchors: tuple[float, ...] = ANCHORS) -> Reading:
    p_safe, p_unsafe, samples = conditional_tests(p)
    axis, found = procedure(p.fractions, p_safe, p_unsafe, alpha, anchors)
    k = len(anchor_points(p.fractions, anchors))
    rows = []
    for i, m in enumerate(p.methods):
        for f, x in enumerate(samples[i]):
            x = x[~np.isnan(x)]
            level = tested_level(axis, f, alpha, k)
            nonzero = x[x != 0]
            est = hodges_lehmann(nonzero, confidence=1 - 2 * level, bounds=(-p.bound, p.bound))
            rows.append({"method": m, "fraction": p.fractions[f], "units": len(x), "nonzero": len(nonzero),
                         "ties": int((x == 0).sum()), "median": est.median, "ci_low": est.low, "ci_high": est.high,
                         "bounded": bool(est.low > -p.bound or est.high < p.bound),
                         "confidence": 1 - 2 * level, "lead": est.lead, "wins": int((x > 0).sum())})
    reading = settle("conditional", p, axis, found, alpha, anchors, pd.DataFrame(rows))
    if reading.verdict == "inconclusive":
        reading.needed = units_needed(reading.effects, axis, p, alpha, anchors)
        reading.reason += "; " + reading.needed
    return reading


def generalizing(p: Paired, alpha: float = ALPHA, anchors: tuple[float, ...] = ANCHORS,
                 margin: float = MARGIN) -> Reading:
    p_safe, p_unsafe, claims = generalizing_tests(p, margin)
    axis, found = procedure(p.fractions, p_safe, p_unsafe, alpha, anchors)
    k = len(anchor_points(p.fractions, anchors))
    rows = []
    for i, m in enumerate(p.methods):
        for f in range(len(p.fractions)):
            y = claims.summary[i, f][~np.isnan(claims.summary[i, f])]
            level = tested_level(axis, f, alpha, k)
            low, high = sign_test.median_interval(y, 1 - 2 * level) if len(y) else (-np.inf, np.inf)
            w, size = int(claims.wins[i, f]), int(claims.seeds[i, f])
            rate_low, rate_high = sign_test.win_rate_interval(w, size, 1 - 2 * level)
            j = int(np.argmax(claims.p_within[i, f]))  # the density that binds the margin's claim
            rows.append({"method": m, "fraction": p.fractions[f], "seeds": size, "wins": w,
                         "ties": int(size - w - claims.losses[i, f]),
                         "median": float(np.median(y)) if len(y) else np.nan,
                         "ci_low": max(low, -p.bound), "ci_high": min(high, p.bound), "confidence": 1 - 2 * level,
                         "win_rate": w / size if size else np.nan, "win_low": rate_low, "win_high": rate_high,
                         "p_better": float(claims.p_better[i, f]), "worst_density": float(p.densities[j]),
                         "within": int(claims.within[i, f, j]), "within_of": int(claims.present[i, f, j]),
                         "p_within": float(claims.p_within[i, f, j])})
    reading = settle("generalizing", p, axis, found, alpha, anchors, pd.DataFrame(rows))
    reading.margin = margin
    if reading.verdict == "inconclusive":
        reading.needed = seeds_needed(claims, p, alpha, anchors)
        reading.reason += "; " + reading.needed
    return reading


def settle(kind: str, p: Paired, axis: pd.DataFrame, found: list[tuple[int, int]], alpha: float,
           anchors: tuple[float, ...], effects: pd.DataFrame) -> Reading:
    reading = Reading(kind, "zone", axis=axis, effects=effects, alpha=alpha, anchors=anchors)
    if found:
        lo, hi = longest(found, p.fractions)
        reading.start, reading.end = float(p.fractions[lo]), float(p.fractions[hi])
        reading.segments = [(float(p.fractions[a]), float(p.fractions[b])) for a, b in found]
        reading.bounds = (end_reason(axis, lo - 1, "lower"), end_reason(axis, hi + 1, "upper"))
    elif (axis["p_unsafe"] <= alpha).all():
        reading.verdict = "no zone"
        reading.reason = ("at every retraining time a rewinding method is significantly worse than fine-tuning"
                          + (" at some density" if kind == "generalizing" else "")
                          + f" (one-sided tests, Bonferroni over the claims at each time, alpha {alpha:g})")
    else:
        points = anchor_points(p.fractions, anchors)
        reading.verdict = "inconclusive"
        reading.reason = ("no pre-declared anchor (" + ", ".join(f"{p.fractions[a]:.0%}" for a in points)
                          + f" of T) is shown safe at its level {alpha / len(points):.3g}")
    return reading


def units_needed(effects: pd.DataFrame, axis: pd.DataFrame, p: Paired, alpha: float, anchors: Sequence[float]) -> str:
    """How many (density, seed) cells the conditional reading would need at its best anchor."""
    points = anchor_points(p.fractions, anchors)
    level = alpha / len(points)
    densities = max(len(p.densities), 1)
    best: tuple[float, str] | None = None
    by_units = sorted(points, key=lambda a: -effects.loc[np.isclose(effects["fraction"], p.fractions[a]),
                                                           "nonzero"].min())
    for a in by_units:  # ties go to the anchor with the most evidence
        at = effects[np.isclose(effects["fraction"], p.fractions[a])]
        n = int(at["nonzero"].min())
        if smallest_p_units(n) > level:
            need = units_to_reach(level)
            text = (f"{n} nonzero paired units cannot reach {level:.3g} even if every difference favoured rewinding; "
                    f"at least {need} are needed")
        else:
            need = max(noether_units(lead, level, POWER) for lead in at["lead"])
            if math.isinf(need):
                continue
            need = max(math.ceil(need), n + 1)
            text = (f"at {p.fractions[a]:.0%} of T the estimated effects need about {need} nonzero units for "
                    f"{POWER:.0%} power at {level:.3g} (Noether), {n} are here")
        if best is None or need < best[0]:
            per_seed = n / len(p.seeds) if n else densities  # ties give no sign: fewer units per seed count
            seeds = max(math.ceil(need / per_seed - 1e-9), len(p.seeds) + 1)
            at_densities = "at this density" if densities == 1 else f"at these {densities} densities"
            best = (need, text + f": about {seeds} seeds {at_densities} (now {len(p.seeds)}), at the share of "
                                 "nonzero differences seen here")
    if best is None:
        return ("at every anchor the estimates do not favour rewinding for both methods: more units would not be "
                "expected to show a zone")
    return best[1]


def jeffreys(successes: np.ndarray, n: np.ndarray) -> np.ndarray:
    """The posterior mean of a rate under Jeffreys' prior: 3 wins of 3 give 0.875, not 1."""
    return (successes + 0.5) / (n + 1)


def seeds_needed(claims: SeedClaims, p: Paired, alpha: float, anchors: Sequence[float]) -> str:
    """How many seeds the generalizing reading would need at its best anchor."""
    points = anchor_points(p.fractions, anchors)
    level = alpha / len(points)
    seeds = len(p.seeds)
    reach = sign_test.seeds_to_reach(level)
    head = ""
    if seeds < reach:
        head = (f"{seeds} seeds cannot reach {level:.3g} even if every seed favoured rewinding (the best sign-test p "
                f"is 2^-{seeds} = {sign_test.smallest_p(seeds):.3g}); at least {reach} are needed")
    best: tuple[int, float, float] | None = None
    for a in points:
        rate = float(min(jeffreys(claims.wins[:, a], claims.seeds[:, a]).min(),
                         jeffreys(claims.within[:, a], claims.present[:, a]).min()))
        need = sign_test.seeds_for_power(level, rate, POWER)
        if need is not None and (best is None or need < best[0]):
            best = (need, rate, p.fractions[a])
    if best is None:
        tail = ("at every anchor some method wins on at most half the seeds: more seeds would not be expected to show "
                "a zone")
        return f"{head}; {tail}" if head else tail
    need, rate, where = best
    tail = (f"for {POWER:.0%} power at {where:.0%} of T about {need} seeds, if each claim holds on {rate:.0%} of base "
            f"networks as estimated (Jeffreys, the weakest claim), now {seeds}")
    return f"{head}; {tail}" if head else tail


# -- one network, all readings ------------------------------------------------------------------


@dataclass
class NetworkZone:
    """A network's three readings, the densities they were read at, and the heatmap behind them."""

    name: str
    scope: tuple[str, str]
    readings: dict[str, Reading]
    densities: list[float]
    density_rule: str
    seeds: int
    units: int
    heatmap: pd.DataFrame  # per (method, fraction, density): median difference, seeds won, seeds

    def as_dict(self) -> dict[str, Any]:
        return {"scope": list(self.scope), "densities": self.densities, "density_rule": self.density_rule,
                "seeds": self.seeds, "units": self.units, **{k: r.as_dict() for k, r in self.readings.items()}}


def heatmap(p: Paired) -> pd.DataFrame:
    wins, _, n = seed_counts(p)
    rows = []
    with quiet_nan():
        for i, m in enumerate(p.methods):
            med = over_seeds(p.diff(m), "median")
            for f, frac in enumerate(p.fractions):
                for j, d in enumerate(p.densities):
                    rows.append({"method": m, "fraction": frac, "density": d, "median": med[f, j],
                                 "wins": int(wins[i, f, j]), "seeds": int(n[i, f, j])})
    return pd.DataFrame(rows)


def scope_of(pruning: str, schedule: str) -> tuple[str, str]:
    """(schedule, structure): the networks one across-networks verdict may combine."""
    name = results_table.task_of_label(pruning)
    structure = STRUCTURE[PRUNING.get(name).prunes] if name in PRUNING.names() else f"pruning {pruning}"
    return (schedule, structure)


def scope_name(scope: tuple[str, str]) -> str:
    return f"{scope[0]}, {scope[1]}"


def network_readings(p: Paired, alpha: float, anchors: tuple[float, ...], margin: float) -> dict[str, Reading]:
    return {"descriptive": descriptive(p, alpha, anchors), "conditional": conditional(p, alpha, anchors),
            "generalizing": generalizing(p, alpha, anchors, margin)}


def resampled_pvalues(p: Paired, rng: np.random.Generator, replicates: int, margin: float) -> dict[str, np.ndarray]:
    """Per statistical reading: (replicates, times) p-values of "safe" and "unsafe" on seed resamples."""
    out = {k: (np.ones((replicates, len(p.fractions))), np.ones((replicates, len(p.fractions)))) for k in TESTED}
    if len(p.seeds) < 2:
        return {k: np.ones((0, 2, len(p.fractions))) for k in TESTED}
    for b in range(replicates):
        q = p.resample(rng.integers(0, len(p.seeds), len(p.seeds)))
        out["conditional"][0][b], out["conditional"][1][b], _ = conditional_tests(q)
        out["generalizing"][0][b], out["generalizing"][1][b], _ = generalizing_tests(q, margin)
    return {k: np.stack(v, axis=1) for k, v in out.items()}  # (replicates, safe/unsafe, times)


def attach_stability(reading: Reading, fractions: Sequence[float], replicate_p: np.ndarray) -> None:
    if not len(replicate_p):
        return
    inclusion = np.zeros(len(fractions))
    empty = 0
    for safe, _unsafe in replicate_p:
        _, found = safe_runs(fractions, safe, reading.alpha, reading.anchors)
        if not found:
            empty += 1
            continue
        lo, hi = longest(found, fractions)
        inclusion[lo: hi + 1] += 1
    reading.no_zone_share = empty / len(replicate_p)
    reading.inclusion = pd.Series(inclusion / len(replicate_p), index=list(fractions))


# -- across networks -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CommonAxis:
    """The networks' grids merged into one axis of cells, and which of each network's grid points
    speak for each cell: its points inside the cell, else the two around it (both must be safe),
    none when the cell lies outside its grid."""

    cells: list[list[float]]
    speakers: dict[str, list[list[int]]]  # per network, per cell: indices into its grid

    @property
    def centers(self) -> list[float]:
        return [float(np.mean(c)) for c in self.cells]

    def safe_pvalues(self, p_safe: dict[str, np.ndarray]) -> np.ndarray:
        """Per cell, per network: the intersection-union p-value of its speaking points (1 if none)."""
        out = np.ones((len(self.cells), len(self.speakers)))
        for j, (name, per_cell) in enumerate(self.speakers.items()):
            for i, points in enumerate(per_cell):
                if points:
                    out[i, j] = p_safe[name][points].max()
        return out

    def unsafe_pvalues(self, p_unsafe: dict[str, np.ndarray]) -> np.ndarray:
        """Per cell, per network: the Bonferroni p-value of "some speaking point is unsafe" (1 if none)."""
        out = np.ones((len(self.cells), len(self.speakers)))
        for j, (name, per_cell) in enumerate(self.speakers.items()):
            for i, points in enumerate(per_cell):
                if points:
                    out[i, j] = min(p_unsafe[name][points].min() * len(points), 1.0)
        return out

    def matches(self, ok: dict[str, np.ndarray]) -> np.ndarray:
        """Per cell, per network: every speaking point matches (False if none)."""
        out = np.zeros((len(self.cells), len(self.speakers)), dtype=bool)
        for j, (name, per_cell) in enumerate(self.speakers.items()):
            for i, points in enumerate(per_cell):
                out[i, j] = bool(points) and bool(ok[name][points].all())
        return out


def common_axis(grids: dict[str, list[float]]) -> CommonAxis:
    """The union of the networks' grid points, merged into cells of points within ``SAME_FRACTION``."""
    cells: list[list[float]] = []
    for f in sorted({f for grid in grids.values() for f in grid}):
        if cells and f - cells[-1][0] <= SAME_FRACTION:
            cells[-1].append(f)
        else:
            cells.append([f])
    return CommonAxis(cells, {name: [speaking_points(grid, c) for c in cells] for name, grid in grids.items()})


def speaking_points(grid: list[float], cell: list[float]) -> list[int]:
    inside = [i for i, f in enumerate(grid) if cell[0] - 1e-9 <= f <= cell[-1] + 1e-9]
    if inside:
        return inside
    below = [i for i, f in enumerate(grid) if f < cell[0]]
    above = [i for i, f in enumerate(grid) if f > cell[-1]]
    return [below[-1], above[0]] if below and above else []


def cell_span(cells: list[list[float]], lo: int, hi: int) -> tuple[float, float]:
    """A run of cells as fractions inside every network's own points."""
    start, end = cells[lo][-1], cells[hi][0]
    if start > end:  # one cell holding two nearby grid points
        start = end = float(np.mean(cells[lo]))
    return float(start), float(end)


def across(kind: str, readings: dict[str, Reading], alpha: float, anchors: tuple[float, ...],
           common: CommonAxis | None = None) -> Reading:
    """One reading across networks: safe where safe in each network."""
    common = common or common_axis({n: r.axis["fraction"].tolist() for n, r in readings.items()})
    names = list(readings)
    cells, centers = common.cells, common.centers
    if kind == "descriptive":
        ok = common.matches({n: (r.axis["call"] == "matches").to_numpy() for n, r in readings.items()})
        axis = pd.DataFrame({"fraction": centers, "low": [c[0] for c in cells], "high": [c[-1] for c in cells]})
        for j, n in enumerate(names):
            axis[n] = ok[:, j]
        joint = ok.all(axis=1)
        axis["call"] = np.where(joint, "matches", "falls short")
        found = runs(joint)
        reading = Reading(kind, "zone", axis=axis, alpha=alpha, anchors=anchors)
        if not found:
            reading.verdict, reading.reason = "no zone", "no retraining time matches in every network"
            return reading
        lo, hi = longest(found, centers)
        reading.start, reading.end = cell_span(cells, lo, hi)
        reading.segments = [cell_span(cells, a, b) for a, b in found]
        reading.bounds = tuple(falling_short(axis, names, i, side)  # type: ignore[assignment]
                               for i, side in ((lo - 1, "lower"), (hi + 1, "upper")))
        return reading
    per_safe = common.safe_pvalues({n: r.axis["p_safe"].to_numpy() for n, r in readings.items()})
    per_unsafe = common.unsafe_pvalues({n: r.axis["p_unsafe"].to_numpy() for n, r in readings.items()})
    combined_safe = per_safe.max(axis=1)
    combined_unsafe = np.minimum(per_unsafe.min(axis=1) * len(names), 1.0)
    axis, found = procedure(centers, combined_safe, combined_unsafe, alpha, anchors)
    axis.insert(1, "low", [c[0] for c in cells])
    axis.insert(2, "high", [c[-1] for c in cells])
    for j, n in enumerate(names):
        axis[n] = per_safe[:, j]
    reading = Reading(kind, "zone", axis=axis, alpha=alpha, anchors=anchors)
    if found:
        lo, hi = longest(found, centers)
        reading.start, reading.end = cell_span(cells, lo, hi)
        reading.segments = [cell_span(cells, a, b) for a, b in found]
        reading.bounds = (bounding(axis, names, lo - 1, "lower"), bounding(axis, names, hi + 1, "upper"))
        return reading
    if (combined_unsafe <= alpha).all():
        reading.verdict = "no zone"
        reading.reason = (f"at every retraining time some network is significantly unsafe (Bonferroni over the "
                          f"{len(names)} networks, alpha {alpha:g})")
        return reading
    reading.verdict = "inconclusive"
    points = anchor_points(centers, anchors)
    failing = sorted({n for a in points for j, n in enumerate(names) if per_safe[a, j] > alpha / len(points)})
    reading.reason = (f"no anchor is shown safe in every network; not shown at the anchors in {listing(failing)}: "
                      f"see {'its' if len(failing) == 1 else 'their'} own verdict for the units or seeds needed")
    return reading


def falling_short(axis: pd.DataFrame, names: list[str], index: int, side: str) -> str:
    if index < 0 or index >= len(axis):
        return f"the {side} end of the retraining times"
    row = axis.iloc[index]
    short = [n for n in names if not row[n]]
    return f"{row['fraction']:.0%}, falls short in {listing(short)}"


def bounding(axis: pd.DataFrame, names: list[str], index: int, side: str) -> str:
    if index < 0 or index >= len(axis):
        return f"the {side} end of the retraining times"
    row = axis.iloc[index]
    level = row["level"] if row["level"] > 0 else np.inf
    failing = [n for n in names if row[n] > min(level, row["p_safe"])] or [n for n in names if row[n] == row["p_safe"]]
    return f"{row['fraction']:.0%}, not shown safe in {listing(failing)}"


def listing(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


# -- everything at once -----------------------------------------------------------------------


@dataclass
class ScopeZone:
    """The networks of one scope and each reading across them."""

    scope: tuple[str, str]
    networks: list[str]
    readings: dict[str, Reading]

    def as_dict(self) -> dict[str, Any]:
        return {"networks": self.networks, **{k: r.as_dict() for k, r in self.readings.items()}}


@dataclass
class SafeZones:
    networks: dict[str, NetworkZone]
    scopes: dict[tuple[str, str], ScopeZone]  # scopes of two or more networks
    skipped: dict[str, str]  # networks without the methods the zone needs, and why
    density_rule: str = "paper"

    @property
    def headline(self) -> ScopeZone | None:
        return self.scopes.get(HEADLINE)

    def as_dict(self) -> dict[str, Any]:
        return {"readings": {"descriptive": "the paper's reading by rule: both rewinding methods' median over seeds at "
                             "least fine-tuning's median at every density considered",
                             "conditional": "certified for these base networks: (density, seed) cells as units, "
                             "exact signed-rank tests, family-wise error alpha",
                             "generalizing": "generalizes to new base networks: the seed as the unit, exact sign "
                             "tests (better on average, within the margin at each density), family-wise error alpha"},
                "zone_densities": self.density_rule,
                "networks": {n: z.as_dict() for n, z in self.networks.items()},
                "across": {scope_name(s): z.as_dict() for s, z in self.scopes.items()},
                "headline": scope_name(HEADLINE) if self.headline else None,
                "skipped": self.skipped}


def parse_density_rule(text: str) -> str | tuple[float, ...]:
    """``paper``, ``all`` or a comma-separated list of densities, as ``--zone-densities`` takes it."""
    if text in DENSITY_RULES:
        return text
    try:
        values = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise HarnessError(f"--zone-densities must be one of {', '.join(DENSITY_RULES)} or densities like 0.2,0.1, "
                           f"not {text!r}") from None
    if not values or not all(0 < v <= 1 for v in values):
        raise HarnessError(f"--zone-densities: densities lie in (0, 1], got {text!r}")
    return values


def safe_zones(df: pd.DataFrame, alpha: float = ALPHA, anchors: Sequence[float] = ANCHORS, bootstrap: int = 200,
               seed: int = 0, zone_densities: str | Sequence[float] = "paper", margin: float = MARGIN) -> SafeZones:
    """Every network's three readings and each scope's readings across its networks, with the
    stability of the statistical ones over ``bootstrap`` seed resamples (the same resamples drive
    the networks and the scopes)."""
    if not 0 < alpha < 1:
        raise HarnessError(f"alpha must lie in (0, 1), not {alpha}")
    if not margin >= 0:
        raise HarnessError(f"the margin is a number of points >= 0, not {margin}")
    anchors = tuple(sorted(set(float(a) for a in anchors)))
    if not anchors or not all(0 < a <= 1 for a in anchors):
        raise HarnessError(f"anchors must lie in (0, 1], got {', '.join(f'{a:g}' for a in anchors) or 'none'}")
    rng = np.random.default_rng(seed)
    networks: dict[str, NetworkZone] = {}
    skipped: dict[str, str] = {}
    replicate_p: dict[str, dict[str, np.ndarray]] = {}
    for key, group in df.groupby(GROUP, sort=True):
        name = ", ".join(key)
        try:
            full = paired(group, name)
        except HarnessError as e:
            skipped[name] = str(e)
            continue
        considered, rule = chosen_densities(group, zone_densities)
        considered = considered[np.isin(considered, full.densities)]
        p = full.restrict(considered)
        readings = network_readings(p, alpha, anchors, margin)
        units = int((~np.isnan(p.diff(p.methods[0]))).any(axis=0).sum())
        networks[name] = NetworkZone(name, scope_of(key[1], key[2]), readings, [float(d) for d in considered], rule,
                                     len(full.seeds), units, heatmap(full))
        if bootstrap:
            replicate_p[name] = resampled_pvalues(p, rng, bootstrap, margin)
            for kind in TESTED:
                attach_stability(readings[kind], p.fractions, replicate_p[name][kind])
    scopes: dict[tuple[str, str], ScopeZone] = {}
    by_scope: dict[tuple[str, str], list[str]] = {}
    for name, z in networks.items():
        by_scope.setdefault(z.scope, []).append(name)
    for scope, names in sorted(by_scope.items()):
        if len(names) < 2:
            continue
        common = common_axis({n: networks[n].readings["conditional"].axis["fraction"].tolist() for n in names})
        readings = {kind: across(kind, {n: networks[n].readings[kind] for n in names}, alpha, anchors, common)
                    for kind in READINGS}
        if bootstrap and all(len(replicate_p.get(n, {}).get("conditional", [])) == bootstrap for n in names):
            for kind in TESTED:
                combined = []
                for b in range(bootstrap):
                    safe = common.safe_pvalues({n: replicate_p[n][kind][b, 0] for n in names}).max(axis=1)
                    unsafe = np.minimum(common.unsafe_pvalues({n: replicate_p[n][kind][b, 1] for n in names})
                                        .min(axis=1) * len(names), 1.0)
                    combined.append((safe, unsafe))
                attach_stability(readings[kind], common.centers, np.array(combined))
        scopes[scope] = ScopeZone(scope, names, readings)
    rule = zone_densities if isinstance(zone_densities, str) else ",".join(f"{d:g}" for d in zone_densities)
    return SafeZones(networks, scopes, skipped, rule)


def safe_zone(df: pd.DataFrame, alpha: float = ALPHA, anchors: Sequence[float] = ANCHORS, bootstrap: int = 200,
              seed: int = 0, zone_densities: str | Sequence[float] = "paper", margin: float = MARGIN) -> NetworkZone:
    """The readings of a table that holds one network."""
    groups = df.groupby(GROUP).ngroups
    if groups != 1:
        raise HarnessError(f"safe_zone takes one (task, pruning, schedule) group, not {groups}: use safe_zones")
    found = safe_zones(df, alpha, anchors, bootstrap, seed, zone_densities, margin)
    if found.skipped:
        raise HarnessError(next(iter(found.skipped.values())))
    return next(iter(found.networks.values()))
