"""Datasets read from files by a DataLoader (workers, pinned memory), in the (seed, epoch) order.

Each sample's random augmentation is seeded by (seed, epoch, index), so a batch is the same
whichever worker builds it and however the epoch was resumed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from harness.core.seeding import derive_seed
from harness.data.tensor_data import accuracy, epoch_order, validation_split


class SeededSamples(Dataset):
    """Looks a sample up by (index, seed): the transform's randomness comes from that seed alone."""

    def __init__(self, dataset: Any, transform: Callable[[Any], torch.Tensor]) -> None:
        self.dataset, self.transform = dataset, transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, int]:
        index, seed = key
        image, label = self.dataset[index]
        torch.manual_seed(seed)
        return self.transform(image), label


class FolderData:
    def __init__(
        self,
        train: Any,
        test: Any,
        train_transform: Callable[[Any], torch.Tensor],
        eval_transform: Callable[[Any], torch.Tensor],
        batch_size: int,
        device: str = "cpu",
        workers: int = 4,
        eval_batch_size: int = 256,
    ) -> None:
        self.train = SeededSamples(train, train_transform)
        val_idx, test_idx = validation_split(len(test))
        self.eval_sets = {"val": (test, val_idx.tolist()), "test": (test, test_idx.tolist())}
        self.eval_transform = eval_transform
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.device = torch.device(device)
        self.workers = workers
        self._stream: tuple[tuple[int, int, int], Iterator[Any]] | None = None

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.train) / self.batch_size)

    def loader(self, dataset: Dataset, batches: list[list[Any]]) -> DataLoader:
        return DataLoader(dataset, batch_sampler=batches, num_workers=self.workers,
                          pin_memory=self.device.type == "cuda", persistent_workers=False)

    def batch(self, seed: int, epoch: int, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self._stream is None or self._stream[0] != (seed, epoch, index):
            order = epoch_order(len(self.train), seed, epoch).tolist()
            keys = [(i, derive_seed(seed, "augment", epoch, i)) for i in order]
            starts = range(index * self.batch_size, len(keys), self.batch_size)
            batches = [keys[b : b + self.batch_size] for b in starts]
            self._stream = ((seed, epoch, index), iter(self.loader(self.train, batches)))
        x, y = next(self._stream[1])
        self._stream = ((seed, epoch, index + 1), self._stream[1])
        return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    def eval_batches(self, split: str) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        dataset, indices = self.eval_sets[split]
        samples = SeededSamples(dataset, self.eval_transform)
        keys = [(i, 0) for i in indices]
        batches = [keys[b : b + self.eval_batch_size] for b in range(0, len(keys), self.eval_batch_size)]
        for x, y in self.loader(samples, batches):
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    def evaluate(self, model: torch.nn.Module, split: str) -> float:
        return accuracy(model, self.eval_batches(split))
