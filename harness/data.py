"""Datasets held as tensors, with a data order that depends only on (seed, epoch).

Depending on nothing else makes a run resumable mid-way and lets runs that share a prefix of
epochs see the same batches.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from harness.seeding import derive_seed

VALIDATION_FRACTION = 0.2
SPLIT_SEED = 20200426  # fixed: the same validation set for every method and seed

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def validation_split(n: int, fraction: float = VALIDATION_FRACTION) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (validation, test) of a held-out split: a fixed random ``fraction`` is validation."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_val = round(n * fraction)
    return order[:n_val].sort().values, order[n_val:].sort().values


class TensorData:
    """Train/validation/test tensors; the validation set is carved out of the test split."""

    def __init__(
        self,
        train: tuple[torch.Tensor, torch.Tensor],
        test: tuple[torch.Tensor, torch.Tensor],
        batch_size: int,
        augment: Augment | None = None,
        eval_batch_size: int = 1000,
    ) -> None:
        self.x_train, self.y_train = train
        val_idx, test_idx = validation_split(len(test[1]))
        self.splits = {
            "val": (test[0][val_idx], test[1][val_idx]),
            "test": (test[0][test_idx], test[1][test_idx]),
        }
        self.batch_size = batch_size
        self.augment = augment
        self.eval_batch_size = eval_batch_size
        self._order: tuple[tuple[int, int], torch.Tensor] | None = None

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.y_train) / self.batch_size)

    def order(self, seed: int, epoch: int) -> torch.Tensor:
        key = (seed, epoch)
        if self._order is None or self._order[0] != key:
            g = torch.Generator().manual_seed(derive_seed(seed, "data-order", epoch))
            self._order = (key, torch.randperm(len(self.y_train), generator=g))
        return self._order[1]

    def batch(self, seed: int, epoch: int, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self.order(seed, epoch)[index * self.batch_size : (index + 1) * self.batch_size]
        x, y = self.x_train[idx], self.y_train[idx]
        if self.augment is not None:
            g = torch.Generator().manual_seed(derive_seed(seed, "augment", epoch, index))
            x = self.augment(x, g)
        return x, y

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module, split: str) -> float:
        """Top-1 accuracy in percent."""
        x, y = self.splits[split]
        was_training = model.training
        model.eval()
        correct = 0
        for i in range(0, len(y), self.eval_batch_size):
            logits = model(x[i : i + self.eval_batch_size])
            correct += (logits.argmax(1) == y[i : i + self.eval_batch_size]).sum().item()
        model.train(was_training)
        return 100.0 * correct / len(y)
