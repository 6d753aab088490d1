"""Datasets held as tensors, with a data order that depends only on (seed, epoch).

Depending on nothing else makes a run resumable mid-way and lets runs that share a prefix of
epochs see the same batches.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Iterator

import torch

from harness.core.seeding import derive_seed

VALIDATION_FRACTION = 0.2
SPLIT_SEED = 20200426  # fixed: the same validation set for every method and seed

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
Prepare = Callable[[torch.Tensor], torch.Tensor]


def validation_split(n: int, fraction: float = VALIDATION_FRACTION) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (validation, test) of a held-out split: a fixed random ``fraction`` is validation."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_val = round(n * fraction)
    return order[:n_val].sort().values, order[n_val:].sort().values


@functools.lru_cache(maxsize=4)  # asked for at every step of an epoch; callers only read it
def epoch_order(n: int, seed: int, epoch: int, device: str | torch.device = "cpu") -> torch.Tensor:
    """The order in which an epoch visits the n training samples: a function of (seed, epoch) alone."""
    g = torch.Generator(device).manual_seed(derive_seed(seed, "data-order", epoch))
    return torch.randperm(n, generator=g, device=device)


class TensorData:
    """Train/validation/test tensors; the validation set is carved out of the test split.

    The tensors live on ``device`` (a GPU holds all of CIFAR-10) and batches are augmented there:
    ``augment`` works on a stored batch, ``prepare`` turns stored samples into model inputs.
    """

    def __init__(
        self,
        train: tuple[torch.Tensor, torch.Tensor],
        test: tuple[torch.Tensor, torch.Tensor],
        batch_size: int,
        augment: Augment | None = None,
        prepare: Prepare | None = None,
        eval_batch_size: int = 1000,
        device: str | torch.device = "cpu",
    ) -> None:
        self.x_train, self.y_train = train[0].to(device), train[1].to(device)
        val_idx, test_idx = validation_split(len(test[1]))
        x_test, y_test = test[0].to(device), test[1].to(device)
        self.splits = {
            "val": (x_test[val_idx.to(device)], y_test[val_idx.to(device)]),
            "test": (x_test[test_idx.to(device)], y_test[test_idx.to(device)]),
        }
        self.batch_size = batch_size
        self.augment = augment
        self.prepare = prepare or (lambda x: x)
        self.eval_batch_size = eval_batch_size
        self.device = torch.device(device)

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.y_train) / self.batch_size)

    def order(self, seed: int, epoch: int) -> torch.Tensor:
        return epoch_order(len(self.y_train), seed, epoch, self.device)

    def batch(self, seed: int, epoch: int, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self.order(seed, epoch)[index * self.batch_size : (index + 1) * self.batch_size]
        x, y = self.x_train[idx], self.y_train[idx]
        if self.augment is not None:
            g = torch.Generator(self.device).manual_seed(derive_seed(seed, "augment", epoch, index))
            x = self.augment(x, g)
        return self.prepare(x), y

    def eval_batches(self, split: str) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        x, y = self.splits[split]
        for i in range(0, len(y), self.eval_batch_size):
            yield self.prepare(x[i : i + self.eval_batch_size]), y[i : i + self.eval_batch_size]

    def evaluate(self, model: torch.nn.Module, split: str) -> float:
        return accuracy(model, self.eval_batches(split))


@torch.no_grad()
def accuracy(model: torch.nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Top-1 accuracy in percent."""
    was_training = model.training
    model.eval()
    correct = total = 0
    for x, y in batches:
        correct += (model(x).argmax(1) == y).sum().item()
        total += len(y)
    model.train(was_training)
    return 100.0 * correct / total
