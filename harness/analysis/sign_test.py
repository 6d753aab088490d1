"""The exact sign test on seeds, with the interval and the sample size that go with it.

A seed draws a whole replication: the base network, its data order and every retraining run pruned
from it. Seeds are therefore independent and identically distributed, whatever the runs of one seed
share, and a test whose unit is the seed generalizes to new base networks. The sign test counts the
seeds on which rewinding beats fine-tuning. Under the composite null "rewinding wins on at most half
of new base networks", P(D > 0) <= 1/2, the count is stochastically at most Binomial(n, 1/2), so the
binomial tail is a valid p-value with no assumption on the shape of D (no symmetry, which the
signed-rank test needs and a minimum over densities would not have). A tie (D = 0) counts as no
win: that keeps the test valid when ties are common, as they are on finite test sets.

The estimand is the probability of improvement P(D > 0) on a new base network (Bouthillier et al.
2021, Agarwal et al. 2021 report it for comparisons over seeds); its interval is Clopper-Pearson's,
which inverts the same binomial test.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import stats


@lru_cache(maxsize=256)
def tail(n: int) -> np.ndarray:
    """P(Binomial(n, 1/2) >= k) for k = 0 .. n + 1."""
    return np.append(stats.binom.sf(np.arange(n + 1) - 1, n, 0.5), 0.0)


def p_greater(wins: np.ndarray | int, n: np.ndarray | int) -> np.ndarray:
    """The one-sided p-value of ``wins`` wins out of ``n`` seeds (1 where n is 0), elementwise."""
    wins, n = np.broadcast_arrays(np.asarray(wins, dtype=int), np.asarray(n, dtype=int))
    out = np.ones(wins.shape)
    for size in np.unique(n):
        if size > 0:
            at = n == size
            out[at] = tail(int(size))[np.clip(wins[at], 0, size + 1)]
    return out


def smallest_p(n: int) -> float:
    """What n seeds give at best: every one a win."""
    return 0.5 ** n


def seeds_to_reach(level: float) -> int:
    """The fewest seeds with which any outcome is significant at ``level``."""
    return max(1, math.ceil(math.log2(1 / level) - 1e-12))


def critical_wins(n: int, level: float) -> int | None:
    """The fewest wins out of n that are significant at ``level`` (None: none are)."""
    hits = np.flatnonzero(tail(n)[: n + 1] <= level * (1 + 1e-12))
    return int(hits[0]) if len(hits) else None


def power(n: int, level: float, rate: float) -> float:
    """P(the test rejects) with n seeds when each wins with probability ``rate``."""
    k = critical_wins(n, level)
    return 0.0 if k is None else float(stats.binom.sf(k - 1, n, rate))


def seeds_for_power(level: float, rate: float, target: float = 0.8, limit: int = 1000) -> int | None:
    """The fewest seeds that reach ``target`` power at ``level`` when rewinding wins on a share
    ``rate`` of base networks (None: rate <= 1/2, where no number of seeds is expected to help)."""
    if not rate > 0.5:
        return None
    for n in range(seeds_to_reach(level), limit + 1):
        if power(n, level, rate) >= target:
            return n
    return None


def win_rate_interval(wins: int, n: int, confidence: float) -> tuple[float, float]:
    """Clopper-Pearson interval of P(D > 0) (scipy's exact binomial interval)."""
    if n == 0:
        return (0.0, 1.0)
    ci = stats.binomtest(int(wins), int(n), 0.5).proportion_ci(confidence_level=confidence, method="exact")
    return (float(ci.low), float(ci.high))


def median_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """The distribution-free interval of the median from order statistics, the one that inverts the
    sign test (the whole real line, as +-inf, when n is too small for ``confidence``)."""
    x = np.sort(np.asarray(values, dtype=float))
    n = len(x)
    half = (1 - confidence) / 2
    cdf = stats.binom.cdf(np.arange(n + 1), n, 0.5)
    k = int(np.searchsorted(cdf, half + 1e-12, side="right"))  # P(B <= k - 1) <= half
    if k < 1:
        return (-math.inf, math.inf)
    return (float(x[k - 1]), float(x[n - k]))
