"""Several processes, one run (``torchrun``): DistributedDataParallel on nccl (GPU) or gloo (CPU).

Every rank runs the same program on its share of each batch and holds the same weights; rank 0
alone writes the results store and talks to MLflow.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


def launched() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(device: str) -> str:
    """Join the process group torchrun describes; returns this rank's device."""
    if not launched() or dist.is_initialized():
        return device
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.device(device).type == "cuda":
        device = f"cuda:{local_rank}"
        torch.cuda.set_device(device)
        dist.init_process_group("nccl")
    else:
        dist.init_process_group("gloo")
    return device


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if active():
        dist.barrier()


def all_same(value: Any) -> bool:
    if not active():
        return True
    values: list[Any] = [None] * world_size()
    dist.all_gather_object(values, value)
    return all(v == values[0] for v in values)


def wrap(model: torch.nn.Module) -> torch.nn.Module:
    if not active():
        return model

    device_ids = [model_device(model).index] if model_device(model).type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def sync_buffers(model: torch.nn.Module) -> None:
    """Rank 0's buffers (BatchNorm running statistics) everywhere: each rank updates its own from its
    share of the batch, and evaluation and checkpoints must see one network."""
    if active():
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


def shard(x: torch.Tensor) -> torch.Tensor:
    """This rank's share of a global batch."""
    return x[rank() :: world_size()] if active() else x


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device
