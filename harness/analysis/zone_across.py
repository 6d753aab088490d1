"""The safe zone across networks (``harness.analysis.safe_zone``): networks' grids on a common axis of
retraining times, and the intersection-union verdict over them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.analysis.graphical import runs
from harness.analysis.zone_grid import SAME_FRACTION
from harness.analysis.zone_readings import Reading, anchor_points, longest, procedure

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
