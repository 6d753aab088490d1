"""`harness leaderboard` on the inputs that used to crash it: a store mixing a full-schedule run with
a scaled one, groups with no drop-free density, bad external CSVs, a read-only store, and a `--csv`
run beside a `./results` folder."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from harness.cli.app import app

COLUMNS = "task,pruning,schedule,method,density,retraining_epochs,seed,val_acc,test_acc"


def published(tmp_path: Path, rows: list[str], name: str = "published.csv") -> Path:
    path = tmp_path / name
    path.write_text(COLUMNS + "\n" + "\n".join(rows) + "\n")
    return path


def good_rows(unpruned: float | None = None) -> list[str]:
    rng = np.random.default_rng(0)
    rows = []
    for density in (0.5, 0.2):
        for seed in range(3):
            for t in (10, 20, 30):
                for method, gain in (("fine-tuning", 0), ("weight-rewinding", 1), ("lr-rewinding", 1)):
                    acc = 90 + gain + rng.normal(0, 0.2)
                    rows.append(f"net,global-magnitude,one-shot,{method},{density},{t},{seed},{acc:.2f},{acc:.2f}")
    return rows


def leaderboard(*args: str):
    return CliRunner().invoke(app, ["leaderboard", *args])


def test_a_store_mixing_a_full_schedule_run_with_a_scaled_one_builds(tmp_path):
    """Neither group reaches its unpruned accuracy at density 0.02: the table says so instead of crashing."""
    from harness.core.hparams import BaseHparams, RetrainHparams
    from harness.engine.runner import Runner
    from harness.storage.store import Store

    runner = Runner(Store(tmp_path / "store"))
    for scale in (1.0, 0.1):
        base = BaseHparams("mnist1d", seed=0, epochs_scale=scale)
        runner.retrain(RetrainHparams(base, "fine-tuning", 1.5, (0.02,)))
    result = leaderboard("--store", str(tmp_path / "store"), "--bootstrap", "0")
    assert result.exit_code == 0, result.output
    md = (tmp_path / "store" / "leaderboard" / "summary.md").read_text()
    assert "## mnist1d: global-magnitude, one-shot" in md and "## mnist1d (epochs x0.1): global-magnitude" in md
    assert md.count("| no drop | ") == 2 and "| none |" in md
    assert "Safe zone: not computed (the safe zone needs fine-tuning and weight-rewinding, lr-rewinding" in md


def test_an_external_group_that_never_reaches_its_unpruned_score(tmp_path):
    rows = [r + ",99.5" for r in good_rows()]
    path = tmp_path / "never.csv"
    path.write_text(COLUMNS + ",unpruned_test_acc\n" + "\n".join(rows) + "\n")
    result = leaderboard("--csv", str(path), "--out", str(tmp_path / "site"), "--bootstrap", "0")
    assert result.exit_code == 0, result.output
    md = (tmp_path / "site" / "summary.md").read_text()
    assert "| net | global-magnitude | one-shot | no drop | 99.50 | none |  |" in md


@pytest.mark.parametrize(("change", "message"), [
    (lambda rows: [rows[0], ",".join([*rows[1].split(",")[:7], "", ""]), *rows[2:]],
     "error: blank val_acc, test_acc, density or retraining_epochs in bad.csv:3; every row needs all four"),
    (lambda rows: [*rows, rows[4]], "error: the same cell and seed appears more than once: bad.csv:6, bad.csv:"),
    (lambda rows: [",".join([*r.split(",")[:7], "0.9", "0.91"]) for r in rows],
     "error: task net: every accuracy is at most 1, so it looks like a fraction"),
    (lambda rows: [rows[0].replace(",0.5,", ",50,"), *rows[1:]], "error: density outside (0, 1] in bad.csv:2;"),
    (lambda rows: [rows[0].replace("one-shot", "oneshot"), *rows[1:]],
     "error: unknown schedule 'oneshot' in bad.csv:2; valid: one-shot, iterative"),
])
def test_bad_external_results_get_one_line_naming_the_rows(tmp_path, change, message):
    path = published(tmp_path, change(good_rows()), "bad.csv")
    result = leaderboard("--csv", str(path), "--out", str(tmp_path / "site"))
    assert result.exit_code == 2
    assert result.stderr.startswith(message), result.stderr
    assert result.stderr.count("\n") == 1
    assert not (tmp_path / "site" / "index.html").exists()


def test_csv_reads_only_what_it_is_given_and_labels_its_source(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results" / "retrain" / "x").mkdir(parents=True)
    (tmp_path / "results" / "retrain" / "x" / "result.json").write_text("{not json")  # read, it would fail
    path = published(tmp_path, good_rows())
    result = leaderboard("--csv", str(path), "--bootstrap", "0")
    assert result.exit_code == 0, result.output
    md = (tmp_path / "leaderboard-site" / "summary.md").read_text()
    assert md.startswith("# Retraining after pruning: leaderboard\n\nSources: CSV ")
    assert md.count("| published |") == 6  # every ranked row (3 methods, 2 densities) names its source
    explicit = leaderboard("--store", "results", "--csv", str(path))  # the store only when asked for
    assert explicit.exit_code == 2 and "result.json: not a readable result" in explicit.stderr


def test_a_read_only_store_gets_one_line_suggesting_out(tmp_path):
    """Root ignores permission bits: as root, the command runs without the capability that lets it."""
    from harness.core.hparams import BaseHparams, RetrainHparams
    from harness.engine.runner import Runner
    from harness.storage.store import Store

    store = tmp_path / "store"
    Runner(Store(store)).retrain(RetrainHparams(BaseHparams("mnist1d", epochs_scale=0.1), "fine-tuning", 1.5, (0.5,)))
    os.chmod(store, 0o555)
    drop = ["setpriv", "--bounding-set=-dac_override", "--"] if os.geteuid() == 0 else []
    try:
        done = subprocess.run([*drop, sys.executable, "-m", "harness", "leaderboard", "--store", str(store)],
                              capture_output=True, text=True, timeout=300)
    finally:
        os.chmod(store, 0o755)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"error: cannot write the leaderboard into {store / 'leaderboard'} ("), done.stderr
    assert "choose a writable folder with --out" in done.stderr and done.stderr.count("\n") == 1
    assert not (store / "leaderboard").exists()


def test_the_same_cell_from_two_sources_is_refused_naming_both(tmp_path):
    path = published(tmp_path, good_rows()[:1])
    copy = tmp_path / "copy.csv"
    copy.write_text(path.read_text())
    result = leaderboard("--csv", str(path), "--csv", str(copy))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: the same cell and seed appears more than once: published.csv:2, copy.csv:2")
