"""The rewinding safe zone, by the paper's definition: "the maximal region (as a percentage of
original training time) across all networks in which both forms of rewinding outperform
fine-tuning for an equivalent search cost".

**Per network** (one (task, pruning, schedule) group), a retraining-time fraction f is *safe* when
both weight rewinding and LR rewinding beat fine-tuning at f. The paired unit is a (density, seed)
cell: the same base network, mask and retraining time for the three methods. Each method's claim is
a one-sided Wilcoxon signed-rank test of its differences against fine-tuning (distribution-free,
exact for few units; its null, that the two methods' results are exchangeable within a unit, holds
however much the effect varies between densities). Units of one seed share a base network, so they
are not fully independent: more seeds, not only more densities, make the verdict sturdier.

- *Both methods*: "f is safe" is an intersection of the two claims, so it is an
  intersection-union test: reject "f is unsafe" when both tests reject at level a. No correction
  across the two methods is needed (Berger 1982); the fraction's p-value is the larger of the two.
- *Across fractions*: the zone is contiguous, so it is tested outward from a pre-declared anchor
  (the grid point nearest ``ANCHOR`` = 50% of T, inside every zone the paper reports). The anchor
  is tested at alpha; once it is safe, the left and the right neighbours are tested at alpha/2
  each, walking outward until a test fails; a side that reaches the end of the grid passes its
  alpha/2 to the other side. This is a graphical sequentially rejective procedure (Bretz et al.
  2009, a chain on each side), a closed testing procedure with Bonferroni-based intersection tests,
  so it controls the family-wise rate of calling any unsafe fraction safe at alpha in the strong
  sense, for any dependence between fractions. It spends the whole alpha on the fractions that
  matter for a contiguous zone, where Holm over all 2K tests spends alpha / 2K on the first;
  ``tests/test_safe_zone.py`` checks both its error rate and its power by simulation.
- *No zone* is a finding only with evidence: at every fraction, some rewinding method is
  significantly worse than fine-tuning (one-sided test the other way at alpha / 2 per method; a
  false "no zone" needs a wrong call at a truly safe fraction, at most alpha). Otherwise, and
  whenever the anchor cannot be decided, the verdict is *inconclusive*, with the units needed: the
  fewest that could reach significance at all (2^-n <= alpha), or Noether's sample size for 80% power
  at the estimated effect.

**Across networks**, the zone must be safe in each network, not in a pool of their units. Grids
differ (t/182 for CIFAR, t/90, t/5), so the networks are compared on fractions: the union of their
grid points, merged within ``SAME_FRACTION`` of T, forms a common axis; a network speaks for an
axis point through its own grid point there, or through both grid points around it (both must be
safe: it is safe between them only if it is safe at each). "Safe at f in every network" is again an
intersection-union test (its p-value: the largest of the networks'), and the same outward
procedure runs on the common axis. The networks whose tests fail just beyond each end are named
as the zone's bounds.

Effect sizes: per (method, fraction), the Hodges-Lehmann median difference with the 95% interval
that inverts the signed-rank test (inside the metric's range: an interval no sample size can close
is the whole range), and the share of Walsh averages favouring rewinding (Noether's p'). A
bootstrap over units gives, per fraction, the share of resamples in which it lies in the zone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from harness.errors import HarnessError
from harness.signed_rank import hodges_lehmann, noether_units, signed_rank, smallest_p, units_to_reach
from harness.statistics import GROUP

ALPHA = 0.05
ANCHOR = 0.5
REWINDING = ("weight-rewinding", "lr-rewinding")
BASELINE = "fine-tuning"
UNIT = ["density", "seed"]
SAME_FRACTION = 0.02  # grid points closer than this (as a fraction of T) are the same retraining time
POWER = 0.8


# -- the outward procedure ---------------------------------------------------------------------


@dataclass(frozen=True)
class Outward:
    """Which points of an axis the procedure calls safe (``zone``: first and last index) and the
    level each point was tested at (``None``: never reached)."""

    zone: tuple[int, int] | None
    levels: tuple[float | None, ...]


def outward(pvalues: Sequence[float], anchor: int, alpha: float) -> Outward:
    """The graphical procedure of the module docstring on one axis of p-values."""
    k = len(pvalues)
    levels: list[float | None] = [None] * k
    levels[anchor] = alpha
    if not pvalues[anchor] <= alpha:
        return Outward(None, tuple(levels))
    ends = {-1: anchor, 1: anchor}
    budget = {-1: alpha / 2, 1: alpha / 2}
    progressed = True
    while progressed:
        progressed = False
        for side in (-1, 1):
            while budget[side] > 0 and 0 <= ends[side] + side < k:
                nxt = ends[side] + side
                levels[nxt] = max(levels[nxt] or 0.0, budget[side])
                if pvalues[nxt] > budget[side]:
                    break
                ends[side] = nxt
                progressed = True
            done = not 0 <= ends[side] + side < k
            other_open = 0 <= ends[-side] - side < k
            if budget[side] > 0 and done and other_open:  # this side is done: the other gets its share
                budget[-side] += budget[side]
                budget[side] = 0.0
                progressed = True
    return Outward((ends[-1], ends[1]), tuple(levels))


def nearest(points: Sequence[float], target: float) -> int:
    return int(np.argmin([abs(p - target) for p in points]))


# -- one network -------------------------------------------------------------------------------


def paired_differences(group: pd.DataFrame, method: str, metric: str = "test_acc") -> pd.DataFrame:
    """``method`` minus fine-tuning per unit (density, seed) and fraction of one group."""
    keys = [*UNIT, "fraction"]
    a = group[group["method"] == method].set_index(keys)[metric]
    b = group[group["method"] == BASELINE].set_index(keys)[metric]
    joined = pd.concat([a.rename("method"), b.rename("baseline")], axis=1, join="inner").dropna()
    joined["diff"] = joined["method"] - joined["baseline"]
    return joined.reset_index()


def effect_table(diffs: dict[str, pd.DataFrame], fractions: list[float], bound: float) -> pd.DataFrame:
    """Per (method, fraction): units, Hodges-Lehmann median difference and interval, lead, p-values."""
    rows = []
    for method, d in diffs.items():
        by_fraction = dict(tuple(d.groupby("fraction")["diff"]))
        for f in fractions:
            x = by_fraction[f].to_numpy() if f in by_fraction else np.array([])
            test, est = signed_rank(x), hodges_lehmann(x, bounds=(-bound, bound))
            rows.append({"method": method, "fraction": f, "n": len(x), "median": est.median, "ci_low": est.low,
                         "ci_high": est.high, "lead": est.lead, "wins": int((x > 0).sum()), "p": test.greater,
                         "p_worse": test.less})
    return pd.DataFrame(rows)


def fraction_pvalues(effects: pd.DataFrame, fractions: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Per fraction: the intersection-union p-value of "safe" (the larger of the methods'), and the
    Bonferroni p-value of "some method is worse" (twice the smaller)."""
    by = effects.groupby("fraction")
    safe = by["p"].max().reindex(fractions).to_numpy()
    unsafe = np.minimum(by["p_worse"].min().reindex(fractions).to_numpy() * effects["method"].nunique(), 1.0)
    return safe, unsafe


