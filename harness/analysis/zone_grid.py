"""The safe zone's data: the declared constants of the procedure (``harness.analysis.safe_zone``) and
one network's grid of paired runs, fine-tuning beside each rewinding method."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.analysis import statistics as st
from harness.core.errors import HarnessError
from harness.core.metrics import metric_of
from methods.pruning import Prunes

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
        absent = [m for m in (BASELINE, *methods) if m not in present]
        them = "it" if len(absent) == 1 else "them"
        raise HarnessError(f"the safe zone needs {BASELINE} and {', '.join(methods)} at the same retraining times "
                           f"and units; no pairs for {', '.join(absent)}: {', '.join(absent)} "
                           f"{'is' if len(absent) == 1 else 'are'} not in the results of {name}; add {them} to the "
                           f"study's methods and rerun `harness sweep` (its finished cells are reused)")
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
