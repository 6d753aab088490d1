"""The paper's plots: accuracy against compression (median with min-max bands over seeds) and
accuracy against retraining time per density, with the computed safe zone shaded. Each is saved
as SVG (for the page and for papers) and PNG."""

from __future__ import annotations

import io
import re
import textwrap
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")  # files only: no display, no GUI toolkit

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from harness.analysis import statistics as st
from harness.core.metrics import metric_of
from harness.core.registry import METHODS
from harness.storage.store import atomic_write_bytes

if TYPE_CHECKING:
    from methods.spec import Retraining

Shade = tuple[str, float, float, str]  # (label, start, end, colour) of a zone drawn on the retraining-time axis

matplotlib.rcParams["svg.hashsalt"] = "leaderboard"  # the same results give byte-identical SVGs

def declared(method: str) -> Retraining | None:
    """The registered method of this name, if any (a variant or an external CSV's name has none)."""
    return METHODS.get(method) if method in METHODS else None


def color(method: str) -> str:
    """The colour a method declares, or one derived from its name: the same on every plot."""
    spec = declared(method)
    if spec is not None and spec.color:
        return spec.color
    palette = plt.get_cmap("tab20").colors
    return matplotlib.colors.to_hex(palette[sum(map(ord, method)) % len(palette)])


def legend_name(method: str) -> str:
    """The name a method declares for plots (SLR for slr), or its own."""
    spec = declared(method)
    return spec.display if spec is not None else method


MIN_SPAN = 1.0  # points of the metric an axis spans at least: a half-point gap must not fill the plot


def score_axis(ax: plt.Axes, metric: str) -> None:
    """A metric's axis: at least ``MIN_SPAN`` tall around what it shows, with no more decimals than that
    span needs, and in percent it says so on the ticks."""
    low, high = ax.get_ylim()
    if high - low < MIN_SPAN:
        middle = (low + high) / 2
        ax.set_ylim(middle - MIN_SPAN / 2, middle + MIN_SPAN / 2)
    ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
    if metric_of(metric).unit == "%":
        ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(xmax=100, decimals=None))


def fitted(title: str, fig: plt.Figure, fontsize: float, share: float = 1.0) -> str:
    """``title`` broken at spaces into lines that fit ``share`` of the figure's width at ``fontsize``
    (a character is about 0.6 em wide): a long title wraps instead of running off both sides."""
    per_line = max(20, int(share * fig.get_figwidth() * 72 / (0.6 * fontsize)))
    return textwrap.fill(title, per_line, break_long_words=False, break_on_hyphens=False)


def titled(target: Any, fig: plt.Figure, title: str, fontsize: float) -> None:
    """A figure's (``fig.suptitle``) or an axis's title, fitted (an axis has about 0.8 of the figure's
    width), and named ``title`` in the SVG."""
    share = 1.0 if target is fig else 0.8
    text = (fig.suptitle if target is fig else target.set_title)(fitted(title, fig, fontsize, share),
                                                                 fontsize=fontsize)
    text.set_gid("title")


def save(fig: plt.Figure, folder: Path, name: str, formats: tuple[str, ...] = ("svg", "png")) -> list[Path]:
    """The figure as ``name``.svg and .png in ``folder``, each file written whole or not at all."""
    paths = []
    for ext in formats:
        data = io.BytesIO()
        with warnings.catch_warnings():  # a character no font has is drawn as a box: matplotlib's warning is noise
            warnings.filterwarnings("ignore", message="Glyph .* missing from font", category=UserWarning)
            fig.savefig(data, format=ext, dpi=150, metadata={"Date": None} if ext == "svg" else None)
        fig.set_layout_engine("none")  # laid out once: the second format keeps the first one's positions
        paths.append(folder / f"{name}.{ext}")
        atomic_write_bytes(paths[-1], data.getvalue())
    plt.close(fig)
    return paths


def accuracy_vs_compression(best: pd.DataFrame, unpruned: float | None, title: str, metric: str,
                            folder: Path, name: str) -> list[Path]:
    return save(compression_figure(best, unpruned, title, metric), folder, name)


