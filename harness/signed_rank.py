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


def midranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``values``, ties given the mean of the ranks they span."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    return (np.cumsum(counts) - (counts - 1) / 2)[inverse]


@dataclass(frozen=True)
class SignedRank:
    """One-sided p-values of the paired differences: ``greater`` that they are centred above 0,
    ``less`` below 0. ``n`` counts the nonzero differences (zeros carry no sign and are dropped)."""

    greater: float
    less: float
    n: int


def signed_rank(diffs: np.ndarray) -> SignedRank:
    d = np.asarray(diffs, dtype=float)
    d = d[d != 0]
    n = len(d)
    if n == 0:
        return SignedRank(1.0, 1.0, 0)
    ranks = midranks(np.abs(d))
    doubled = np.rint(2 * ranks).astype(int)
    observed = int(doubled[d > 0].sum())
    if n <= EXACT_UP_TO:
        dist = null_distribution(tuple(sorted(doubled.tolist())))
        return SignedRank(float(dist[observed:].sum()), float(dist[: observed + 1].sum()), n)
    mean = doubled.sum() / 2
    sd = math.sqrt((doubled.astype(float) ** 2).sum()) / 2  # exact variance of 2W+, ties included
    greater = normal_sf((observed - 1 - mean) / sd)  # continuity: one doubled step is 1 or 2
    less = normal_sf((mean - observed - 1) / sd)
    return SignedRank(min(greater, 1.0), min(less, 1.0), n)


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
    signed-rank test; clipped to what the metric's differences can be), and ``lead``: the share of
    Walsh averages above 0 (ties half), Noether's p' = P(D_i + D_j > 0)."""

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
    lead = float(((walsh > 0).sum() + 0.5 * (walsh == 0).sum()) / m)
    return Estimate(float(np.median(walsh)), float(max(low, bounds[0])), float(min(high, bounds[1])), lead)


def noether_units(lead: float, level: float, power: float = 0.8) -> float:
    """Noether's (1987) sample size for the one-sided signed-rank test at ``level`` to reach ``power``
    when P(D_i + D_j > 0) = ``lead``; infinite when the estimate does not favour the alternative."""
    if not lead > 0.5:
        return math.inf
    z = stats.norm.ppf(1 - level) + stats.norm.ppf(power)
    return z * z / (3 * (lead - 0.5) ** 2)
