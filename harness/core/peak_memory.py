"""The time and peak memory of one step of work (a pruning strategy's), on the device it runs on.

The peak is what the work added to what was in use when it started. On CUDA: the allocator's peak
(``torch.cuda.max_memory_allocated``, its statistics reset first) less what was allocated. On CPU: the
process's peak resident set (Linux's ``VmHWM``, reset through ``/proc/self/clear_refs``) less its resident
set at the start; where the peak cannot be reset, the peak since the process started stands in, and
``resettable`` says so.
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


def status(field: str) -> int:
    """A ``/proc/self/status`` size in bytes (``VmHWM``, ``VmRSS``); 0 where there is none."""
    with contextlib.suppress(OSError):
        for line in STATUS.read_text().splitlines():
            if line.startswith(f"{field}:"):
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
        before = int(torch.cuda.memory_allocated(device))
    else:
        cost.resettable = reset_resident_peak()
        before = status("VmRSS")
    started = time.perf_counter()
    yield cost
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        cost.peak_bytes = max(int(torch.cuda.max_memory_allocated(device)) - before, 0)
    else:
        cost.peak_bytes = max(status("VmHWM") - before, 0)
    cost.seconds = time.perf_counter() - started