def compression_figure(best: pd.DataFrame, unpruned: float | None, title: str, metric: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    for method, group in best.groupby("method"):
        g = group.sort_values("compression")
        ax.plot(g["compression"], g["test_median"], marker="o", ms=3, label=legend_name(method),
                    color=color(method))
        ax.fill_between(g["compression"], g["test_min"], g["test_max"], alpha=0.2, color=color(method))
    if unpruned is not None and not np.isnan(unpruned):
        ax.axhline(unpruned, color="black", ls="--", lw=0.8, label="unpruned (median)")
    ax.set_xscale("log")
    ratio = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x")
    ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(ratio)
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # labelled minor ticks collide at many densities
    score_axis(ax, metric)
    ax.set_xlabel("compression ratio (prunable weights / remaining)")
    ax.set_ylabel(f"test {metric} (median, min-max over seeds)")
    titled(ax, fig, title, 10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return fig


def slug(*parts: object) -> str:
    """A file name safe in URLs and Markdown links."""
    return "-".join(re.sub(r"[^A-Za-z0-9.-]+", "_", str(p)).strip("_") for p in parts)


def study_compression_pngs(df: pd.DataFrame, folder: Path) -> list[Path]:
    """A study's score against compression, one PNG per (task, pruning, schedule) of its statistics table:
    ``accuracy_vs_compression.png`` (named by the metric), suffixed by the group where there are several."""

    best, base = st.best_validated(df), st.unpruned(df)
    groups = list(best.groupby(st.GROUP))
    paths = []
    for (task, pruning, schedule), group in groups:
        metric = df.loc[df["task"] == task, "metric"].iloc[0]
        name = f"{slug(metric)}_vs_compression"  # accuracy_vs_compression, perplexity_vs_compression, ...
        if len(groups) > 1:
            name += "-" + slug(task, pruning, schedule)
        fig = compression_figure(group, float(base[task]) if task in base.index else None,
                                 f"{task}, {pruning}, {schedule}", metric)
        paths += save(fig, folder, name, ("png",))
    return paths


def accuracy_vs_retraining(summary: pd.DataFrame, zones: list[Shade], title: str, metric: str,
                           folder: Path, name: str) -> list[Path]:
    return save(retraining_figure(summary, zones, title, metric), folder, name)


def retraining_figure(summary: pd.DataFrame, zones: list[Shade], title: str, metric: str) -> plt.Figure:
    """One panel per density: median test score against t / T for every method."""
    densities = sorted(summary["density"].unique(), reverse=True)
    cols = min(4, len(densities))
    rows = int(np.ceil(len(densities) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.8 * rows + 0.6), squeeze=False, layout="constrained")
    for ax, density in zip(axes.flat, densities, strict=False):
        at = summary[np.isclose(summary["density"], density)]
        for method, g in at.groupby("method"):
            g = g.sort_values("fraction")
            ax.plot(g["fraction"], g["test_median"], marker="o", ms=2.5, label=legend_name(method),
                    color=color(method))
            ax.fill_between(g["fraction"], g["test_min"], g["test_max"], alpha=0.15, color=color(method))
        for label, start, end, shade in zones:
            ax.axvspan(start, end, color=shade, alpha=0.1, label=label)
        ax.set_title(f"density {at['target_density'].iloc[0]:.3g} ({1 / density:.1f}x)", fontsize=9)
        ax.set_xlabel("retraining time t / T", fontsize=8)
        ax.set_ylabel(f"test {metric}", fontsize=8)
        ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(xmax=1, decimals=0))
        ax.tick_params(labelsize=7)
        score_axis(ax, metric)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(densities):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(7, len(labels)), fontsize=7, frameon=False)
    titled(fig, fig, title, 10)
    return fig


def accuracy_vs_search_cost(curves: list[tuple[str, pd.DataFrame]], metric: str, title: str, folder: Path,
                            name: str) -> list[Path]:
    """Test score against retraining epochs (the search cost) at given densities, one panel each."""
    fig, axes = plt.subplots(1, len(curves), figsize=(4.6 * len(curves), 3.3), squeeze=False, layout="constrained")
    for ax, (label, data) in zip(axes.flat, curves, strict=True):
        for method, g in data.groupby("method"):
            g = g.sort_values("retraining_epochs")
            ax.plot(g["retraining_epochs"], g["test_median"], marker="o", ms=2.5, label=legend_name(method),
                    color=color(method))
            ax.fill_between(g["retraining_epochs"], g["test_min"], g["test_max"], alpha=0.15, color=color(method))
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("retraining epochs (search cost)", fontsize=8)
        ax.set_ylabel(f"test {metric}", fontsize=8)
        score_axis(ax, metric)
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=7)
    titled(fig, fig, title, 10)
    return save(fig, folder, name)