@dataclass
class Zone:
    """A safe-zone verdict (one network, or across networks).

    ``verdict``: "zone", "no zone" or "inconclusive". ``axis``: per axis point, its fraction, the
    p-value of "safe" and of "unsafe", the level it was tested at, and its call. ``effects`` (one
    network): per (method, fraction), the effect sizes. ``bounds``: what stops the zone at each end.
    ``inclusion``, ``start_interval``, ``end_interval``: the bootstrap's share of resamples with each
    fraction in the zone, and 5th-95th percentiles of the zone's ends.
    """

    name: str
    verdict: str
    start: float | None
    end: float | None
    alpha: float
    anchor: float
    axis: pd.DataFrame
    reason: str = ""
    effects: pd.DataFrame | None = None
    bounds: tuple[str, str] = ("", "")
    units: int = 0
    inclusion: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    start_interval: tuple[float, float] | None = None
    end_interval: tuple[float, float] | None = None

    def describe(self) -> str:
        if self.verdict != "zone":
            return f"{self.verdict}: {self.reason}"
        text = f"safe zone {self.start:.0%}-{self.end:.0%} of T"
        if self.start_interval and self.end_interval:
            text += (f" (bootstrap 90% interval of its start {self.start_interval[0]:.0%}-"
                     f"{self.start_interval[1]:.0%}, of its end {self.end_interval[0]:.0%}-{self.end_interval[1]:.0%})")
        text += f"; lower end: {self.bounds[0]}; upper end: {self.bounds[1]}"
        return text + "; the paper reads 25%-90% off its plots"

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "start": self.start, "end": self.end, "reason": self.reason,
                "bounds": list(self.bounds), "start_interval": self.start_interval,
                "end_interval": self.end_interval, "units": self.units, "alpha": self.alpha, "anchor": self.anchor}


