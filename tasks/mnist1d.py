"""MNIST-1D (Greydanus 2020): the embedded default task, generated offline, trains in seconds.

A small 1-D convolutional network in the spirit of the CIFAR ResNets, with their schedule shape:
Nesterov SGD at 0.1, divided by 10 at 50% and at 75% of T.
"""

from __future__ import annotations

import contextlib
import os
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path

import torch
from torch import nn

from harness.core.declared import identified_as
from harness.core.errors import DamagedFile, StoreFault
from harness.core.schedule import Schedule
from harness.data.tensor_data import TensorData
from harness.storage import store
from tasks.spec import DataOptions, OptimizerSpec, Task, register_task

EPOCHS = 30


def conv_bn_relu(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
    return [nn.Conv1d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm1d(c_out), nn.ReLU()]


def mnist1d_cnn(width: int = 16, classes: int = 10) -> nn.Module:
    w = width
    return nn.Sequential(
        *conv_bn_relu(1, w, 1), *conv_bn_relu(w, w, 1),
        *conv_bn_relu(w, 2 * w, 2), *conv_bn_relu(2 * w, 2 * w, 1),
        *conv_bn_relu(2 * w, 4 * w, 2), *conv_bn_relu(4 * w, 4 * w, 1),
        nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(4 * w, classes),
    )


SPLITS = ("x", "y", "x_test", "y_test")


def cache_path() -> Path:
    """Where the generated data set is kept, in the user's cache: by the generator's version, which
    fixes its default arguments (importing the generator alone takes most of a second)."""

    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "pruning-harness" / f"mnist1d-{version('mnist1d')}-default.pt"


@lru_cache(maxsize=1)
def generate() -> dict[str, torch.Tensor]:
    """The standard MNIST-1D (4000 train, 1000 test), generated locally: never the network.

    Generating takes about 2 CPU-seconds, which every worker process of a sweep would pay: the
    tensors are kept in the user's cache (a ``weights_only`` file, written atomically) and read
    back from there, bit for bit what generating gives."""
    path = cache_path()
    with contextlib.suppress(FileNotFoundError, DamagedFile):
        kept = store.load(path, keys=SPLITS)
        return {k: kept[k] for k in SPLITS}
    # start-up: the generator (most of a second) only when the data set is generated
    from mnist1d.data import get_dataset_args, make_dataset

    raw = make_dataset(get_dataset_args())
    x, x_test = (torch.tensor(raw[k], dtype=torch.float32).unsqueeze(1) for k in ("x", "x_test"))
    mean, std = x.mean(), x.std()
    data = {
        "x": (x - mean) / std, "y": torch.tensor(raw["y"]),
        "x_test": (x_test - mean) / std, "y_test": torch.tensor(raw["y_test"]),
    }
    with contextlib.suppress(StoreFault):  # an unwritable cache costs the next process the generation, nothing else
        store.atomic_save(path, data)
    return data


@identified_as("tasks.mnist1d.load")
def load(options: DataOptions) -> TensorData:
    d = generate()
    return TensorData((d["x"], d["y"]), (d["x_test"], d["y_test"]), options.batch_size, device=options.device)


@register_task("mnist1d")
def mnist1d() -> Task:
    return Task(
        name="mnist1d",
        description="MNIST-1D, 1-D CNN (6 conv + linear), embedded, no download",
        schedule=Schedule(lr=0.1, epochs=EPOCHS, drops=((EPOCHS * 0.5, 0.01), (EPOCHS * 0.75, 0.001))),
        batch_size=128,
        optimizer=OptimizerSpec("sgd", momentum=0.9, nesterov=True, weight_decay=2e-4),
        make_model=mnist1d_cnn,
        load_data=load,
        input_shape=(1, 40),
        documented_unpruned=99.0,  # README: median of seeds 0-2 at T = 30
    )
