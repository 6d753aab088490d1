"""A base network is named by what its task resolves to, and by how it is computed (device, bf16, CPU threads):
edit the task or compute it another way and it is trained anew; every command computes the default alike."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness.core.errors import HarnessError
from harness.core.hparams import BaseHparams, Compute, RetrainHparams
from harness.core.identity import STORED_BEFORE, task_fingerprint
from harness.core.progress import Progress
from harness.engine.runner import Runner
from harness.storage.store import Store
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


# -- how a result was computed -------------------------------------------------------------------

SHARED = ["--epochs-scale", "0.2", "--no-tracking"]
STUDY = """
task: mnist1d
epochs_scale: 0.2
methods: [fine-tuning]
retrain_epochs: [2]
densities: [0.5]
seeds: 1
"""


def harness(*args: str, store: Path) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "harness", *args, "--store", str(store)], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def base_bits(store: Path) -> dict[str, tuple]:
    """Per base network folder: its scores and every tensor of every checkpoint, as bytes."""
    out = {}
    for folder in sorted((store / "base").iterdir()):
        result = json.loads((folder / "result.json").read_text())
        tensors = []
        for path in sorted(folder.glob("*.pt")):
            state = torch.load(path, weights_only=True)
            tensors += [(path.name, k, v.numpy().tobytes()) for k, v in sorted(state["model"].items())]
        out[folder.name] = (result["val_acc"], result["test_acc"], tuple(tensors))
    return out


def test_run_sweep_and_tune_name_and_compute_a_base_network_alike(tmp_path):
    """The issue's case: `run` and `tune` trained with the machine's threads, a sweep with one, into
    folders of the same name. Now every command trains with one thread: equal names, equal bits."""
    study = tmp_path / "study.yaml"
    study.write_text(STUDY)
    harness("run", "fine-tuning", "mnist1d", "--density", "0.5", "-t", "2", *SHARED, store=tmp_path / "run")
    harness("sweep", str(study), "--jobs", "1", "--no-tracking", store=tmp_path / "sweep1")
    harness("sweep", str(study), "--jobs", "2", "--no-tracking", store=tmp_path / "sweep2")
    harness("tune", "fine-tuning", "mnist1d", "--density", "0.5", "--trials", "1", "--seed", "0", *SHARED,
            store=tmp_path / "tune")
    stores = {name: base_bits(tmp_path / name) for name in ("run", "sweep1", "sweep2", "tune")}
    [name] = stores["run"]
    assert name == "mnist1d-s0-7fa48bb0ede3"  # the name it had: a default computation keeps its folder
    for where, bases in stores.items():
        assert bases[name] == stores["run"][name], f"{where} holds other bits under {name}"
    result = json.loads((tmp_path / "run" / "base" / name / "result.json").read_text())
    assert (result["compute.device"], result["compute.bf16"], result["compute.threads"]) == ("cpu", False, 1)


def test_another_thread_count_or_device_is_another_folder_and_an_unrecorded_one_is_said(tmp_path):
    store = Store(tmp_path)
    one = BaseHparams("mnist1d", epochs_scale=0.1)
    assert store.base_dir(dataclasses.replace(one, compute=Compute.of("cpu", threads=2))).name != store.base_dir(
        one).name
    assert store.base_dir(dataclasses.replace(one, compute=Compute.of("cuda:1", bf16=True))) == store.base_dir(
        dataclasses.replace(one, compute=Compute.of("cuda:0", bf16=True)))  # the index does not change numbers
    cell = RetrainHparams(one, "lr-rewinding", 1.0, densities=(0.2,))
    Runner(store).retrain(cell)
    with pytest.raises(HarnessError, match="declared to be computed as"):
        Runner(store, threads=2).retrain(cell)  # a runner computes only what is declared as its compute
    result_file = store.base_dir(one) / "result.json"
    result = json.loads(result_file.read_text())
    result_file.write_text(json.dumps({k: v for k, v in result.items() if not k.startswith("compute.")}))
    notes: list[str] = []

    class Collect(Progress):
        def warn(self, text: str) -> None:
            notes.append(text)

    Runner(store, progress=Collect()).retrain(RetrainHparams(one, "fine-tuning", 1.0, densities=(0.2,)))
    assert any("was stored before its compute (device, bf16, threads) was recorded" in n for n in notes), notes
