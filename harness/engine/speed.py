"""Measured inference latency: the compacted network against the unpruned one, same run."""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

from harness.core.flops import flops
from harness.core.masks import Mask
from harness.storage.record import SpeedRecord
from methods.compaction import compact

BATCHES = (1, 128)


@torch.no_grad()
def forward_seconds(model: nn.Module, x: torch.Tensor) -> float:
    if x.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    model(x)
    if x.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def latencies(models: list[nn.Module], input_shape: tuple[int, ...], batch: int, repeats: int = 5,
              channels_last: bool = False) -> list[float]:
    """Median seconds of one forward pass of ``batch`` samples for each model. The models take
    turns within every repeat, so a drift in machine load hits them alike; one warm-up pass each."""
    device = next(models[0].parameters()).device
    x = torch.randn(batch, *input_shape, device=device)
    if channels_last and x.dim() == 4:
        models = [m.to(memory_format=torch.channels_last) for m in models]
        x = x.contiguous(memory_format=torch.channels_last)
    models = [m.eval() for m in models]
    times: list[list[float]] = [[] for _ in models]
    for i in range(repeats + 1):
        for model, seconds in zip(models, times, strict=True):
            elapsed = forward_seconds(model, x)
            if i:
                seconds.append(elapsed)
    return [statistics.median(t) for t in times]


def compare(model: nn.Module, mask: Mask, input_shape: tuple[int, ...], channels_last: bool = False,
            repeats: int = 5, batches: tuple[int, ...] = BATCHES) -> SpeedRecord:
    """Latency of the unpruned and the compacted network at each batch size, on the model's device,
    with parameter counts and FLOPs of both."""
    thin = compact(model, mask)
    latency = {}
    for batch in batches:
        dense, small = latencies([model, thin], input_shape, batch, repeats, channels_last)
        latency[batch] = (dense, small)
    return SpeedRecord(str(next(model.parameters()).device), sum(p.numel() for p in model.parameters()),
                       sum(p.numel() for p in thin.parameters()), flops(model, input_shape)[1],
                       flops(thin, input_shape)[1], latency)
