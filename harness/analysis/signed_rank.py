"""Wilcoxon's signed-rank test for paired differences, with what a verdict needs beside the p-value:
the Hodges-Lehmann estimate of the median difference with its confidence interval, the smallest
p-value a sample of n units can reach, and Noether's sample size for a given power.

The exact null distribution comes from a recursion over rank sums (each unit's rank joins the
positive sum or not, with probability 1/2), in O(n * sum of ranks), not from enumerating the 2^n
sign patterns. Mid-ranks for ties are handled exactly by working in doubled ranks, which are
integers. scipy's exact method drops to an approximation with ties, which accuracies on a finite
test set always have; this recursion does not need to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats

EXACT_UP_TO = 50  # nonzero differences; beyond, the normal approximation with tie correction (as scipy)


@lru_cache(maxsize=4096)
def null_distribution(doubled_ranks: tuple[int, ...]) -> np.ndarray:
    """P(2 W+ = s) for s = 0 .. sum(doubled_ranks) when each sign is + or - with probability 1/2."""
    counts = np.zeros(sum(doubled_ranks) + 1)
    counts[0] = 1.0
    top = 0
    for r in doubled_ranks:  # counts stay below 2^n, exact in float64 for n <= EXACT_UP_TO
        counts[r: r + top + 1] += counts[: top + 1]  # numpy buffers overlapping operands
        top += r
    return counts / 2.0 ** len(doubled_ranks)


@lru_cache(maxsize=4096)
def tails(doubled_ranks: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """P(2 W+ >= s) and P(2 W+ <= s) for s = 0 .. sum(doubled_ranks)."""
    dist = null_distribution(doubled_ranks)
    return np.cumsum(dist[::-1])[::-1], np.cumsum(dist)


def doubled_midranks(magnitudes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``magnitudes`` (inf: left out), twice the mid-rank of each entry among the row's
    finite entries, and the same doubled ranks in ascending order (finite entries first)."""
    order = np.argsort(magnitudes, axis=1, kind="stable")
    s = np.take_along_axis(magnitudes, order, axis=1)
    rows, cols = s.shape
    index = np.broadcast_to(np.arange(cols), (rows, cols))
    starts = np.ones((rows, cols), dtype=bool)
    starts[:, 1:] = s[:, 1:] != s[:, :-1]
    ends = np.ones((rows, cols), dtype=bool)
    ends[:, :-1] = starts[:, 1:]
    first = np.maximum.accumulate(np.where(starts, index, 0), axis=1)
    last = np.minimum.accumulate(np.where(ends, index, cols - 1)[:, ::-1], axis=1)[:, ::-1]
    in_order = first + last + 2  # (first + 1) + (last + 1): twice the mean of the 1-based ranks spanned
    doubled = np.empty_like(in_order)
    np.put_along_axis(doubled, order, in_order, axis=1)
    return doubled, in_order


@dataclass(frozen=True)
class SignedRank:
    """One-sided p-values of the paired differences: ``greater`` that they are centred above 0,
    ``less`` below 0. ``n`` counts the nonzero differences (zeros carry no sign and are dropped)."""

    greater: float
    less: float
    n: int


def signed_rank(diffs: np.ndarray) -> SignedRank:
    greater, less, n = signed_rank_rows(np.asarray(diffs, dtype=float).reshape(1, -1))
    return SignedRank(float(greater[0]), float(less[0]), int(n[0]))


def signed_rank_rows(diffs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The test on each row of a 2-D array at once (NaN: a missing unit, dropped like a zero):
    ``greater``, ``less`` and the count of nonzero differences, per row."""
    d = np.where(np.isnan(diffs), 0.0, diffs)
    nonzero = d != 0
    n = nonzero.sum(axis=1)
    doubled, in_order = doubled_midranks(np.where(nonzero, np.abs(d), np.inf))
    observed = (doubled * (d > 0)).sum(axis=1)
    greater, less = np.ones(len(d)), np.ones(len(d))
    for i, (size, obs) in enumerate(zip(n.tolist(), observed.tolist(), strict=True)):
        if size == 0:
            continue
        ranks = in_order[i, :size]
        if size <= EXACT_UP_TO:
            upper, lower = tails(tuple(ranks.tolist()))
            greater[i], less[i] = upper[obs], lower[obs]
            continue
        mean = ranks.sum() / 2
        sd = math.sqrt((ranks.astype(float) ** 2).sum()) / 2  # exact variance of 2W+, ties included
        greater[i] = min(normal_sf((obs - 1 - mean) / sd), 1.0)  # continuity: one doubled step is 1 or 2
        less[i] = min(normal_sf((mean - obs - 1) / sd), 1.0)
    return greater, less, n


def normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2))


def smallest_p(n: int) -> float:
    """The smallest one-sided p-value n nonzero paired differences can give: every sign positive."""
    return 0.5 ** n


def units_to_reach(level: float) -> int:
    """How many paired units the test needs before any sample could be significant at ``level``."""
    return max(1, math.ceil(math.log2(1 / level) - 1e-12))


def walsh_averages(d: np.ndarray) -> np.ndarray:
    i, j = np.triu_indices(len(d))
    return (d[i] + d[j]) / 2


@dataclass(frozen=True)
class Estimate:
    """The Hodges-Lehmann median difference, its confidence interval (the one that inverts the
    signed-rank test; clipped to what the metric's differences can be), and ``lead``: Noether's
    p' = P(D_i + D_j > 0) over pairs of distinct units (ties half)."""

    median: float
    low: float
    high: float
    lead: float


def hodges_lehmann(diffs: np.ndarray, confidence: float = 0.95, bounds: tuple[float, float] = (-100.0, 100.0)
                   ) -> Estimate:
    d = np.asarray(diffs, dtype=float)
    if len(d) == 0:
        return Estimate(np.nan, bounds[0], bounds[1], np.nan)
    walsh = np.sort(walsh_averages(d))
    m = len(walsh)
    # k: how many Walsh averages each end drops; P(W+ <= k - 1) <= (1 - confidence) / 2 without ties
    cdf = np.cumsum(null_distribution(tuple(range(2, 2 * len(d) + 1, 2)))[::2]) if len(d) <= EXACT_UP_TO else None
    half = (1 - confidence) / 2
    if cdf is not None:
        k = int(np.searchsorted(cdf, half + 1e-12, side="right"))
    else:
        n = len(d)
        k = math.floor(m / 2 - stats.norm.ppf(1 - half) * math.sqrt(n * (n + 1) * (2 * n + 1) / 24))
    low = walsh[k - 1] if k >= 1 else bounds[0]
    high = walsh[m - k] if k >= 1 else bounds[1]
    return Estimate(float(np.median(walsh)), float(max(low, bounds[0])), float(min(high, bounds[1])), noether_lead(d))


def noether_lead(d: np.ndarray) -> float:
    """Noether's p' = P(D_i + D_j > 0) over pairs i < j (ties half); one unit: its own sign."""
    if len(d) < 2:
        return float(np.mean((d > 0) + 0.5 * (d == 0)))
    i, j = np.triu_indices(len(d), k=1)
    s = d[i] + d[j]
    return float(np.mean((s > 0) + 0.5 * (s == 0)))


def noether_units(lead: float, level: float, power: float = 0.8) -> float:
    """Noether's (1987) sample size for the one-sided signed-rank test at ``level`` to reach ``power``
    when P(D_i + D_j > 0) = ``lead``; infinite when the estimate does not favour the alternative."""
    if not lead > 0.5:
        return math.inf
    z = stats.norm.ppf(1 - level) + stats.norm.ppf(power)
    return z * z / (3 * (lead - 0.5) ** 2)
