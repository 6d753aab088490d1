"""`harness leaderboard` end to end, the page rendered in headless Chromium, and `harness ui`."""

import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from harness.analysis.results_table import normalize
from harness.cli.app import app
from leaderboard.site import build
from tests.conftest import free_port
from tests.processes import STOP_CASES_QUICK, cleanup, start

METHODS = ("fine-tuning", "weight-rewinding", "lr-rewinding", "reinit")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000", "--dump-dom"]


def synthetic(tasks=("toy-a", "toy-b")) -> pd.DataFrame:
    """Two tasks where rewinding beats fine-tuning in the middle of the retraining times."""
    rng = np.random.default_rng(1)
    rows = []
    for task in tasks:
        for density in (0.5, 0.2, 0.05):
            for seed in range(3):
                for k in range(1, 11):
                    for method in METHODS:
                        gain = 3.0 if method.endswith("rewinding") and 3 <= k <= 8 else 0.0
                        acc = 90 - 10 * (density < 0.1) + gain + rng.normal(0, 0.2)
                        rows.append({"task": task, "pruning": "global-magnitude", "schedule": "one-shot",
                                     "method": method, "density": density, "retraining_epochs": 3.0 * k,
                                     "seed": seed, "val_acc": acc, "test_acc": acc, "unpruned_test_acc": 91.0,
                                     "flops": 1e6 * density, "dense_flops": 1e6})
    return normalize(pd.DataFrame(rows))


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    built = build(synthetic(), out, sources=["synthetic"], zone_densities="all")
    network = built["zones"]["networks"]["toy-a, global-magnitude, one-shot"]
    assert network["conditional"]["start"] == pytest.approx(0.3)
    assert network["densities"] == [0.5, 0.2, 0.05] and network["seeds"] == 3
    assert set(network) >= {"descriptive", "conditional", "generalizing"}
    return out


def test_the_page_warns_of_an_undertrained_base_network(tmp_path):
    df = synthetic(tasks=("mnist1d", "toy"))
    df.loc[df["task"] == "mnist1d", "unpruned_test_acc"] = 87.5  # documented: 99.0
    built = build(df, tmp_path / "site", sources=["synthetic"], bootstrap=0)
    [warning] = built["warnings"]
    assert "mnist1d is under-trained: unpruned test 87.50, 11.5 points under the documented 99" in warning
    assert warning in (tmp_path / "site" / "summary.md").read_text()
    assert "under-trained" in (tmp_path / "site" / "index.html").read_text()
    df.loc[df["task"] == "mnist1d", "unpruned_test_acc"] = 94.5  # within 5 points
    assert build(df, tmp_path / "site2", sources=["synthetic"], bootstrap=0)["warnings"] == []


def test_site_files_and_markdown(site):
    assert (site / "index.html").exists() and (site / "summary.md").exists()
    for task in ("toy-a", "toy-b"):
        for plot in ("compression", "retraining", "search-cost"):
            for ext in ("png", "svg"):
                assert (site / "assets" / f"{task}-global-magnitude-one-shot-{plot}.{ext}").stat().st_size > 1000
    md = (site / "summary.md").read_text()
    assert md.count("safe zone 30%-80% of T") >= 3  # each task, and both together
    assert ("Across the 2 networks of one-shot, unstructured, conditional (certified for these base networks): "
            "safe zone 30%-80% of T") in md
    assert ("- [toy-a: global-magnitude, one-shot](#toy-a-global-magnitude-one-shot) (descriptive 30%-80% of T; "
            "conditional 30%-80% of T; generalizing inconclusive)") in md
    assert "3 seeds cannot reach 0.0167 even if every seed favoured rewinding" in md  # how many seeds would
    zones = json.loads((site / "safe_zone.json").read_text())
    assert zones["headline"] == "one-shot, unstructured" and zones["zone_densities"] == "all"
    assert zones["across"]["one-shot, unstructured"]["networks"] == ["toy-a, global-magnitude, one-shot",
                                                                      "toy-b, global-magnitude, one-shot"]
    assert md.count("### density 0.5 (compression 2.00x)") == 2
    page = (site / "index.html").read_text()
    assert "http://" not in page and "https://" not in page  # nothing to fetch: it opens offline


def render(page: Path | str, tmp_path: Path) -> tuple[str, str]:
    """The DOM of a page (a file, or an address) once headless Chromium has run its scripts, and its log."""
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is missing: the README's test command installs it"
    url = page.as_uri() if isinstance(page, Path) else page
    done = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", url],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, done.stderr


