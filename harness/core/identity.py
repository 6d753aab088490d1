"""What a base network was trained under: a fingerprint of its resolved task.

A base run is named by its hyperparameters (task, seed, epochs_scale, batch_size) and by the
fingerprint of what the task resolves to: the model's architecture, the schedule, the optimizer, the
batch size, the loss and the data's definition. Edit any of them and the base network, and every cell
pruned from it, is computed again in new folders; nothing trained under the old definition is reused.

Base networks stored before fingerprints existed keep their folders: ``STORED_BEFORE`` holds the
fingerprint of each built-in task's definition at that time, and a task whose definition still has it
is named as it was then. A definition that changes loses that, as it should.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import torch

from harness.core.canonical import flatten, short_digest
from harness.core.declared import identity_name
from harness.core.registry import TASKS, checked_task

if TYPE_CHECKING:
    from harness.core.hparams import BaseHparams
    from tasks.spec import Task

# task -> the fingerprint of its definition (``definition_fingerprint``) when fingerprints were introduced
STORED_BEFORE = {
    "cifar10-resnet110": "bf315091dd1b",
    "cifar10-resnet20": "4ba4c460273e",
    "cifar10-resnet56": "9d261bb5c395",
    "imagenet-resnet34": "1bd5ba743673",
    "imagenet-resnet50": "f1863922aa85",
    "mnist1d": "5b58bb9653b0",
    "wmt16-gnmt": "ca740c5365fe",
    "wmt16-gnmt-tiny": "e2d9b6ac5b7d",
}


_ARCHITECTURES: dict[str, str] = {}  # by task and model factory: a factory call per content hash is too slow


def architecture(task: Task) -> str:
    """The model's module tree (types and their arguments) and every tensor's name, shape and dtype."""
    key = f"{task.name}:{identity_name(task.make_model)}"
    if key not in _ARCHITECTURES:
        with torch.device("meta"):  # the structure and shapes, without allocating or initializing weights
            model = task.make_model()
        shapes = [(name, tuple(t.shape), str(t.dtype)) for name, t in model.state_dict().items()]
        described: dict[str, Any] = {"modules": repr(model), "tensors": shapes}
        if hasattr(getattr(model, "config", None), "to_dict"):  # a transformers model: what its config sets
            described["config"] = {k: v for k, v in model.config.to_dict().items() if k != "transformers_version"}
        _ARCHITECTURES[key] = digest(described)
    return _ARCHITECTURES[key]


def definition(task: Task) -> dict[str, Any]:
    return {
        "model": architecture(task),
        "schedule": flatten(task.schedule),
        "optimizer": flatten(task.optimizer),
        "batch_size": task.batch_size,
        "data": identity_name(task.load_data),
        "data_definition": task.data_definition,
        "input_shape": list(task.input_shape),
        "loss": identity_name(task.criterion) or "cross_entropy",
        "grad_clip": task.grad_clip,
        "prunable": identity_name(task.prunable),
        "metric": task.metric_definition,
    }


def digest(value: Any) -> str:
    return short_digest(value, default=str)


def task_fingerprint(task: Task) -> str:
    """The fingerprint of a (resolved) task's definition."""
    return digest(definition(task))


def base_identity(hp: BaseHparams) -> str | None:
    """What a base run's name adds to its hyperparameters: the resolved task's fingerprint, or None for a
    task whose definition is the one its stored base networks were trained under (``STORED_BEFORE``)."""
    return _identity(hp, TASKS.get(hp.task))


@lru_cache(maxsize=4096)  # by the task's registered factory too: a task registered anew is fingerprinted anew
def _identity(hp: BaseHparams, factory: Callable[[], Task]) -> str | None:
    task = checked_task(hp.task, factory())
    if hp.task in STORED_BEFORE and STORED_BEFORE[hp.task] == task_fingerprint(task):
        return None
    return task_fingerprint(task.resolved(hp))
