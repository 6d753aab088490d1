"""The leaderboard at the size of the paper's released results.

    python benchmarks/leaderboard_build.py [--bootstrap 200] [--out DIR] [--profile]

Builds the whole page (statistics, the safe zone's three readings per network and across the
networks of each scope with the stability resamples, every plot as SVG and PNG, HTML and Markdown)
from ``leaderboard.synthetic.paper_shaped()``: 16 network/pruning/schedule groups, 5 methods, 10
retraining times, 5 to 25 densities, 3 seeds, about 22,000 rows. Prints seconds, rows per second,
and the time of each phase; the goal is at most 30 s on 2 cores. ``--zone-densities all`` reads the
zone at every density (the heaviest case). ``--profile`` adds cProfile's top entries.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and its name would hide the package.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from harness.analysis.safe_zone import safe_zones  # noqa: E402
from leaderboard.site import build  # noqa: E402
from leaderboard.synthetic import paper_shaped  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--zone-densities", default="paper")
    parser.add_argument("--out", type=Path, default=None, help="keep the page here [default: a temporary folder]")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    started = time.perf_counter()
    df = paper_shaped()
    generated = time.perf_counter()
    safe_zones(df, bootstrap=args.bootstrap, zone_densities=args.zone_densities)
    zones = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "site"
        profiler = cProfile.Profile() if args.profile else None
        begin = time.perf_counter()
        if profiler:
            profiler.enable()
        built = build(df, out, sources=["synthetic"], bootstrap=args.bootstrap, zone_densities=args.zone_densities)
        if profiler:
            profiler.disable()
        seconds = time.perf_counter() - begin
    print(f"rows {len(df):,}, groups {df.groupby(['task', 'pruning', 'schedule']).ngroups}, "
          f"bootstrap {args.bootstrap}")
    print(f"table generated in {generated - started:.2f} s; safe zones alone {zones - generated:.2f} s")
    print(f"leaderboard built in {seconds:.2f} s: {len(df) / seconds:,.0f} rows/s "
          f"(goal: at most 30 s on 2 cores)")
    for scope, zone in built["zones"]["across"].items():
        spans = ", ".join(f"{k} {zone[k]['verdict']}" + (f" {zone[k]['start']:.0%}-{zone[k]['end']:.0%}"
                                                           if zone[k]["verdict"] == "zone" else "")
                          for k in ("descriptive", "conditional", "generalizing"))
        print(f"across networks, {scope}: {spans}")
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(15)


if __name__ == "__main__":
    main()
