"""One record for a finished cell, in one vocabulary, read back the same from every place it is written."""

from __future__ import annotations

import json

import pytest

from harness.analysis import results_table
from harness.core.hparams import BaseHparams, RetrainHparams
from harness.engine.runner import Runner
from harness.storage.record import CellRecord
from harness.storage.store import Store, read_record

BASE = BaseHparams("mnist1d", seed=1, epochs_scale=0.1)

# a result.json as the harness wrote it before the record (its own vocabulary), for a cell like the one below
LEGACY = {
    "kind": "retrain", "base.task": "mnist1d", "base.seed": 1, "base.epochs_scale": 0.1, "base.batch_size": None,
    "method": "gradual", "retrain_epochs": 1.0, "densities": "0.2", "pruning": "global-magnitude",
    "structured": None, "level": 1, "method_params": "('span', 0.3)", "variant": None, "round": 1,
    "metric": "accuracy", "metric_definition": "top-1", "run": "mnist1d-gradual-r1-abc", "schedule": "one-shot",
    "params": {"begin": 0.0, "span": 0.3, "every": 10}, "density": 0.2, "compression_ratio": 5.0,
    "remaining_weights": 10, "prunable_weights": 50, "parameters": 60, "flops": 100, "dense_flops": 400,
    "retrain_fraction": 1 / 3, "start_epoch": 2.0, "epochs_trained": 1.0, "val": 80.0, "test": 79.0,
    "base_val": 90.0, "base_test": 89.0, "seconds": 1.0, "device": "cpu", "torch_threads": 2,
    "weights_sha256": "w", "mask_sha256": "m",
}


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("record"))
    record = Runner(store).retrain(RetrainHparams(BASE, "gradual", 1.0, densities=(0.2,),
                                                  method_params=(("span", 0.3),)))
    return store, record


def test_the_store_holds_the_record_it_returned(stored):
    store, record = stored
    [path] = store.result_files()
    assert read_record(path) == record and read_record(path).cached
    raw = json.loads(path.read_text())
    assert {"val_acc", "test_acc", "retraining_epochs", "seed", "task", "unpruned_test_acc"} <= set(raw)
    assert not {"val", "test", "retrain_epochs", "base.seed", "base.task", "base_test"} & set(raw)


def test_a_result_stored_before_the_record_reads_as_one():
    old = CellRecord.from_json(LEGACY)
    assert (old.task, old.seed, old.epochs_scale, old.retraining_epochs) == ("mnist1d", 1, 0.1, 1.0)
    assert (old.val_acc, old.test_acc, old.unpruned_test_acc) == (80.0, 79.0, 89.0)
    assert old.method_params == {"span": 0.3} and old.target_density == 0.2 and old.level is None
    assert old.T == pytest.approx(3.0)
    structured = CellRecord.from_json({**LEGACY, "densities": "", "structured": "resnet56-A", "level": 2})
    assert (structured.pruning, structured.level, structured.target_density) == ("resnet56-A", 2, None)


def test_csv_mlflow_and_store_tables_agree(stored, tmp_path):
    store, record = stored
    from_store = results_table.read_store(store.root)
    path = tmp_path / "results.csv"
    import csv

    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, list(record.row()))
        writer.writeheader()
        writer.writerow(record.row())
    from_csv = results_table.read_csv(path)
    columns = [*results_table.COLUMNS, "T", "target_density", "unpruned_test_acc", "epochs_scale"]
    assert from_store[columns].to_dict("records") == from_csv[columns].to_dict("records")
    row = from_store.iloc[0]
    assert row["method"] == "gradual (span=0.3)" and row["task"] == "mnist1d (epochs x0.1)"
    assert (row["val_acc"], row["test_acc"], row["seed"]) == (record.val_acc, record.test_acc, 1)
    # the record's row read back is the record
    assert CellRecord.from_json(record.row()) == record
