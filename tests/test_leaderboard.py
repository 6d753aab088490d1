"""`harness leaderboard` end to end, the page rendered in headless Chromium, and `harness ui`."""

import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.statistics import normalize
from leaderboard.site import build

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
    built = build(synthetic(), out, sources=["synthetic"])
    assert built["zones"]["toy-a-global-magnitude-one-shot"]["start"] == pytest.approx(0.3)
    return out


def test_site_files_and_markdown(site):
    assert (site / "index.html").exists() and (site / "summary.md").exists()
    for task in ("toy-a", "toy-b"):
        for plot in ("compression", "retraining", "search-cost"):
            for ext in ("png", "svg"):
                assert (site / "assets" / f"{task}-global-magnitude-one-shot-{plot}.{ext}").stat().st_size > 1000
    md = (site / "summary.md").read_text()
    assert md.count("safe zone 30%-80% of T") >= 3  # each task, and both together
    assert "Across all tasks: safe zone 30%-80% of T" in md
    assert md.count("### density 0.5 (compression 2.00x)") == 2
    page = (site / "index.html").read_text()
    assert "http://" not in page and "https://" not in page  # nothing to fetch: it opens offline


def render(page: Path, tmp_path: Path) -> tuple[str, str]:
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is missing: the README's test command installs it"
    done = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", page.as_uri()],
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
    # per task: safe zone, Pareto frontier, 3 densities, FLOPs; the overview: drops, safe zone over both
    assert tables == 2 * 6 + 2 and plots == 6
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
    from harness.experiment import Runner
    from harness.hparams import BaseHparams, RetrainHparams
    from harness.store import Store

    runner = Runner(Store(tmp_path / "store"))
    base = BaseHparams("mnist1d", seed=0, epochs_scale=0.1)
    for method in ("fine-tuning", "lr-rewinding"):
        runner.retrain(RetrainHparams(base, method, 1.5, (0.5,)))
    csv = tmp_path / "published.csv"
    synthetic(tasks=("published",)).to_csv(csv, index=False)
    result = CliRunner().invoke(app, ["leaderboard", "--store", str(tmp_path / "store"), "--csv", str(csv)])
    assert result.exit_code == 0, result.output
    md = (tmp_path / "store" / "leaderboard" / "summary.md").read_text()
    assert "## mnist1d (epochs x0.1): global-magnitude, one-shot" in md
    assert "## published: global-magnitude, one-shot" in md
    assert "safe zone 30%-80% of T" in md  # computed on the published rows
    bad = CliRunner().invoke(app, ["leaderboard", "--store", str(tmp_path / "empty")])
    assert bad.exit_code == 2 and bad.stderr.startswith("error: no results in")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ui_serves_the_store_on_loopback(tmp_path):
    from harness.experiment import Runner
    from harness.hparams import BaseHparams, RetrainHparams
    from harness.store import Store
    from harness.tracking import Tracker, default_uri

    store = Store(tmp_path)
    runner = Runner(store, tracker=Tracker(default_uri(store.root), store.root))
    runner.retrain(RetrainHparams(BaseHparams("mnist1d", seed=0, epochs_scale=0.1), "lr-rewinding", 1.5, (0.5,)))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "harness", "ui", "--store", str(tmp_path), "--port", str(port)],
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in line
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/experiments/search?max_results=10",
                                      timeout=30).read().decode()
        assert '"name": "mnist1d"' in body or '"name":"mnist1d"' in body
    finally:
        import os
        import signal

        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    time.sleep(0.1)
