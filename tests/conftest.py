from __future__ import annotations

import socket

import pytest
import torch
from torch import nn

from harness.core.schedule import Schedule
from harness.data.tensor_data import TensorData
from tasks.spec import OptimizerSpec, Task

QUICK = 0.1  # --epochs-scale for MNIST-1D in tests: T = 3 epochs


def tiny_model() -> nn.Module:
    return nn.Sequential(
        nn.Conv1d(1, 4, 3, padding=1), nn.BatchNorm1d(4), nn.ReLU(),
        nn.Flatten(), nn.Linear(4 * 8, 3),
    )


def tiny_task(optimizer: OptimizerSpec | None = None) -> Task:
    return Task(
        name="tiny", description="random data, for engine tests",
        schedule=Schedule(lr=0.1, epochs=4, drops=((2, 0.01), (3, 0.001))),
        batch_size=16,
        optimizer=optimizer or OptimizerSpec("sgd", momentum=0.9, nesterov=True, weight_decay=1e-3),
        make_model=tiny_model,
        load_data=lambda options: tiny_data(options.batch_size),
        input_shape=(1, 8),
    )


def tiny_data(batch_size: int = 16) -> TensorData:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 1, 8, generator=g), torch.randint(0, 3, (64,), generator=g)
    xt, yt = torch.randn(40, 1, 8, generator=g), torch.randint(0, 3, (40,), generator=g)
    return TensorData((x, y), (xt, yt), batch_size)


@pytest.fixture
def task() -> Task:
    return tiny_task()


@pytest.fixture(scope="session")
def shared_store(tmp_path_factory: pytest.TempPathFactory):
    """One results store for tests that only read results, so MNIST-1D base training runs once."""
    return tmp_path_factory.mktemp("shared-store")


def free_port() -> int:
    """A loopback TCP port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
