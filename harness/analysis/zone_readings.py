"""One network's safe zone read three ways (``harness.analysis.safe_zone``): descriptive, conditional
on these base networks, and generalizing over base networks; with what more data would settle it."""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from harness.analysis import sign_test
from harness.analysis.graphical import Rejections, graphical, line_graph, runs
from harness.analysis.signed_rank import hodges_lehmann, noether_units, signed_rank_rows, units_to_reach
from harness.analysis.signed_rank import smallest_p as smallest_p_units
from harness.analysis.zone_grid import ALPHA, ANCHORS, BASELINE, MARGIN, POWER, Paired

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
                         "bounded": bool(low > -p.bound or high < p.bound),
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
            units = f"{n} nonzero paired unit{'' if n == 1 else 's'}"
            text = (f"{units} cannot reach {level:.3g} even if every difference favoured rewinding; "
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
