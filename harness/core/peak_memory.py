"""The time and peak memory of one step of work (a pruning strategy's), on the device it runs on.

On CUDA the peak is the allocator's (``torch.cuda.max_memory_allocated``) after its statistics are reset.
On CPU it is the process's peak resident set (Linux's ``VmHWM``) after it is reset through
``/proc/self/clear_refs``; where that cannot be reset the peak since the process started is all there is,
and ``resettable`` says so.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

STATUS, CLEAR_REFS = Path("/proc/self/status"), Path("/proc/self/clear_refs")


@dataclass
class Cost:
    seconds: float = 0.0
    peak_bytes: int = 0
    resettable: bool = True


def resident_peak() -> int:
    with contextlib.suppress(OSError):
        for line in STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def reset_resident_peak() -> bool:
    try:
        CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


@contextlib.contextmanager
def measured(device: torch.device) -> Iterator[Cost]:
    cost = Cost()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    else:
        cost.resettable = reset_resident_peak()
    started = time.perf_counter()
    yield cost
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        cost.peak_bytes = int(torch.cuda.max_memory_allocated(device))
    else:
        cost.peak_bytes = resident_peak()
    cost.seconds = time.perf_counter() - started
