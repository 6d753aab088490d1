"""Folder names stay what they were: names rebuilt from stored ``hparams.json`` files equal the folders'
(tests/data/stored_names.json, recorded before identity came from declared names), and a task's
fingerprint does not depend on the module that defines it."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from harness.core.hparams import BaseHparams, RetrainHparams
from harness.core.identity import task_fingerprint
from harness.storage.store import Store
from methods.pruning import PRUNING
from methods.spec import METHODS
from tasks.spec import TASKS, get_task

ROOT = Path(__file__).resolve().parent.parent
STORED = json.loads((Path(__file__).parent / "data" / "stored_names.json").read_text())["entries"]


@pytest.fixture
def plugin_task(monkeypatch):
    """The example plugin's task: not built in, so its folders' names carry its fingerprint. Its
    registrations (a task, a method, a strategy) end with the test."""
    for registry in (TASKS, METHODS, PRUNING):
        monkeypatch.setattr(registry, "_entries", dict(registry._entries))
    monkeypatch.syspath_prepend(str(ROOT / "docs" / "plugin-example"))
    monkeypatch.delitem(sys.modules, "harness_plugin_example", raising=False)
    if "blobs" not in TASKS:
        importlib.import_module("harness_plugin_example")
    yield
    sys.modules.pop("harness_plugin_example", None)


def test_stored_hparams_rebuild_their_folders_names(plugin_task, tmp_path):
    store = Store(tmp_path)
    rebuilt = {}
    for entry in STORED:
        if entry["kind"] == "base":
            rebuilt[entry["folder"]] = store.base_dir(BaseHparams.from_stored(entry["hparams"])).name
        else:
            rebuilt[entry["folder"]] = store.retrain_dir(RetrainHparams.from_stored(entry["hparams"])).name
    assert len(STORED) > 100 and sum("task_fingerprint" in json.dumps(e) for e in STORED) >= 3
    assert {old: new for old, new in rebuilt.items() if old != new} == {}


def test_a_tasks_fingerprint_does_not_depend_on_its_modules_name(tmp_path, monkeypatch):
    """tasks/mnist1d.py loaded as another module (as if moved or renamed) defines the same task."""
    monkeypatch.setattr(TASKS, "_entries", dict(TASKS._entries))  # the registration ends with the test
    source = (ROOT / "tasks" / "mnist1d.py").read_text()
    for registered in ('@register_task("{}")', 'name="{}"'):
        assert registered.format("mnist1d") in source
        source = source.replace(registered.format("mnist1d"), registered.format("mnist1d-moved"))
    moved = tmp_path / "relocated_tasks" / "one_d.py"
    moved.parent.mkdir()
    moved.write_text(source)
    spec = importlib.util.spec_from_file_location("relocated_tasks.one_d", moved)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.load.__module__ == "relocated_tasks.one_d"
    assert task_fingerprint(get_task("mnist1d-moved")) == task_fingerprint(get_task("mnist1d"))


def test_a_task_registered_under_another_name_than_its_own_is_one_line(monkeypatch):
    import dataclasses

    from harness.core.errors import HarnessError

    monkeypatch.setattr(TASKS, "_entries", dict(TASKS._entries))
    TASKS.register("mnist1d-alias")(lambda: dataclasses.replace(get_task("mnist1d")))
    with pytest.raises(HarnessError, match="task registered as 'mnist1d-alias' names itself 'mnist1d'"):
        get_task("mnist1d-alias")
    with pytest.raises(HarnessError, match="names itself"):
        Store("/nonexistent").base_dir(BaseHparams("mnist1d-alias"))


def test_a_name_typed_in_another_case_is_the_registered_one_and_names_the_same_cells(tmp_path):
    from harness.api import plan_run
    from harness.sweep.study import parse_study

    typed = plan_run("LLR", "MNIST1D", pruning="Global-Magnitude", store=tmp_path).cells
    assert typed == plan_run("llr", "mnist1d", store=tmp_path).cells
    assert Store(tmp_path).retrain_dir(typed[0]).name.startswith("mnist1d-llr-r1-")
    study = parse_study({"task": "MNIST1D", "methods": ["LLR", "Fine-Tuning"], "pruning": ["Random"]}, "s.yaml")
    assert (study.task, study.methods, study.pruning[0].strategy) == ("mnist1d", ("llr", "fine-tuning"), "random")