def zone_heatmap(heatmap: pd.DataFrame, considered: list[float], title: str, folder: Path, name: str) -> list[Path]:
    """Per rewinding method, a density x retraining-time grid of the median difference to fine-tuning
    (colour) and the seeds won (text), the densities the zone is read at marked."""
    methods = list(dict.fromkeys(heatmap["method"]))
    fractions = sorted(heatmap["fraction"].unique())
    densities = sorted(heatmap["density"].unique(), reverse=True)
    scale = float(np.nanmax(np.abs(heatmap["median"]))) if heatmap["median"].notna().any() else 1.0
    scale = max(scale, 0.5)  # a point either way at least: no colour for noise
    height = 0.9 + 0.32 * len(densities)
    fig, axes = plt.subplots(1, len(methods), figsize=(0.55 * len(fractions) * len(methods) + 1.6, height + 0.9),
                             squeeze=False, layout="constrained")
    image = None
    for ax, method in zip(axes.flat, methods, strict=True):
        at = heatmap[heatmap["method"] == method]
        grid, won, seeds = (full_grid(at, column, densities, fractions) for column in ("median", "wins", "seeds"))
        won, seeds = won.fillna(0), seeds.fillna(0)
        image = ax.imshow(grid.to_numpy(), cmap="RdBu", vmin=-scale, vmax=scale, aspect="auto")
        for i in range(len(densities)):
            for j in range(len(fractions)):
                if seeds.iat[i, j] > 0:
                    dark = abs(grid.iat[i, j]) > 0.6 * scale
                    ax.text(j, i, f"{int(won.iat[i, j])}/{int(seeds.iat[i, j])}", ha="center", va="center",
                            fontsize=6, color="white" if dark else "black")
        ax.set_xticks(range(len(fractions)), [f"{f:.0%}" for f in fractions], fontsize=6, rotation=90)
        labels = [f"{d:.3g}" + (" *" if any(np.isclose(d, c) for c in considered) else "") for d in densities]
        ax.set_yticks(range(len(densities)), labels, fontsize=6)
        ax.set_xlabel("retraining time t / T", fontsize=7)
        ax.set_ylabel("density (* : the zone is read here)", fontsize=7)
        ax.set_title(f"{legend_name(method)} - fine-tuning", fontsize=8)
    if image is not None:
        bar = fig.colorbar(image, ax=list(axes.flat), shrink=0.9)
        bar.set_label("median difference over seeds (points)", fontsize=7)
        bar.ax.tick_params(labelsize=6)
    titled(fig, fig, f"{title}: median difference, seeds won", 9)
    return save(fig, folder, name)


def full_grid(rows: pd.DataFrame, column: str, densities: list[float], fractions: list[float]) -> pd.DataFrame:
    """``column`` as a density x time grid with every cell, NaN where nothing ran (pivot_table alone
    drops a time whose values are all missing)."""
    return rows.pivot_table(index="density", columns="fraction", values=column, dropna=False).reindex(
        index=densities, columns=fractions)


def profile_plot(profile: pd.DataFrame, title: str, folder: Path, name: str) -> list[Path]:
    """Each method's share of cells within x points of the best, against x."""
    fig, ax = plt.subplots(figsize=(5.6, 3.6), layout="constrained")
    for method, g in profile.groupby("method"):
        g = g.sort_values("gap")
        ax.step(g["gap"], g["share"], where="post", marker="o", ms=3, label=legend_name(method), color=color(method))
    ax.set_xlabel("points behind the best method of the cell (x)")
    ax.set_ylabel("share of (network, density) cells")
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(xmax=1, decimals=0))
    ax.set_ylim(-0.02, 1.02)
    titled(ax, fig, title, 9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return save(fig, folder, name)


def score_vs_cost(cells: pd.DataFrame, axis_label: str, metric: str, title: str, folder: Path,
                  name: str) -> list[Path]:
    """Test score against one cost axis, one panel per density: medians over seeds, min-max bars."""
    densities = sorted(cells["density"].unique(), reverse=True)
    fig, axes = plt.subplots(1, len(densities), figsize=(4.6 * len(densities), 3.4), squeeze=False,
                             layout="constrained")
    for ax, density in zip(axes.flat, densities, strict=True):
        for method, g in cells[np.isclose(cells["density"], density)].groupby("method"):
            g = g.sort_values("cost")
            ax.errorbar(g["cost"], g["test_median"], yerr=[g["test_median"] - g["test_min"],
                                                           g["test_max"] - g["test_median"]],
                        marker="o", ms=3, capsize=2, lw=1, label=legend_name(method), color=color(method))
        if (cells["cost"] > 0).all() and cells["cost"].max() > 10 * cells["cost"].min():
            ax.set_xscale("log")
        ax.set_title(f"density {density:.3g}", fontsize=9)
        ax.set_xlabel(axis_label, fontsize=8)
        ax.set_ylabel(f"test {metric}", fontsize=8)
        score_axis(ax, metric)
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=6)
    titled(fig, fig, title, 10)
    return save(fig, folder, name)