def problems(dom: str, log: str) -> list[str]:
    found = [line for line in log.splitlines() if ":CONSOLE" in line]
    found += [f"plot not loaded: {m}" for m in re.findall(r'<img[^>]*data-loaded="no"[^>]*>', dom)]
    found += [f"page error: {m}" for m in re.findall(r'data-errors="([^"]*)"', dom)]
    return found


def test_page_renders_every_table_and_plot_in_headless_chromium(site, tmp_path):
    dom, log = render(site / "index.html", tmp_path)
    tables, plots = (len(re.findall(r"<table", dom)), len(re.findall(r"<img", dom)))
    # per task: two readings' tables, Pareto frontier, 3 densities, FLOPs; the overview: verdicts, zone across both,
    # performance profile, drops. Plots per task: zone heatmap, compression, retraining, search cost; the profile.
    assert tables == 2 * 7 + 4 and plots == 2 * 4 + 1
    assert "href=\"#toy-b-global-magnitude-one-shot\"" in dom  # the table of contents
    assert re.search(rf'data-rendered="{tables} tables, {plots} plots"', dom), dom[:500]
    assert dom.count('data-loaded="yes"') == plots
    assert problems(dom, log) == []


def test_the_chromium_check_catches_a_broken_page(site, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(site, broken)
    (broken / "assets" / "toy-a-global-magnitude-one-shot-compression.svg").unlink()
    page = broken / "index.html"
    page.write_text(page.read_text().replace("</body>", "<script>console.error('boom'); nosuch();</script></body>"))
    dom, log = render(page, tmp_path)
    found = problems(dom, log)
    assert any("plot not loaded" in p for p in found)
    assert any("boom" in p for p in found) and any("nosuch" in p for p in found)


def test_leaderboard_command_reads_the_store_and_external_csv(tmp_path):
    from harness.core.hparams import BaseHparams, RetrainHparams
    from harness.engine.runner import Runner
    from harness.storage.store import Store

    runner = Runner(Store(tmp_path / "store"))
    base = BaseHparams("mnist1d", seed=0, epochs_scale=0.1)
    for method in ("fine-tuning", "lr-rewinding"):
        runner.retrain(RetrainHparams(base, method, 1.5, (0.5,)))
    csv = tmp_path / "published.csv"
    synthetic(tasks=("published",)).to_csv(csv, index=False)
    result = CliRunner().invoke(app, ["leaderboard", "--store", str(tmp_path / "store"), "--csv", str(csv),
                                      "--zone-densities", "all"])
    assert result.exit_code == 0, result.output
    md = (tmp_path / "store" / "leaderboard" / "summary.md").read_text()
    assert "## mnist1d (epochs x0.1): global-magnitude, one-shot" in md
    assert "## published: global-magnitude, one-shot" in md
    assert "safe zone 30%-80% of T" in md  # computed on the published rows
    bad = CliRunner().invoke(app, ["leaderboard", "--store", str(tmp_path / "empty")])
    assert bad.exit_code == 2 and bad.stderr.startswith("error: no results in")


def processes_with(text: str) -> list[int]:
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text in cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                pids.append(int(cmdline.parent.name))
        except OSError:  # gone meanwhile
            pass
    return pids


@pytest.fixture(scope="module")
def tracked_store(tmp_path_factory) -> Path:
    """A store with one trained cell mirrored to its sqlite MLflow store."""
    from harness.core.hparams import BaseHparams, RetrainHparams
    from harness.engine.runner import Runner
    from harness.storage.store import Store
    from harness.tracking.mirror import Tracker, default_uri

    store = Store(tmp_path_factory.mktemp("tracked"))
    runner = Runner(store, tracker=Tracker(default_uri(store.root), store.root))
    runner.retrain(RetrainHparams(BaseHparams("mnist1d", seed=0, epochs_scale=0.1), "lr-rewinding", 1.5, (0.5,)))
    return store.root


def test_ui_keeps_mlflows_output_in_a_log_and_says_in_one_line_why_it_could_not_serve(tracked_store):
    """A port in use: MLflow's own lines stay in STORE/mlflow-ui.log, and the one error line quotes the
    reason from it."""
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "harness", "ui", "--store", str(tracked_store), "--port",
                                 str(port)], capture_output=True, text=True, timeout=180)
    assert result.returncode == 1 and result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: the MLflow UI exited") and "Address already in use" in line
    log = tracked_store / "mlflow-ui.log"
    assert str(log) in line and "[MLflow]" in log.read_text() and "Address already in use" in log.read_text()


