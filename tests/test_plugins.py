"""A plugin installed from outside the package (docs/plugin-example, the README's example) registers
a method, a task and a pruning strategy, which `list`, `run`, `sweep` and `tune` then use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "plugin-example"
ROOT = EXAMPLE.parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, str]:
    """The example installed by pip into a folder of its own (no change to this environment), and
    the environment that sees it."""
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    # offline, with this environment's setuptools (tox's build constraints apply to isolated builds only)
    env = {k: v for k, v in os.environ.items() if k != "PIP_BUILD_CONSTRAINT"}
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                           "--no-index", "--target", str(target), str(EXAMPLE)],
                          capture_output=True, text=True, timeout=300, cwd=build, env=env)
    assert done.returncode == 0, done.stderr
    assert list(target.glob("harness_plugin_example-*.dist-info/entry_points.txt"))
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), str(ROOT)])}


def harness(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=600)


def test_the_plugin_appears_in_list(installed, tmp_path):
    done = harness(installed, tmp_path, "list")
    assert done.returncode == 0, done.stderr
    for name in ("half-peak-linear", "blobs", "smallest-magnitude"):
        assert name in done.stdout, name
    plain = harness({**os.environ, "PYTHONPATH": str(ROOT)}, tmp_path, "list")
    assert "half-peak-linear" not in plain.stdout  # only where it is installed


def test_the_plugin_runs_in_run_sweep_and_tune(installed, tmp_path):
    store = tmp_path / "store"
    done = harness(installed, tmp_path, "run", "half-peak-linear", "blobs", "--pruning", "smallest-magnitude",
                   "--density", "0.5", "-t", "2", "--store", str(store), "--no-tracking")
    assert done.returncode == 0, done.stderr
    [result] = [json.loads(p.read_text()) for p in (store / "retrain").glob("blobs-half-peak-linear-*/result.json")]
    assert result["pruning"] == "smallest-magnitude" and result["density"] == pytest.approx(0.5, abs=0.01)

    study = tmp_path / "study.yaml"
    study.write_text("task: blobs\nmethods: [half-peak-linear, lr-rewinding]\npruning: [smallest-magnitude]\n"
                     "retrain_epochs: [2, 4]\ndensities: [0.5]\nseeds: 1\n")
    done = harness(installed, tmp_path, "sweep", str(study), "--store", str(store), "--jobs", "2", "--no-tracking")
    assert done.returncode == 0, done.stderr
    assert "4 cells (3 trained now, 1 cached, 0 failed)" in done.stdout, done.stdout

    done = harness(installed, tmp_path, "tune", "half-peak-linear", "blobs", "--trials", "2", "--seed", "0",
                   "--store", str(store), "--no-tracking", "--space", "t=2,4")
    assert done.returncode == 0, done.stderr
    assert "lr_scale" in done.stdout and "study half-peak-linear-blobs" in done.stdout


def test_a_broken_plugin_is_one_line(tmp_path):
    site = tmp_path / "site"
    (site / "broken_plugin-0.1.dist-info").mkdir(parents=True)
    (site / "broken_plugin-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\n"
                                                                   "Version: 0.1\n")
    (site / "broken_plugin-0.1.dist-info" / "entry_points.txt").write_text(
        "[pruning_harness.plugins]\nbroken = broken_plugin\n")
    (site / "broken_plugin.py").write_text("raise RuntimeError('this plugin is broken')\n")
    done = harness({**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}, tmp_path, "list")
    assert done.returncode == 2
    assert done.stderr == ("error: plugin 'broken' (broken_plugin, entry point group pruning_harness.plugins) "
                           "failed to load: RuntimeError: this plugin is broken\n")
