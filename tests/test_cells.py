"""`harness cells`: a store's finished cells, filtered, with the names `harness export` takes; `--json`
for `run` and `sweep`; and the results table's ``method_label``, which tells a variant from its method."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from harness import api
from harness.cli.app import app
from tests.conftest import QUICK

cli = CliRunner()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("cells")
    for method, density in (("fine-tuning", 0.5), ("lr-rewinding", 0.5), ("lr-rewinding", 0.2)):
        api.run(method, "mnist1d", density=density, retrain_epochs=[1.5], epochs_scale=QUICK, store=root,
                tracking=False)
    variant = root / "variants" / "lrr-fast.json"
    variant.parent.mkdir()
    variant.write_text(json.dumps({"name": "lrr-fast", "method": "lr-rewinding", "params": {},
                                   "retrain_fraction": 0.25}))
    api.run("lrr-fast", "mnist1d", density=0.5, epochs_scale=QUICK, store=root, tracking=False)
    return root


def listed(store, *args):
    result = cli.invoke(app, ["cells", "--store", str(store), "--json", *args])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_cells_are_listed_and_filtered_by_task_method_density_and_seed(store):
    every = listed(store)
    assert len(every) == 4 and {r["run"] for r in every} == {p.name for p in (store / "retrain").iterdir()}
    # a variant matches by its own name and by its method's
    assert {(r["variant"] or r["method"]) for r in listed(store, "--method", "*rewind*")} == {"lr-rewinding",
                                                                                              "lrr-fast"}
    assert [r["variant"] for r in listed(store, "--method", "lrr-*")] == ["lrr-fast"]  # a variant by its name
    assert {r["target_density"] for r in listed(store, "--density", "0.5")} == {0.5}
    assert len(listed(store, "--density", "0.5")) == 3
    assert listed(store, "--task", "cifar10-*") == [] and len(listed(store, "--task", "MNIST1D")) == 4
    assert listed(store, "--seed", "1") == []


def test_a_listed_name_is_what_export_takes(store, tmp_path):
    table = cli.invoke(app, ["cells", "--store", str(store), "--method", "fine-tuning"])
    assert table.exit_code == 0 and "cell (for harness export)" in table.stdout
    [name] = [r["run"] for r in listed(store, "--method", "fine-tuning")]
    assert name in table.stdout
    exported = cli.invoke(app, ["export", name, "--store", str(store), "--out", str(tmp_path / "out")])
    assert exported.exit_code == 0, exported.output
    assert (tmp_path / "out" / "model.json").exists()


def test_the_results_table_tells_a_variant_from_its_method(store):
    table = api.results(store)
    labels = dict(zip(table["run"], table["method_label"], strict=True))
    assert sorted(labels.values()) == ["fine-tuning", "lr-rewinding", "lr-rewinding", "lrr-fast"]
    assert set(table.loc[table["method_label"] == "lrr-fast", "method"]) == {"lr-rewinding"}


def test_run_and_sweep_print_their_outcome_as_json(store, tmp_path):
    run = cli.invoke(app, ["run", "fine-tuning", "mnist1d", "--density", "0.5", "-t", "1.5", "--epochs-scale",
                           str(QUICK), "--store", str(store), "--no-tracking", "--json"])
    assert run.exit_code == 0, run.output
    outcome = json.loads(run.stdout)
    [cell] = outcome["cells"]
    assert (store / "retrain" / cell["run"]).is_dir() and cell["method"] == "fine-tuning"
    assert outcome["store"] == str(store) and outcome["speeds"] == [] and outcome["mlflow"] is None
    study = tmp_path / "study.yaml"
    study.write_text(f"task: mnist1d\nmethods: [fine-tuning, lr-rewinding]\nretrain_epochs: [1.5]\n"
                     f"densities: [0.5]\nseeds: 1\nepochs_scale: {QUICK}\n")
    sweep = cli.invoke(app, ["sweep", str(study), "--store", str(store), "--no-tracking", "--json"])
    assert sweep.exit_code == 0, sweep.output
    summary = json.loads(sweep.stdout)
    assert summary["counts"] == {"done": 0, "cached": 2, "failed": 0} and summary["failures"] == []
    assert summary["results"].endswith("results.csv") and summary["study"] == "study"
