"""Checks of what a user asked for, shared by the command line and the Python API: each refuses bad
input with one line that says what was wrong and what is valid."""

from __future__ import annotations

import torch

from harness.core.errors import HarnessError
from harness.core.hparams import EPOCHS_SCALE


def check_epochs_scale(scale: float) -> None:
    low, high = EPOCHS_SCALE
    if not low <= scale <= high:
        raise HarnessError(f"--epochs-scale must be in [{low:g}, {high:g}], got {scale:g}")


def check_batch_size(batch_size: int | None) -> None:
    if batch_size is not None and batch_size < 1:
        raise HarnessError(f"--batch-size must be a positive integer, got {batch_size}")


def check_device(device: str) -> None:
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise HarnessError(f"unknown device {device!r}; valid: cpu, cuda, cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise HarnessError(f"device {device!r} is not available here; valid: cpu")