def call(p_unsafe: float, level: float | None, in_zone: bool, alpha: float) -> str:
    if in_zone:
        return "safe"
    if p_unsafe <= alpha:
        return "unsafe"
    return "not reached" if level is None else "undecided"


def end_reason(axis: pd.DataFrame, index: int, side: str) -> str:
    if index < 0 or index >= len(axis):
        return f"the {side} end of the retraining times"
    row = axis.iloc[index]
    what = "a rewinding method is worse than fine-tuning" if row["call"] == "unsafe" else "not shown safe"
    return f"{row['fraction']:.0%} ({what}: p = {row['p_safe']:.3g} at level {row['level']:.3g})"


@dataclass(frozen=True)
class GroupData:
    """One network's paired differences, ready for the procedure and for resampling."""

    name: str
    fractions: list[float]
    diffs: dict[str, pd.DataFrame]
    units: pd.DataFrame  # the (density, seed) units present
    bound: float


def group_data(group: pd.DataFrame, name: str, methods: tuple[str, ...] = REWINDING) -> GroupData:
    diffs = {m: paired_differences(group, m) for m in methods}
    absent = [m for m, d in diffs.items() if d.empty]
    if absent:
        raise HarnessError(f"the safe zone needs {BASELINE} and {', '.join(methods)} at the same retraining times "
                           f"and units; no pairs for {', '.join(absent)}")
    fractions = sorted(set.intersection(*(set(d["fraction"]) for d in diffs.values())))
    units = pd.concat([d[UNIT] for d in diffs.values()]).drop_duplicates().sort_values(UNIT).reset_index(drop=True)
    metric = group["metric"].iloc[0] if "metric" in group.columns else "accuracy"
    return GroupData(name, fractions, diffs, units, 100.0 if metric in ("accuracy", "bleu") else np.inf)


def needed_text(effects: pd.DataFrame, fraction: float, level: float, densities: int, seeds: int) -> str:
    at = effects[effects["fraction"] == fraction]
    n = int(at["n"].min())
    if smallest_p(n) > level:
        need = units_to_reach(level)
        head = (f"{n} paired units cannot reach significance at {level:g} even if every difference favoured "
                f"rewinding; at least {need} are needed")
    else:
        need = max(noether_units(lead, level, POWER) for lead in at["lead"])
        if math.isinf(need):
            return (f"at {fraction:.0%} of T the estimates do not favour rewinding (median differences "
                    f"{', '.join(f'{m:+.2f}' for m in at['median'])}); more units would not be expected to show a zone")
        need = max(math.ceil(need), n + 1)
        head = (f"at {fraction:.0%} of T the estimated effects need about {need} paired units for "
                f"{POWER:.0%} power at {level:g} (Noether), {n} are here")
    per_seed = max(densities, 1)
    return head + f": {math.ceil(need / per_seed)} seeds at these {densities} densities (now {seeds})"


def network_zone(data: GroupData, alpha: float = ALPHA, anchor: float = ANCHOR) -> Zone:
    effects = effect_table(data.diffs, data.fractions, data.bound)
    p_safe, p_unsafe = fraction_pvalues(effects, data.fractions)
    a = nearest(data.fractions, anchor)
    result = outward(p_safe, a, alpha)
    axis = axis_table(data.fractions, p_safe, p_unsafe, result, alpha)
    densities, seeds = data.units["density"].nunique(), data.units["seed"].nunique()
    zone = Zone(data.name, "zone", None, None, alpha, anchor, axis, effects=effects, units=len(data.units))
    if result.zone is not None:
        lo, hi = result.zone
        zone.start, zone.end = data.fractions[lo], data.fractions[hi]
        zone.bounds = (end_reason(axis, lo - 1, "lower"), end_reason(axis, hi + 1, "upper"))
    elif (axis["call"] == "unsafe").all():
        zone.verdict = "no zone"
        zone.reason = ("at every retraining time a rewinding method is significantly worse than fine-tuning "
                       f"(one-sided signed-rank tests, alpha {alpha:g} per time)")
    else:
        zone.verdict = "inconclusive"
        zone.reason = (f"the pre-declared anchor {data.fractions[a]:.0%} of T is not shown safe "
                       f"(p = {p_safe[a]:.3g}, alpha {alpha:g}); "
                       + needed_text(effects, data.fractions[a], alpha, densities, seeds))
    return zone


