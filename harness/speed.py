"""Measured inference latency: the compacted network against the unpruned one, same run."""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

from harness.flops import flops
from harness.masks import Mask
from methods.compaction import compact

BATCHES = (1, 128)


@torch.no_grad()
def latency(model: nn.Module, input_shape: tuple[int, ...], batch: int, repeats: int = 5,
            channels_last: bool = False) -> float:
    """Median seconds of one forward pass of ``batch`` samples (after a warm-up pass)."""
    device = next(model.parameters()).device
    model = model.eval()
    x = torch.randn(batch, *input_shape, device=device)
    if channels_last and x.dim() == 4:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    times = []
    for i in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        model(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def compare(model: nn.Module, mask: Mask, input_shape: tuple[int, ...], channels_last: bool = False,
            repeats: int = 5, batches: tuple[int, ...] = BATCHES) -> dict[str, float]:
    """Latency of the unpruned and the compacted network at each batch size, on the model's device,
    with parameter counts and FLOPs of both."""
    thin = compact(model, mask)
    out: dict[str, float] = {
        "dense_parameters": sum(p.numel() for p in model.parameters()),
        "compact_parameters": sum(p.numel() for p in thin.parameters()),
        "compact_flops": flops(thin, input_shape)[1], "dense_flops": flops(model, input_shape)[1],
    }
    for batch in batches:
        dense = latency(model, input_shape, batch, repeats, channels_last)
        small = latency(thin, input_shape, batch, repeats, channels_last)
        out |= {f"dense_s_b{batch}": dense, f"compact_s_b{batch}": small, f"speedup_b{batch}": dense / small}
    return out
