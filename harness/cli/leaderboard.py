"""`harness leaderboard`: the page of a store, CSVs or an MLflow experiment."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness import api
from harness.cli.common import (
    check_finite,
    user_errors,
    warn,
)
from harness.cli.display import out, say_wrapped
from harness.core.errors import HarnessError


def leaderboard(
    store: Annotated[Path | None, typer.Option(
        envvar="HARNESS_STORE", help="results store folder [default: results, unless --csv or --experiment]")] = None,
    csv: Annotated[
        list[Path] | None, typer.Option(help="external results CSV (see README for its columns); repeatable")
    ] = None,
    experiment: Annotated[
        str | None, typer.Option(help="read an MLflow experiment (a task name) instead of the store")] = None,
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow tracking URI for --experiment [default: sqlite in the store]")
    ] = None,
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="output folder [default: STORE/leaderboard, or ./leaderboard-site with only --csv]")] = None,
    alpha: Annotated[float, typer.Option(help="family-wise error of calling an unsafe retraining time safe")] = 0.05,
    anchor: Annotated[list[float] | None, typer.Option(
        help="pre-declared retraining time (fraction of T) the safe-zone tests start from; repeat for several, "
             "alpha is split equally [default: 0.25, 0.5, 0.75]")] = None,
    zone_densities: Annotated[str, typer.Option(
        help="densities the zone is read at: paper (each network's no-drop and 1-point-drop densities), all, "
             "or a list like 0.2,0.1")] = "paper",
    margin: Annotated[float, typer.Option(
        help="points a rewinding method may lose at one density and count as not worse (generalizing reading)")
    ] = 1.0,
    bootstrap: Annotated[int, typer.Option(
        help="seed resamples for the zone's stability figure (0: none)")] = 200,
    cost: Annotated[str, typer.Option(
        help="the cost axis methods are ranked at equal cost on: epochs, tokens, params, memory or flops")
    ] = "tokens",
) -> None:
    """Write the leaderboard: a static site (index.html, opens from file://) and summary.md, with
    rankings per density, the paper's plots (PNG and SVG), the safe zone read three ways.

    Examples:

    \b
      harness leaderboard
      harness leaderboard --csv published.csv --out paper-site
      harness leaderboard --cost params
    """
    # start-up: scipy only for `harness leaderboard`
    from harness.analysis.cost import axis_of
    from harness.analysis.safe_zone import parse_density_rule
    from harness.analysis.zone_grid import ANCHORS

    with user_errors():
        check_finite(locals())
        anchors = tuple(anchor) if anchor else ANCHORS
        axis_of(cost)
        if not 0 < alpha < 1 or not all(0 < a <= 1 for a in anchors) or bootstrap < 0 or margin < 0:
            raise HarnessError(f"--alpha must lie in (0, 1), --anchor in (0, 1], --margin be >= 0 and --bootstrap "
                               f"be >= 0; got {alpha:g}, {', '.join(f'{a:g}' for a in anchors)}, {margin:g}, "
                               f"{bootstrap}")
        built, target = api.leaderboard(store, csv or [], experiment, tracking_uri, out_dir, alpha=alpha,
                                        anchors=anchors, bootstrap=bootstrap,
                                        zone_densities=parse_density_rule(zone_densities), margin=margin, cost=cost)
    out.print(f"leaderboard of {built['rows']} results: {target / 'index.html'} (and summary.md, assets/)",
              highlight=False, soft_wrap=True)
    for line in built["warnings"]:
        warn(line)
    zones = built["zones"]
    places = [(f"across networks, {name}", z) for name, z in zones["across"].items()]
    for name, zone in [*places, *zones["networks"].items()]:
        spans = "; ".join(f"{kind} {zone[kind]['span']}" for kind in ("conditional", "generalizing"))
        say_wrapped(f"safe zone, {name}: descriptive {zone['descriptive']['span']} (the paper: 25%-90%); {spans}")