def axis_table(fractions: list[float], p_safe: np.ndarray, p_unsafe: np.ndarray, result: Outward,
               alpha: float) -> pd.DataFrame:
    lo, hi = result.zone if result.zone else (len(fractions), -1)
    rows = [{"fraction": f, "p_safe": ps, "p_unsafe": pu, "level": lv,
             "call": call(pu, lv, lo <= i <= hi, alpha)}
            for i, (f, ps, pu, lv) in enumerate(zip(fractions, p_safe, p_unsafe, result.levels, strict=True))]
    return pd.DataFrame(rows)


# -- across networks ---------------------------------------------------------------------------


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

    def pvalues(self, p_safe: dict[str, np.ndarray]) -> np.ndarray:
        """Per cell, per network: the intersection-union p-value of its speaking points (1 if none)."""
        out = np.ones((len(self.cells), len(self.speakers)))
        for j, (name, per_cell) in enumerate(self.speakers.items()):
            for i, points in enumerate(per_cell):
                if points:
                    out[i, j] = p_safe[name][points].max()
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


def across_zone(zones: dict[str, Zone], alpha: float = ALPHA, anchor: float = ANCHOR,
                common: CommonAxis | None = None) -> Zone:
    """The zone that is safe in every network, from each network's per-fraction p-values."""
    common = common or common_axis({name: z.axis["fraction"].tolist() for name, z in zones.items()})
    per_network = common.pvalues({name: z.axis["p_safe"].to_numpy() for name, z in zones.items()})
    combined = per_network.max(axis=1)
    cells, centers = common.cells, common.centers
    result = outward(combined, nearest(centers, anchor), alpha)
    names = list(zones)
    levels = result.levels
    axis = pd.DataFrame({"fraction": centers, "low": [c[0] for c in cells], "high": [c[-1] for c in cells],
                         "p_safe": combined, "level": levels})
    for j, name in enumerate(names):
        axis[name] = per_network[:, j]
    zone = Zone("across networks", "zone", None, None, alpha, anchor, axis, units=sum(z.units for z in zones.values()))
    if result.zone is not None:
        lo, hi = result.zone
        zone.start, zone.end = cells[lo][-1], cells[hi][0]  # inside every network's own points
        zone.bounds = (bounding(axis, names, lo - 1, "lower"), bounding(axis, names, hi + 1, "upper"))
        axis["call"] = ["safe" if lo <= i <= hi else "not safe" for i in range(len(cells))]
        return zone
    axis["call"] = "not safe"
    decided_none = [n for n, z in zones.items() if z.verdict == "no zone"]
    if decided_none:
        zone.verdict = "no zone"
        zone.reason = f"{', '.join(decided_none)} {'has' if len(decided_none) == 1 else 'have'} no safe zone"
    else:
        a = nearest(centers, anchor)
        failing = [n for j, n in enumerate(names) if per_network[a, j] > alpha]
        zone.verdict = "inconclusive"
        zone.reason = (f"at the anchor {centers[a]:.0%} of T, not shown safe in {', '.join(failing)}; see "
                       f"{'its' if len(failing) == 1 else 'their'} own verdict for the units needed")
    return zone


def bounding(axis: pd.DataFrame, names: list[str], index: int, side: str) -> str:
    if index < 0 or index >= len(axis):
        return f"the {side} end of the retraining times"
    row = axis.iloc[index]
    failing = [n for n in names if row[n] > row["level"]]
    listed = ", ".join(failing[:3]) + (f" and {len(failing) - 3} more" if len(failing) > 3 else "")
    return f"{row['fraction']:.0%}, not shown safe in {listed}"


# -- the bootstrap -------------------------------------------------------------------------------