@pytest.mark.parametrize(("stop", "sigint_ignored"), STOP_CASES_QUICK)
def test_ui_serves_the_store_on_loopback_and_stops_with_its_server(tracked_store, tmp_path, stop, sigint_ignored):
    port = free_port()
    proc = start([sys.executable, "-m", "harness", "ui", "--store", str(tracked_store), "--port", str(port)],
                 sigint_ignored, stdout=subprocess.PIPE)
    try:
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/#/experiments?workflowType=machine_learning" in line
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/experiments/search?max_results=10",
                                      timeout=30).read().decode()
        assert '"name": "mnist1d"' in body or '"name":"mnist1d"' in body
        assert "custom_model_development" in body  # the experiment's kind: model training
        assert processes_with(f"--port {port}")
        if (stop, sigint_ignored) == (signal.SIGTERM, False):
            # the address printed opens an experiment on its runs, not on GenAI pages
            address = line.split(": ", 1)[1].split()[0]
            dom, _ = render(address.replace("#/experiments?", "#/experiments/1?"), tmp_path)
            assert "base s0 epochs_scale=0.1" in dom and "Detect Issues" not in dom
    finally:
        proc.send_signal(stop)  # to harness alone, as `kill` or a service manager would
        code = proc.wait(timeout=15)  # within a few seconds: the server is stopped once, not waited on twice
        cleanup(proc.pid)
    assert code == 128 + stop  # as every command stops (harness.core.signals)
    deadline = time.time() + 30
    while processes_with(f"--port {port}") and time.time() < deadline:
        time.sleep(0.2)
    assert processes_with(f"--port {port}") == [], "the MLflow server outlived harness ui"
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)


def test_a_large_page_stays_readable_and_renders(tmp_path):
    """The biggest groups of a paper-sized table: 25 and 20 densities, three grids, BLEU beside accuracy."""
    from leaderboard.synthetic import GROUPS, paper_shaped

    df = paper_shaped(groups=(GROUPS[0], GROUPS[1], GROUPS[12], GROUPS[14]))
    out = tmp_path / "large"
    built = build(df, out, sources=["synthetic"], bootstrap=20, zone_densities="all")
    assert built["zones"]["across"]["one-shot, unstructured"]["conditional"]["verdict"] == "zone"
    dom, log = render(out / "index.html", tmp_path)
    assert problems(dom, log) == []
    assert dom.count('data-loaded="yes"') == 4 * 4 + 1  # a zone heatmap per group, the scope's profile
    assert dom.count("<li><a href=") == 5  # contents: the overview and four groups
    page = (out / "index.html").read_text()
    assert "<h3>density 0.8 (compression 1.25x)</h3>" in page  # the target density, not the realized one
    assert "not shown safe in" in page  # the zone across networks names what bounds it


def tick_labels_overlap(fig, axis: str = "x") -> bool:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        labels = [t for t in getattr(ax, f"get_{axis}ticklabels")(which="both") if t.get_visible() and t.get_text()]
        boxes = sorted((t.get_window_extent(renderer) for t in labels), key=lambda b: b.x0)
        if any(a.x1 > b.x0 for a, b in itertools.pairwise(boxes)):
            return True
    return False


def test_plots_use_percent_and_keep_tick_labels_apart_at_25_densities():
    import matplotlib.pyplot as plt

    from harness.analysis import statistics as st
    from leaderboard.plots import compression_figure, retraining_figure
    from leaderboard.synthetic import GROUPS, paper_shaped

    df = paper_shaped(groups=(GROUPS[0],))
    fig = compression_figure(st.best_validated(df), 91.7, "x", "accuracy")
    assert not tick_labels_overlap(fig)
    assert all(t.get_text().endswith("%") for t in fig.axes[0].get_yticklabels() if t.get_text())
    plt.close(fig)
    summary = st.summarize(df)
    fig = retraining_figure(summary, [], "x", "accuracy")
    assert len([a for a in fig.axes if a.has_data()]) == 25 and not tick_labels_overlap(fig)
    plt.close(fig)
    bleu = paper_shaped(groups=(GROUPS[14],))
    fig = compression_figure(st.best_validated(bleu), 26.9, "x", "bleu")
    assert not any(t.get_text().endswith("%") for t in fig.axes[0].get_yticklabels())
    plt.close(fig)


def test_one_search_cost_panel_when_both_criteria_pick_the_same_density():
    from leaderboard.site import search_cost_panels

    df = synthetic(tasks=("toy",))
    df["unpruned_test_acc"] = 95.0  # nothing reaches it: the 1-point criterion has no density either
    assert search_cost_panels(df) == []
    df["unpruned_test_acc"] = 93.5  # rewinding's 93 is within one point at 0.2, and nothing reaches 93.5
    [(label, _)] = search_cost_panels(df)
    assert label.startswith("1-point accuracy drop: density 0.2")
    df["unpruned_test_acc"] = 80.0  # the sparsest density passes both criteria: one panel
    [(label, curve)] = search_cost_panels(df)
    assert label.startswith("no accuracy drop and 1-point accuracy drop: density 0.05")
    assert set(curve["density"]) == {0.05}


