"""A base network is named by what its task resolves to: edit the task and it is trained anew."""

from __future__ import annotations

import dataclasses

from harness.experiment import Runner
from harness.hparams import BaseHparams, RetrainHparams
from harness.identity import STORED_BEFORE, task_fingerprint
from harness.store import Store
from tasks.spec import TASKS, get_task

BASE = BaseHparams("mnist1d", seed=0, epochs_scale=0.1)


def half_the_learning_rate():
    from tasks.mnist1d import mnist1d

    task = mnist1d()
    return dataclasses.replace(task, schedule=dataclasses.replace(task.schedule, lr=task.schedule.lr / 2))


def test_the_built_in_tasks_keep_the_names_their_base_networks_were_stored_under():
    store = Store("/nonexistent")
    # names computed before fingerprints existed: the stored base networks stay valid
    assert store.base_dir(BaseHparams("mnist1d")).name == "mnist1d-s0-a9a2355b0dd5"
    assert store.base_dir(BaseHparams("cifar10-resnet56", seed=2)).name == "cifar10-resnet56-s2-4b1beb99a6e0"
    cell = RetrainHparams(BaseHparams("cifar10-resnet56", seed=2), "lr-rewinding", 40.0, pruning="resnet56-B", level=3)
    assert store.retrain_dir(cell).name == "cifar10-resnet56-lr-rewinding-r1-9646b4a255f3"
    for name in STORED_BEFORE:
        if name.startswith("wmt16"):
            continue  # needs fairseq, an extra
        assert task_fingerprint(get_task(name)) == STORED_BEFORE[name], f"{name}'s definition changed"


def test_editing_the_learning_rate_gives_a_new_base_network(tmp_path, monkeypatch):
    store = Store(tmp_path)
    cell = RetrainHparams(BASE, "lr-rewinding", 1.0, densities=(0.2,))
    first = Runner(store).retrain(cell)
    original = store.base_dir(BASE)
    assert original.exists()

    monkeypatch.setitem(TASKS._entries, "mnist1d", half_the_learning_rate)
    assert get_task("mnist1d").schedule.lr == 0.05
    edited = store.base_dir(BASE)
    assert edited != original
    again = Runner(store).retrain(cell)
    assert not again.cached and again.run != first.run, "a cell of the edited task is a new cell"
    assert edited.exists(), "its base network was trained anew"
    assert again.unpruned_test_acc != first.unpruned_test_acc

    monkeypatch.undo()  # the definition back as it was: the first base network and cell are found again
    assert store.base_dir(BASE) == original and Runner(store).retrain(cell).cached
