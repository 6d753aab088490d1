"""The FLOPs and peak memory of one piece of work (a training step), counted rather than timed.

FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` over the work (a multiply-add is 2 FLOPs). Peak memory:
the bytes of tensors allocated by the work at its peak, beyond what was live when it began. On CUDA, the
allocator's peak; on the CPU, the allocations and frees the profiler records (``profile_memory``), summed in
order: deterministic for the same work, where the process's resident set is not.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode


@dataclass
class StepCost:
    flops: int = 0
    peak_bytes: int = 0  # added by the work at its peak


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """File descriptor 2 sent to /dev/null."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def counted(device: torch.device) -> Iterator[StepCost]:
    cost = StepCost()
    counter = FlopCounterMode(display=False)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = int(torch.cuda.memory_allocated(device))
        with counter:
            yield cost
        torch.cuda.synchronize(device)
        cost.peak_bytes = int(torch.cuda.max_memory_allocated(device)) - before
    else:
        # stderr quiet throughout: the profiler's C++ side prints as it starts and stops, and warns of every
        # tensor freed that it did not see allocated (errors still arrive, as exceptions)
        profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True)
        with quiet_stderr(), profiler, counter:
            yield cost
        events = sorted((e for e in profiler.profiler.kineto_results.events() if e.name() == "[memory]"),
                        key=lambda e: e.start_ns())
        live = peak = 0
        for event in events:
            live += event.nbytes()
            peak = max(peak, live)
        cost.peak_bytes = peak
    cost.flops = int(counter.get_total_flops())


def tensor_bytes(*modules: torch.nn.Module) -> int:
    """The bytes of the modules' parameters and buffers (each tensor once)."""
    seen: dict[int, int] = {}
    for module in modules:
        for t in [*module.parameters(), *module.buffers()]:
            seen[t.data_ptr()] = t.numel() * t.element_size()
    return sum(seen.values())
