"""Graphical multiple testing (Bretz, Maurer, Brannath & Posch 2009, "A graphical approach to
sequentially rejective multiple test procedures", Statistics in Medicine 28): each hypothesis holds
a share of alpha; a rejected hypothesis passes its share along the graph's edges, and the graph is
updated so that shares flow on past hypotheses already rejected. For any initial shares summing to at
most alpha and any transition matrix whose rows sum to at most 1, it is a closed testing procedure
with weighted Bonferroni intersection tests, so it controls the family-wise error rate in the strong
sense whatever the dependence between the p-values. The rejections do not depend on the order in
which rejectable hypotheses are taken.

The safe zone uses it on a line of retraining times: pre-declared anchors share alpha, and every
time passes half its share to each neighbour (all of it at an end of the line). A rejected anchor's
share so reaches both of its neighbours, and once a run of times is rejected, whatever a rejected
time passes toward the inside of the run flows through it to the run's other front. Two runs that
meet merge, and their shares flow to the outer fronts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Rejections:
    """``rejected`` per hypothesis, and ``levels``: the share a rejected hypothesis was rejected at,
    or the share a retained one held at the end (0: never reached)."""

    rejected: tuple[bool, ...]
    levels: tuple[float, ...]


def graphical(pvalues: Sequence[float], weights: Sequence[float], transitions: np.ndarray) -> Rejections:
    """Bretz et al.'s Algorithm 1: ``weights`` are the initial local levels (their sum is the
    family-wise alpha), ``transitions[j, l]`` the share of j's level that l receives when j is rejected."""
    p = np.asarray(pvalues, dtype=float)
    level = np.asarray(weights, dtype=float).copy()
    g = np.array(transitions, dtype=float, copy=True)
    k = len(p)
    rejected = np.zeros(k, dtype=bool)
    at = np.zeros(k)
    while True:
        open_ = np.flatnonzero(~rejected & (level > 0) & (p <= level * (1 + 1e-12)))
        if len(open_) == 0:
            break
        j = int(open_[0])
        rejected[j], at[j] = True, level[j]
        keep = ~rejected
        level[keep] += level[j] * g[j, keep]
        level[j] = 0.0
        passed = np.outer(g[:, j], g[j, :])  # l -> j -> k
        denominator = 1.0 - g[:, j] * g[j, :]  # l -> j -> l: a loop through j
        with np.errstate(divide="ignore", invalid="ignore"):
            updated = np.where(denominator[:, None] > 1e-12, (g + passed) / denominator[:, None], 0.0)
        np.fill_diagonal(updated, 0.0)
        updated[j, :] = 0.0
        updated[:, j] = 0.0
        g = updated
    levels = np.where(rejected, at, level)
    return Rejections(tuple(bool(r) for r in rejected), tuple(float(x) for x in levels))


def line_graph(points: int, anchors: Sequence[int], alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """The safe zone's graph on ``points`` times: alpha split equally over the distinct anchors, each
    time passing half to each neighbour (all to its only neighbour at an end)."""
    distinct = sorted(set(anchors))
    weights = np.zeros(points)
    weights[distinct] = alpha / len(distinct)
    g = np.zeros((points, points))
    for i in range(points):
        neighbours = [j for j in (i - 1, i + 1) if 0 <= j < points]
        for j in neighbours:
            g[i, j] = 1.0 / len(neighbours)
    return weights, g


def runs(flags: Sequence[bool]) -> list[tuple[int, int]]:
    """The maximal runs of consecutive True flags, as (first, last) index pairs."""
    out: list[tuple[int, int]] = []
    for i, flag in enumerate(flags):
        if not flag:
            continue
        if out and out[-1][1] == i - 1:
            out[-1] = (out[-1][0], i)
        else:
            out.append((i, i))
    return out