def test_ui_killed_by_sigkill_takes_its_server(tmp_path):
    """SIGKILL reaches no handler: the MLflow server goes because the kernel tells it its parent died."""
    from harness.core.hparams import BaseHparams, RetrainHparams
    from harness.engine.runner import Runner
    from harness.storage.store import Store
    from harness.tracking.mirror import Tracker, default_uri

    store = Store(tmp_path)
    Runner(store, tracker=Tracker(default_uri(store.root), store.root)).retrain(
        RetrainHparams(BaseHparams("mnist1d", seed=0, epochs_scale=0.1), "fine-tuning", 1.5, (0.5,)))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "harness", "ui", "--store", str(tmp_path), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert f"http://127.0.0.1:{port}/" in proc.stdout.readline()
        assert processes_with(f"--port {port}")
    finally:
        proc.kill()
        proc.wait(timeout=30)
    deadline = time.time() + 15
    while processes_with(f"--port {port}") and time.time() < deadline:
        time.sleep(0.2)
    left = processes_with(f"--port {port}")
    for pid in left:  # do not leave them to the next test
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert left == [], "the MLflow server outlived a SIGKILLed harness ui"


def test_small_data_plots_keep_their_titles_inside_and_a_point_of_axis_at_least(tmp_path):
    """One density and a long network name: rendered in headless Chromium, every plot's title lies inside
    its SVG; and half a point between the methods spans no more than half the axis."""
    df = synthetic(tasks=("mnist1d-with-a-long-name (epochs x0.2)",))
    df = df[np.isclose(df["density"], 0.5)].copy()
    df["test_acc"] = 95.6 + 0.5 * (df["method"] == "lr-rewinding")
    site = tmp_path / "site"
    build(df, site, sources=["synthetic"], bootstrap=0)
    svgs = sorted((site / "assets").glob("*.svg"))
    assert len(svgs) >= 3
    page = tmp_path / "measure.html"
    page.write_text("<html><body>" + "".join(f'<div data-name="{p.name}">{p.read_text()}</div>' for p in svgs)
                    + """<script>
    const out = [];
    for (const div of document.querySelectorAll("div[data-name]")) {
      const svg = div.querySelector("svg"), title = svg.getElementById ? svg.querySelector("#title") : null;
      if (!title) { out.push(div.dataset.name + ": no title"); continue; }
      const [, , w, h] = svg.getAttribute("viewBox").split(" ").map(Number), box = title.getBBox();
      if (box.x < 0 || box.y < 0 || box.x + box.width > w || box.y + box.height > h)
        out.push(`${div.dataset.name}: title at ${box.x.toFixed(1)}..${(box.x + box.width).toFixed(1)} of ${w}`);
    }
    document.body.dataset.outside = out.length ? out.join("; ") : "none";
    </script></body></html>""")
    dom, _ = render(page, tmp_path)
    assert 'data-outside="none"' in dom, re.search(r'data-outside="([^"]*)"', dom)
    from leaderboard.plots import MIN_SPAN, retraining_figure

    summary = pd.DataFrame({"density": 0.5, "target_density": 0.5, "method": ["fine-tuning", "lr-rewinding"],
                            "fraction": 0.5, "test_median": [95.6, 96.1], "test_min": [95.6, 96.1],
                            "test_max": [95.6, 96.1]})
    low, high = retraining_figure(summary, [], "a title", "accuracy").axes[0].get_ylim()
    assert high - low >= MIN_SPAN


def test_a_verdict_across_networks_needs_two_tasks_and_a_missing_baseline_is_named():
    """One task at two epochs scales is not two networks; a group without fine-tuning says so and how
    to add it."""
    from harness.analysis.safe_zone import safe_zones

    df = synthetic(tasks=("mnist1d", "mnist1d (epochs x0.2)"))
    df["registered_task"] = "mnist1d"
    found = safe_zones(df, bootstrap=0)
    assert len(found.networks) == 2 and found.scopes == {}
    assert "one task (mnist1d) at other schedules" in found.skipped["across networks, one-shot, unstructured"]
    df["registered_task"] = df["task"]  # two tasks: a verdict across them
    assert set(safe_zones(df, bootstrap=0).scopes) == {("one-shot", "unstructured")}
    alone = synthetic(tasks=("toy",))
    alone = alone[alone["method"] != "fine-tuning"]
    reason = safe_zones(alone, bootstrap=0).skipped["toy, global-magnitude, one-shot"]
    assert "no pairs for fine-tuning: fine-tuning is not in the results" in reason
    assert "add it to the study's methods and rerun `harness sweep`" in reason
