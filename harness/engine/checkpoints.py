"""What a base run keeps: the checkpoints W_g at the paper's rewind points and the ones asked for,
and W_T, and how a run's weights are read back at an epoch."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from harness.core.errors import DamagedFile
from harness.core.hparams import BaseHparams
from harness.core.protocol import paper_retraining_times
from harness.engine.train import to_step
from harness.storage import paths, store
from harness.storage.record import BaseRecord


def base_checkpoint_steps(T: float, steps_per_epoch: int, rewind_epochs: Iterable[float] = ()) -> set[int]:
    """The steps of the original run kept as checkpoints: the paper's rewind points, the ones asked
    for, and W_T."""
    epochs = [T - t for t in paper_retraining_times(T)] + list(rewind_epochs) + [T]
    return {to_step(g, steps_per_epoch) for g in epochs}


@dataclass
class BaseRun:
    hp: BaseHparams
    folder: Path
    steps_per_epoch: int
    result: BaseRecord | None
    trained_now: bool

    def checkpoint_path(self, step: int) -> Path:
        return paths.checkpoint(self.folder, step)

    def weights_at_epoch(self, epoch: float) -> dict[str, torch.Tensor]:
        path = self.checkpoint_path(to_step(epoch, self.steps_per_epoch))
        try:
            return store.load(path, keys=("model",))["model"]
        except FileNotFoundError:  # set aside by another process since this run was opened
            raise DamagedFile(path, "missing") from None


def cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A state dict that loads anywhere: on the CPU, in the standard memory layout."""
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
