"""`harness run` end to end for every method, `harness list`, and every kind of bad input."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from methods.spec import METHODS
from tests.conftest import QUICK

cli = CliRunner()


def harness(*args: str):
    return cli.invoke(app, list(args))


@pytest.mark.parametrize("method", ["fine-tuning", "weight-rewinding", "lr-rewinding", "low-lr-rewinding", "reinit"])
def test_run_each_method_end_to_end(shared_store, method):
    result = harness("run", method, "mnist1d", "--epochs-scale", str(QUICK), "--density", "0.2",
                     "-t", "1.5", "--store", str(shared_store))
    assert result.exit_code == 0, result.output
    assert f"{method} on mnist1d" in result.stdout
    assert "5.00x" in result.stdout  # compression ratio of density 0.2
    [folder] = [p for p in (shared_store / "retrain").glob(f"mnist1d-{method}-r1-*")
                if json.loads((p / "hparams.json").read_text()).get("densities") == [0.2]]
    row = json.loads((folder / "result.json").read_text())
    assert row["method"] == method and row["density"] == pytest.approx(0.2, abs=1e-4)
    assert 10 < row["test_acc"] <= 100 and 10 < row["val_acc"] <= 100
    assert json.loads((folder / "mask_densities.json").read_text())


def test_iterative_recipe_algorithm1(shared_store):
    result = harness("run", "algorithm1", "mnist1d", "--epochs-scale", str(QUICK), "--rounds", "2",
                     "--store", str(shared_store), "--no-tracking")
    assert result.exit_code == 0, result.output
    rounds = [line for line in result.stdout.splitlines() if "0.8000" in line or "0.6400" in line]
    assert len(rounds) == 2, result.stdout


def test_several_seeds_report_median_min_max(shared_store):
    result = harness("run", "lr-rewinding", "mnist1d", "--epochs-scale", str(QUICK), "-t", "1.5",
                     "--seed", "0", "--seed", "1", "--store", str(shared_store), "--no-tracking")
    assert result.exit_code == 0, result.output
    assert "median" in result.stdout and "over 2 seeds" in result.stdout


def test_list_shows_tasks_methods_and_recipes():
    result = harness("list")
    assert result.exit_code == 0
    for name in [*METHODS.names(), "mnist1d", "algorithm1", "global-magnitude", "TRAIN^t(W_T, m, T-t)"]:
        assert name in result.stdout


def test_list_shows_the_variants_of_a_store(tmp_path):
    (tmp_path / "variants").mkdir()
    (tmp_path / "variants" / "ft-tuned.json").write_text(json.dumps(
        {"name": "ft-tuned", "method": "fine-tuning", "params": {"lr_scale": 2.5}, "retrain_fraction": 0.5}))
    listed = json.loads(harness("list", "variants", "--json", "--store", str(tmp_path)).stdout)["variants"]
    assert listed == [{"name": "ft-tuned", "method": "fine-tuning", "params": {"lr_scale": 2.5},
                       "retrain_fraction": 0.5, "file": str(tmp_path / "variants" / "ft-tuned.json")}]
    shown = harness("list", "--store", str(tmp_path)).stdout
    assert "method variants of the store" in shown and "lr_scale=2.5" in shown
    assert "method variants" not in harness("list", "--store", str(tmp_path / "none")).stdout  # none: no table


def test_list_by_kind_as_json_and_never_cut(monkeypatch):
    result = harness("list", "tasks", "presets", "--json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert set(listed) == {"tasks", "presets"}
    mnist = next(t for t in listed["tasks"] if t["name"] == "mnist1d")
    assert mnist["documented_unpruned"] == 99.0 and mnist["parameters"] == 24954 and mnist["T"] == 30
    assert {"name", "task", "cells", "description"} <= set(listed["presets"][0])
    methods = json.loads(harness("list", "methods", "--json").stdout)["methods"]
    gradual = next(m for m in methods if m["name"] == "gradual")
    assert {p["name"] for p in gradual["parameters"]} >= {"begin", "span", "every"}
    bad = harness("list", "everything")
    assert bad.exit_code == 2 and "unknown kind 'everything'; valid: tasks, methods, pruning, presets" in bad.stderr
    # piped into 80 columns, every name one types is whole
    monkeypatch.setenv("COLUMNS", "80")
    result = harness("list")
    for name in ["cifar10-resnet110", "imagenet-resnet50", "global-magnitude-no-attention", "mnist1d-strategies"]:
        assert f" {name} " in result.stdout, name
    assert "…" not in result.stdout
    version = harness("--version")
    assert version.exit_code == 0 and version.stdout.startswith("harness 0.1.0 (torch 2.13.0")


def test_list_filters_by_name_or_glob_and_describes_whole(tmp_path):
    rewinding = json.loads(harness("list", "methods", "*REWIND*", "--json").stdout)["methods"]
    assert {m["name"] for m in rewinding} == {"weight-rewinding", "lr-rewinding", "low-lr-rewinding"}
    assert json.loads(harness("list", "llr", "--json").stdout)["methods"][0]["name"] == "llr"  # any kind
    nothing = harness("list", "*zzz*")
    assert nothing.exit_code == 0 and "nothing registered matches *zzz*" in nothing.stdout
    typo = harness("list", "method")
    assert typo.exit_code == 2 and "did you mean 'methods'?" in typo.stderr
    listed = json.loads(harness("list", "--json", "--store", str(tmp_path)).stdout)
    # ranges as fields, and each method's rate as it runs (fine-tuning's is S's final rate)
    lr_scale = next(p for p in next(m for m in listed["methods"] if m["name"] == "llr")["parameters"]
                    if p["name"] == "lr_scale")
    assert (lr_scale["low"], lr_scale["high"], lr_scale["log"], lr_scale["integer"]) == (0.1, 10.0, True, False)
    rates = {m["name"]: m.get("learning_rate") for m in listed["methods"]}
    assert rates["fine-tuning"].startswith("S[T]") and rates["lr-rewinding"] == "S's last t epochs, replayed"
    # a preset's description is its first paragraph, whole
    paper = next(p for p in listed["presets"] if p["name"] == "mnist1d-paper")["description"]
    assert paper.startswith("The paper's one-shot comparison") and paper.endswith("(drops at 50% and 75%).")


def test_run_prints_each_folder_and_warns_of_an_undertrained_base(shared_store, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    result = harness("run", "lr-rewinding", "mnist1d", "--epochs-scale", str(QUICK), "-t", "1.5", "--density", "0.2",
                     "--store", str(shared_store), "--no-tracking")
    assert result.exit_code == 0, result.output
    [line] = [line for line in result.stdout.splitlines() if line.startswith("seed 0 round 1 t=1.5: ")]
    folder = Path(line.split(": ", 1)[1])
    assert folder.parent == shared_store.resolve() / "retrain"
    row = json.loads((folder / "result.json").read_text())
    assert row["densities"] == [0.2] and row["method"] == "lr-rewinding" and row["retraining_epochs"] == 1.5
    assert "unpruned test" in result.stdout and "…" not in result.stdout  # headers whole at 80 columns
    assert "the base network of mnist1d at --epochs-scale 0.1 is under-trained" in result.stderr
    assert f"{99.0 - row['unpruned_test_acc']:.1f} points under the documented 99" in result.stderr


def test_unwritable_store(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = harness("run", "lr-rewinding", "mnist1d", "--store", str(blocker / "store"))
    assert result.exit_code == 2
    assert "is not writable" in result.stderr and "--store" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_console_script_exit_code_and_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "run", "lr-rewinding", "mnist1d", "--density", "2"],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: density must be in (0, 1], got 2; did you mean 0.02 (2%)?"
    assert "Traceback" not in proc.stderr


def test_several_retraining_times_are_chosen_on_validation(shared_store):
    result = harness("run", "fine-tuning", "mnist1d", "--epochs-scale", str(QUICK), "-t", "0.5", "-t", "1",
                     "--store", str(shared_store), "--no-tracking")
    assert result.exit_code == 0, result.output
    assert "selected on validation: t = " in result.stdout
