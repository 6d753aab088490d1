"""`harness leaderboard`: a static site (index.html + assets/, opens from file://, no network) and
a Markdown summary, from a statistics table (the store, an MLflow experiment, or external CSVs)."""

from __future__ import annotations

import html
import json
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.analysis import results_table
from harness.analysis import statistics as st
from harness.analysis.cost import AXES, Axis, against_baseline, at_equal_cost, axis_of, cell_costs
from harness.analysis.cost import recorded as cost_recorded
from harness.analysis.safe_zone import SafeZones, safe_zones, scope_name, scope_of
from harness.analysis.statistics import GROUP
from harness.analysis.zone_grid import ALPHA, ANCHORS, MARGIN
from harness.core.errors import HarnessError
from harness.core.metrics import Metric, metric_of, register_metric
from harness.core.registry import METRICS
from harness.engine.undertrained import undertrained
from harness.storage.store import atomic_write_bytes, probe_writable
from leaderboard import plots
from leaderboard.plots import slug
from leaderboard.tables import (
    Table,
    across_table,
    cost_table,
    drop_table,
    flops_table,
    pareto_table,
    profile_table,
    ranking,
    reading_table,
    readings_text,
    verdicts_table,
    versus_table,
)

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; } h3 { font-size: 1.05em; }
table { border-collapse: collapse; margin: .6em 0 1.2em; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } .scroll { overflow-x: auto; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
.note { color: #555; font-size: 12px; max-width: 900px; } .zone { background: #eef7ee; padding: .6em 1em; }
.warning { background: #fff3cd; border-left: 4px solid #d39e00; padding: .6em 1em; }
#status.bad { background: #fdd; padding: .5em; }
"""

# Marks each plot as loaded or not and says so at the top of the page, so a broken asset is visible
# to a reader (and to the page's test).
CHECK = """
window.addEventListener("error", e => { document.body.dataset.errors = (document.body.dataset.errors || "")
  + (e.message || "resource failed") + ";"; });
window.addEventListener("load", () => {
  const imgs = [...document.querySelectorAll("figure img")];
  let bad = 0;
  for (const img of imgs) { const ok = img.complete && img.naturalWidth > 0; img.dataset.loaded = ok ? "yes" : "no";
    if (!ok) bad++; }
  const status = document.getElementById("status");
  status.textContent = bad ? `${bad} of ${imgs.length} plots failed to load` : "";
  status.className = bad ? "bad" : "";
  document.body.dataset.rendered = `${document.querySelectorAll("table").length} tables, ${imgs.length - bad} plots`;
});
"""


@dataclass
class Section:
    title: str
    anchor: str = ""
    summary: str = ""  # one line for the table of contents
    tables: list[Table] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)  # (asset path, caption)
    text: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def build(df: pd.DataFrame, out: Path, title: str = "Retraining after pruning: leaderboard",
          sources: list[str] | None = None, alpha: float = ALPHA, anchors: tuple[float, ...] = ANCHORS,
          bootstrap: int = 200, zone_densities: str | tuple[float, ...] = "paper", margin: float = MARGIN,
          cost: str = "tokens") -> dict[str, object]:
    """Write ``out/index.html``, ``out/summary.md``, ``out/safe_zone.json`` and ``out/assets/``;
    return what was computed."""
    if df.empty:
        raise HarnessError("no results to build a leaderboard from")
    df = results_table.check(df)
    writable(out)
    assets = out / "assets"
    best_all = st.best_validated(df)
    summary_all = st.summarize(df)
    base = st.unpruned(df)
    found = safe_zones(df, alpha=alpha, anchors=anchors, bootstrap=bootstrap, zone_densities=zone_densities,
                       margin=margin)
    overview = Section("Overview", "overview")
    warnings = undertrained(st.unpruned_bases(df))
    overview.warnings += warnings
    overview.tables.append(verdicts_table(found))
    figures: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
    for scope, zone in sorted(found.scopes.items(), key=lambda item: item[0] != ("one-shot", "unstructured")):
        where = f"Across the {len(zone.networks)} networks of {scope_name(scope)}"
        overview.text += readings_text(zone.readings, where)
        overview.tables.append(across_table(zone))
    best_of = dict(tuple(best_all.groupby(GROUP)))
    for scope, names in scopes_of(found, best_of).items():
        cells = pd.concat([best_of[key] for key in names])
        name = slug("profile", *scope)
        profile = st.performance_profile(cells)
        overview.tables.append(profile_table(profile, scope))
        top = max(5.0, float(cells.groupby(["task", "pruning", "schedule", "density"])["test_median"]
                             .agg(lambda v: v.max() - v.min()).max()))
        figures.append((plots.profile_plot, (st.performance_profile(cells, np.linspace(0, top, 101)),
                                             f"performance profile, {scope_name(scope)} ({len(names)} networks)",
                                             assets, name)))
        overview.figures.append((f"assets/{name}.svg", f"Performance profile of {scope_name(scope)}: each method's "
                                 "share of (network, density) cells within x points of the best method there."))
    overview.tables.append(drop_table(df))
    for task, rows in df.groupby("task"):
        if (compared := against_baseline(rows, axis_of(cost))) and rows["pruning"].nunique() > 1:
            overview.tables.append(versus_table(compared, axis_of(cost).label, f"{task}, every pruning and density"))
    sections = [overview]
    summary_of = dict(tuple(summary_all.groupby(GROUP)))
    for key, group in df.groupby(GROUP):
        task, pruning, schedule = key
        name = slug(task, pruning, schedule)
        label = f"{task}, {pruning}, {schedule}"
        metric = group["metric"].iloc[0]
        section = Section(f"{task}: {pruning}, {schedule}", name)
        best, summary = best_of[key], summary_of[key]
        zone = found.networks.get(label)
        shaded = []
        if zone is not None:
            section.text.append(f"Zone read at densities {', '.join(f'{d:.3g}' for d in zone.densities)}: "
                                f"{zone.density_rule}.")
            section.text += readings_text(zone.readings, "Safe zone")
            section.summary = "; ".join(f"{k} {r.span()}" for k, r in zone.readings.items())
            section.tables += [reading_table(zone, "conditional"), reading_table(zone, "generalizing")]
            shaded = [(f"{k} zone", r.start, r.end, colour) for k, colour in
                      (("descriptive", "#7f7f7f"), ("conditional", "#2ca02c"), ("generalizing", "#1f77b4"))
                      if (r := zone.readings[k]).verdict == "zone"]
            figures.append((plots.zone_heatmap, (zone.heatmap, zone.densities, label, assets, f"{name}-zone")))
            section.figures.append((f"assets/{name}-zone.svg",
                                    "Where the zone comes from: per rewinding method, the median difference to "
                                    "fine-tuning over seeds at each density and retraining time (colour), and the "
                                    "seeds on which it wins (text); * marks the densities the zone is read at."))
        else:
            section.text.append(f"Safe zone: not computed ({found.skipped[label]}).")
            section.summary = "safe zone not computed"
        unpruned = float(base[task]) if task in base.index else None
        figures.append((plots.accuracy_vs_compression, (best, unpruned, label, metric, assets, f"{name}-compression")))
        section.figures.append((f"assets/{name}-compression.svg",
                                f"Test {metric} at the retraining time chosen on validation against compression: "
                                "median over seeds, band from min to max."))
        figures.append((plots.accuracy_vs_retraining, (summary, shaded, label, metric, assets, f"{name}-retraining")))
        section.figures.append((f"assets/{name}-retraining.svg",
                                f"Test {metric} against retraining time (fraction of T) per density; shaded: "
                                "the zone of each reading that finds one."))
        curves = search_cost_panels(group)
        if curves:
            figures.append((plots.accuracy_vs_search_cost, (curves, metric, label, assets, f"{name}-search-cost")))
            section.figures.append((f"assets/{name}-search-cost.svg",
                                    f"Test {metric} against search cost (retraining epochs) at the highest "
                                    "compression with no drop and with a 1-point drop from the unpruned network."))
        section.tables.append(pareto_table(st.frontiers(group)[(task, pruning, schedule, "all")]))
        for density in sorted(group["density"].unique(), reverse=True):
            section.tables.append(ranking(best, density))
        if (ft := flops_table(group)) is not None:
            section.tables.append(ft)
        cost_section(section, group, axis_of(cost), metric, label, assets, name, figures)
        sections.append(section)
    draw(figures)
    sources_text = ", ".join(sources or [])
    zones = found.as_dict()
    try:
        atomic_write_bytes(out / "index.html", render_html(title, sections, sources_text).encode())
        atomic_write_bytes(out / "summary.md", render_markdown(title, sections, sources_text).encode())
        atomic_write_bytes(out / "safe_zone.json", (json.dumps(zones, indent=2, default=float) + "\n").encode())
    except OSError as e:
        raise HarnessError(f"cannot write the leaderboard into {out} ({e.strerror}); choose another folder with "
                           "--out") from None
    return {"sections": len(sections), "zones": zones, "rows": len(df), "warnings": warnings}


PLOTTED_COSTS = ("tokens", "params", "memory", "flops")  # retraining epochs: the retraining plot's axis


def cost_section(section: Section, group: pd.DataFrame, axis: Axis, metric: str, label: str, assets: Path,
                 name: str, figures: list[tuple[Callable[..., Any], tuple[Any, ...]]]) -> None:
    """Where the group's cells recorded their cost: the ranking at equal cost on ``axis``, and the score against
    each cost axis."""
    if cost_recorded(group).empty:
        return
    ranked = at_equal_cost(group, axis)
    if (compared := against_baseline(group, axis)):
        section.tables.append(versus_table(compared, axis.label, "every density"))
    for density in sorted(ranked["density"].unique(), reverse=True) if len(ranked) else []:
        section.tables.append(cost_table(ranked, axis.label, density))
    for axis_name in PLOTTED_COSTS:
        shown = AXES[axis_name]
        cells = cell_costs(group, shown)
        if cells.empty:
            continue
        figures.append((plots.score_vs_cost, (cells, shown.label, metric, label, assets, f"{name}-cost-{axis_name}")))
        section.figures.append((f"assets/{name}-cost-{axis_name}.svg",
                                f"Test {metric} against {shown.label}, per density: median over seeds, bars from "
                                "min to max, a point per method and retraining time."))


def scopes_of(found: SafeZones, best_of: dict[tuple[str, str, str], pd.DataFrame]
              ) -> dict[tuple[str, str], list[tuple[str, str, str]]]:
    """The (task, pruning, schedule) groups of each scope with two or more networks."""
    out: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
    for key in best_of:
        out.setdefault(scope_of(key[1], key[2]), []).append(key)
    return {scope: keys for scope, keys in out.items() if len(keys) > 1}


def draw(figures: list[tuple[Callable[..., Any], tuple[Any, ...]]]) -> None:
    """Draw the plots, in parallel processes when there are many: matplotlib holds one core per figure."""
    workers = min(len(figures) // 3, os.cpu_count() or 1)
    if workers < 2:
        for function, args in figures:
            function(*args)
        return
    known = {name: metric_of(name) for name in METRICS.names()}  # those registered here at run time too
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=knowing,
                             initargs=(known,)) as pool:
        for done in [pool.submit(function, *args) for function, args in figures]:
            done.result()


def knowing(metrics: dict[str, Metric]) -> None:
    """A drawing process's start: the metrics of the process that built the page, registered where missing (a
    spawned process imports only the built-in ones)."""
    for name, metric in metrics.items():
        if name not in METRICS:
            register_metric(metric)


def writable(out: Path) -> None:
    """Fail before any work when the output folder cannot be written."""
    try:
        probe_writable(out / "assets")
    except OSError as e:
        raise HarnessError(f"cannot write the leaderboard into {out} ({e.strerror or e}); choose a writable folder "
                           "with --out") from None


def search_cost_panels(group: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """One panel per density picked by the no-drop and the 1-point criteria (one, if both pick it)."""
    picked: dict[float, list[str]] = {}
    target: dict[float, float] = {}
    for drop in (0.0, 1.0):
        at = st.compression_at_drop(group, drop)
        if len(at) and not pd.isna(at["density"].iloc[0]):
            density = float(at["density"].iloc[0])
            picked.setdefault(density, []).append("no accuracy drop" if drop == 0 else "1-point accuracy drop")
            target[density] = float(group.loc[group["density"] == density, "target_density"].iloc[0])
    return [(f"{' and '.join(labels)}: density {target[d]:.3g}", st.search_cost_curves(group, d))
            for d, labels in picked.items()]


def render_table_html(t: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in t.header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in t.rows)
    note = f'<p class="note">{html.escape(t.note)}</p>' if t.note else ""
    return (f"<h3>{html.escape(t.title)}</h3><div class='scroll'><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table></div>{note}")


def render_html(title: str, sections: list[Section], sources: str) -> str:
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{CSS}</style><script>{CHECK}</script></head><body>",
             f"<h1>{html.escape(title)}</h1><p id='status'></p>",
             f"<p class='note'>Sources: {html.escape(sources)}. Every figure is the median, min and max over seeds; "
             "retraining time is chosen on validation and reported on test.</p>"]
    parts.append("<nav><h2>Contents</h2><ul>" + "".join(
        f"<li><a href='#{html.escape(s.anchor)}'>{html.escape(s.title)}</a>"
        + (f" <span class='note'>({html.escape(s.summary)})</span>" if s.summary else "") + "</li>"
        for s in sections) + "</ul></nav>")
    for s in sections:
        parts.append(f"<h2 id='{html.escape(s.anchor)}'>{html.escape(s.title)}</h2>")
        parts += [f"<p class='warning'>{html.escape(t)}</p>" for t in s.warnings]
        parts += [f"<p class='zone'>{html.escape(t)}</p>" for t in s.text]
        for path, caption in s.figures:
            png = html.escape(path[:-4]) + ".png"
            parts.append(f"<figure><img src='{html.escape(path)}' alt='{html.escape(caption)}'>"
                         f"<figcaption class='note'>{html.escape(caption)} PNG: "
                         f"<a href='{png}'>{png}</a></figcaption></figure>")
        parts += [render_table_html(t) for t in s.tables]
    parts.append("</body></html>\n")
    return "\n".join(parts)


def render_markdown(title: str, sections: list[Section], sources: str) -> str:
    lines = [f"# {title}", "", f"Sources: {sources}. Median (min-max) over seeds; t chosen on validation.", ""]
    lines += ["## Contents", ""]
    lines += [f"- [{s.title}](#{s.anchor})" + (f" ({s.summary})" if s.summary else "") for s in sections] + [""]
    for s in sections:
        lines += [f'<a id="{s.anchor}"></a>', "", f"## {s.title}", ""]
        lines += [f"> **Warning:** {t}" for t in s.warnings] + ([""] if s.warnings else [])
        lines += [f"**{t}**" for t in s.text] + ([""] if s.text else [])
        lines += [f"![{caption}]({path[:-4]}.png)" for path, caption in s.figures] + [""]
        for t in s.tables:
            lines += [f"### {t.title}", "", "| " + " | ".join(t.header) + " |",
                      "|" + "---|" * len(t.header)]
            lines += ["| " + " | ".join(row) + " |" for row in t.rows]
            lines += (["", t.note] if t.note else []) + [""]
    return "\n".join(lines)
