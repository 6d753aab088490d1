"""The Python API and `harness export`: records from run and sweep, results as a DataFrame, a pruned
model that scores what its record says, exported and loaded back (compacted where filters were removed)."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from harness import api
from harness.cli.app import app
from harness.core.errors import HarnessError
from harness.engine.export import load_exported
from harness.storage.store import Store
from tasks.spec import DataOptions
from tests.conftest import QUICK
from tests.fabricate import cifar10_folder

cli = CliRunner()


def score_of(model: torch.nn.Module, record, data_dir=None) -> float:
    """The test score of ``model`` on the record's task, as the harness measures it."""
    from harness.engine.export import task_of

    task = task_of(record)
    return task.load_data(DataOptions(data_dir=data_dir, batch_size=task.batch_size, workers=0)).evaluate(model, "test")


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    store = tmp_path_factory.mktemp("api") / "store"
    records = api.run("lr-rewinding", "mnist1d", density=0.3, retrain_epochs=[1.5], epochs_scale=QUICK,
                      store=store, tracking=False)
    return store, records


def test_run_returns_records_and_results_reads_them_as_a_dataframe(ran):
    store, records = ran
    [record] = records
    assert record.method == "lr-rewinding" and record.target_density == 0.3 and record.retraining_epochs == 1.5
    assert (Store(store).cell_dir(record.run) / "result.json").exists()
    df = api.results(store)
    assert list(df["run"]) == [record.run]
    assert df.loc[0, "test_acc"] == record.test_acc and df.loc[0, "val_acc"] == record.val_acc
    # a second call is served from the store
    [again] = api.run("lr-rewinding", "mnist1d", density=0.3, retrain_epochs=[1.5], epochs_scale=QUICK,
                      store=store, tracking=False)
    assert again.cached and again.test_acc == record.test_acc


def test_load_model_scores_the_stored_test_accuracy(ran):
    store, [record] = ran
    model = api.load_model(store, record)
    assert not model.training
    assert score_of(model, record) == record.test_acc
    weights = dict(model.named_parameters())
    mask = Store(store).cell_dir(record.run) / "mask.pt"
    for name, keep in torch.load(mask, weights_only=True).items():
        assert (weights[name][~keep] == 0).all()


@pytest.mark.parametrize("fmt", ["torch", "safetensors"])
def test_export_cli_writes_a_model_that_loads_back(ran, tmp_path, fmt):
    store, [record] = ran
    out = tmp_path / "exported"
    result = cli.invoke(app, ["export", record.run[:20], "--format", fmt, "--out", str(out), "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert str(out) in result.stdout
    description = json.loads((out / "model.json").read_text())
    assert description["format"] == fmt and description["record"]["task"] == "mnist1d"
    assert description["record"]["method"] == "lr-rewinding" and not description["compacted"]
    assert description["input_shape"] == [1, 40]  # one MNIST-1D sample: a channel of 40 points
    assert description["stored_parameters"] == 24954 > description["nonzero_parameters"]
    assert score_of(load_exported(out), record) == record.test_acc


def test_bad_exports_are_refused_in_one_line(ran, tmp_path):
    store, [record] = ran
    for args, message in ((["export", "nothing-like-it"], "no cell 'nothing-like-it'"),
                          (["export", record.run, "--format", "onnx"], "valid: torch, safetensors")):
        result = cli.invoke(app, [*args, "--store", str(store), "--out", str(tmp_path / "x")])
        assert result.exit_code == 2 and message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    (tmp_path / "bad").mkdir()
    with pytest.raises(HarnessError, match="not a model written by `harness export`"):
        load_exported(tmp_path / "bad")


def test_structured_cells_export_and_load_compacted(tmp_path):
    data = cifar10_folder(tmp_path / "data")
    store = tmp_path / "store"
    [record] = api.run("fine-tuning", "cifar10-resnet56", pruning="resnet56-B", level=[2], retrain_epochs=[1],
                       epochs_scale=0.01, batch_size=50, store=store, data_dir=data, tracking=False)
    model = api.load_model(store, record)
    dense = sum(p.numel() for p in api.plan_run("fine-tuning", "cifar10-resnet56").task.make_model().parameters())
    assert sum(p.numel() for p in model.parameters()) < dense  # filters physically gone
    assert score_of(model, record, data) == record.test_acc
    api.export(store, record, tmp_path / "out", "torch")
    loaded = load_exported(tmp_path / "out")
    assert json.loads((tmp_path / "out" / "model.json").read_text())["compacted"]
    assert sum(p.numel() for p in loaded.parameters()) == sum(p.numel() for p in model.parameters())
    assert score_of(loaded, record, data) == record.test_acc


def test_sweep_runs_a_narrowed_study_and_returns_its_records(tmp_path):
    study = tmp_path / "study.yaml"
    study.write_text("task: mnist1d\nmethods: [fine-tuning, lr-rewinding]\nretrain_epochs: [1.5]\n"
                     "densities: [0.5]\nseeds: [0, 1]\n")
    threads = torch.get_num_threads()
    records = api.sweep(study, store=tmp_path / "store", jobs=1, epochs_scale=QUICK, seeds=[0],
                        methods=["fine-tuning"], tracking=False)
    assert torch.get_num_threads() == threads  # its jobs ran on one thread; the caller keeps its own
    assert [(r.method, r.seed, r.epochs_scale) for r in records] == [("fine-tuning", 0, QUICK)]
    [png] = (tmp_path / "store" / "studies").glob("*/accuracy_vs_compression.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


NOTEBOOK = """
import json, sys
from harness import api

found = api.tune("fine-tuning", "mnist1d", trials=2, density=0.1, epochs_scale={quick}, store=sys.argv[1],
                 space=["t=1.5,3"], seeds=[0, 1], save_as="ft-found", tracking=False)
again = api.run("ft-found", "mnist1d", density=0.1, epochs_scale={quick}, store=sys.argv[1], tracking=False)
print(json.dumps({{"values": found.values, "seeds": [r.seed for r in found.rows],
                  "tests": [r.test_acc for r in found.rows], "variant": str(found.variant_path),
                  "trials": len(found.search.study.trials), "again": again[0].test_acc}}))
"""


def test_tune_from_a_notebook_searches_saves_a_variant_and_run_reuses_its_cell(tmp_path):
    """A notebook's cells, as a script: api.tune, then api.run of the variant it saved."""
    import subprocess
    import sys

    script = tmp_path / "notebook.py"
    script.write_text(NOTEBOOK.format(quick=QUICK))
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "store")], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(found["values"]) == {"lr_scale", "t"} and found["values"]["t"] in (1.5, 3.0)
    assert found["seeds"] == [0, 1] and found["trials"] == 2
    assert found["variant"] == str(tmp_path / "store" / "variants" / "ft-found.json")
    assert found["again"] == found["tests"][0]  # the saved variant's seed-0 cell, read back rather than retrained
    with pytest.raises(HarnessError, match="--trials must be a positive integer"):
        api.tune("fine-tuning", "mnist1d", trials=0, store=tmp_path / "store")
