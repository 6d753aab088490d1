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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from harness.analysis import results_table
from harness.analysis.statistics import GROUP
from harness.analysis.zone_across import across, common_axis
from harness.analysis.zone_grid import (
    ALPHA,
    ANCHORS,
    DENSITY_RULES,
    HEADLINE,
    MARGIN,
    READINGS,
    STRUCTURE,
    TESTED,
    Paired,
    chosen_densities,
    paired,
)
from harness.analysis.zone_readings import (
    Reading,
    conditional,
    conditional_tests,
    descriptive,
    generalizing,
    generalizing_tests,
    longest,
    over_seeds,
    quiet_nan,
    safe_runs,
    seed_counts,
)
from harness.core.errors import HarnessError
from methods.pruning import PRUNING

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
    base_task: dict[str, str] = {}  # a network's registered task (its label, for tables from elsewhere)
    for key, group in df.groupby(GROUP, sort=True):
        name = ", ".join(key)
        registered = group["registered_task"].dropna() if "registered_task" in group else pd.Series(dtype=str)
        base_task[name] = str(registered.iloc[0]) if len(registered) else key[0]
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
        if len(tasks := {base_task[n] for n in names}) < 2:  # one task at several schedules is not several networks
            skipped[f"across networks, {scope_name(scope)}"] = (
                f"its {len(names)} networks are one task ({tasks.pop()}) at other schedules or batch sizes; a "
                "verdict across networks needs at least two tasks")
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