def resampled_pvalues(data: GroupData, rng: np.random.Generator, replicates: int, alpha: float) -> np.ndarray:
    """Per replicate and fraction, the "safe" p-value after resampling the units with replacement
    (values above ``alpha`` are only known to be above it: no level of the procedure exceeds alpha)."""
    if len(data.units) < 2:
        return np.ones((0, len(data.fractions)))
    unit_index = pd.MultiIndex.from_frame(data.units)
    aligned = []  # per method: a (fraction, unit) array of differences, NaN where a unit is missing
    for d in data.diffs.values():
        grid = np.full((len(data.fractions), len(data.units)), np.nan)
        rows = d["fraction"].map({f: i for i, f in enumerate(data.fractions)})
        keep = rows.notna().to_numpy()
        cols = unit_index.get_indexer(pd.MultiIndex.from_frame(d[UNIT]))
        grid[rows[keep].astype(int).to_numpy(), cols[keep]] = d["diff"].to_numpy()[keep]
        aligned.append(grid)
    out = np.ones((replicates, len(data.fractions)))
    for b in range(replicates):
        pick = rng.integers(0, len(data.units), len(data.units))
        for i in range(len(data.fractions)):
            p = 0.0
            for grid in aligned:
                x = grid[i, pick]
                p = max(p, signed_rank(x[~np.isnan(x)]).greater)
                if p > alpha:
                    break
            out[b, i] = p
    return out


def percentile_interval(values: list[float]) -> tuple[float, float] | None:
    return (float(np.percentile(values, 5)), float(np.percentile(values, 95))) if values else None


def attach_bootstrap(zone: Zone, fractions: list[float], replicate_p: np.ndarray, anchor: int) -> None:
    inclusion = np.zeros(len(fractions))
    starts, ends = [], []
    for row in replicate_p:
        result = outward(row, anchor, zone.alpha)
        if result.zone is not None:
            lo, hi = result.zone
            inclusion[lo: hi + 1] += 1
            starts.append(fractions[lo])
            ends.append(fractions[hi])
    if len(replicate_p):
        zone.inclusion = pd.Series(inclusion / len(replicate_p), index=fractions)
        zone.start_interval, zone.end_interval = percentile_interval(starts), percentile_interval(ends)


# -- everything at once -----------------------------------------------------------------------


@dataclass
class SafeZones:
    networks: dict[str, Zone]
    across: Zone | None
    skipped: dict[str, str]  # networks without the methods the zone needs, and why


def safe_zones(df: pd.DataFrame, alpha: float = ALPHA, anchor: float = ANCHOR, bootstrap: int = 200,
               seed: int = 0) -> SafeZones:
    """Every network's zone and the zone across networks, with a bootstrap over units (the same
    resamples drive both)."""
    if not 0 < alpha < 1:
        raise HarnessError(f"alpha must lie in (0, 1), not {alpha}")
    rng = np.random.default_rng(seed)
    zones, skipped, replicate_p, data_of = {}, {}, {}, {}
    for key, group in df.groupby(GROUP, sort=True):
        name = ", ".join(key)
        try:
            data = group_data(group, name)
        except HarnessError as e:
            skipped[name] = str(e)
            continue
        zones[name] = network_zone(data, alpha, anchor)
        data_of[name] = data
        replicate_p[name] = resampled_pvalues(data, rng, bootstrap, alpha)
        attach_bootstrap(zones[name], data.fractions, replicate_p[name],
                         nearest(data.fractions, anchor))
    if len(zones) < 2:
        return SafeZones(zones, None, skipped)
    common = common_axis({n: d.fractions for n, d in data_of.items()})
    across = across_zone(zones, alpha, anchor, common)
    if bootstrap and all(len(p) == bootstrap for p in replicate_p.values()):
        combined = np.array([common.pvalues({n: p[b] for n, p in replicate_p.items()}).max(axis=1)
                             for b in range(bootstrap)])
        attach_bootstrap(across, common.centers, combined, nearest(common.centers, anchor))
    return SafeZones(zones, across, skipped)


def safe_zone(df: pd.DataFrame, alpha: float = ALPHA, anchor: float = ANCHOR, bootstrap: int = 200,
              seed: int = 0) -> Zone:
    """The zone of a table that holds one network."""
    groups = df.groupby(GROUP).ngroups
    if groups != 1:
        raise HarnessError(f"safe_zone takes one (task, pruning, schedule) group, not {groups}: use safe_zones")
    found = safe_zones(df, alpha, anchor, bootstrap, seed)
    if found.skipped:
        raise HarnessError(next(iter(found.skipped.values())))
    return next(iter(found.networks.values()))
