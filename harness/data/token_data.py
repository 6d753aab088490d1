"""Token streams for causal language models: train, validation and test as 1-D tensors of token ids.

Training batches are non-overlapping windows of the training stream, visited in an order that depends
only on (seed, epoch), as ``TensorData`` does for images. The held-out splits are scored as Wanda and
SparseGPT score them: the stream cut into non-overlapping windows of ``seqlen`` tokens, each window
predicted from its own start; perplexity is exp of the mean negative log-likelihood of every predicted
token, next-token accuracy the share of them predicted exactly. Calibration samples are windows of the
training stream at positions drawn with a calibration seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from harness.core.seeding import derive_seed
from harness.core.tensor_digest import module_digest
from harness.data.tensor_data import epoch_order

# (model, input ids of shape (batch, length)) -> logits of shape (batch, length, vocabulary)
Logits = Callable[[Any, torch.Tensor], torch.Tensor]


def windows(stream: torch.Tensor, length: int) -> torch.Tensor:
    """The stream as (count, length) non-overlapping windows; a last partial window is left out."""
    count = len(stream) // length
    return stream[: count * length].view(count, length)


class TokenData:
    def __init__(self, splits: dict[str, torch.Tensor], seqlen: int, batch_size: int, logits: Logits,
                 eval_batch_size: int = 32, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.streams = {name: s.to(torch.long) for name, s in splits.items()}
        for name in ("train", "val", "test"):
            if len(self.streams.get(name, ())) < seqlen + 1:
                raise ValueError(f"the {name} split holds {len(self.streams.get(name, ()))} tokens, fewer than "
                                 f"one window of {seqlen}")
        self.seqlen = seqlen
        self.batch_size = batch_size
        self.logits = logits
        self.eval_batch_size = eval_batch_size
        self.train_windows = windows(self.streams["train"], seqlen).to(self.device)
        self._scored: dict[str, tuple[tuple[Any, ...], tuple[float, float]]] = {}  # split -> (state, scores)

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.train_windows) / self.batch_size)

    @property
    def tokens_per_epoch(self) -> int:
        return self.train_windows.numel()

    def batch(self, seed: int, epoch: int, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        order = epoch_order(len(self.train_windows), seed, epoch, self.device)
        ids = self.train_windows[order[index * self.batch_size : (index + 1) * self.batch_size]]
        return ids, ids  # inputs and labels: the loss shifts them by one token

    def calibration(self, samples: int, seed: int, length: int | None = None) -> torch.Tensor:
        """``samples`` windows of ``length`` tokens (the context length by default) at random positions of
        the training stream: the calibration data of Wanda and SparseGPT."""
        length = length or self.seqlen
        stream = self.streams["train"]
        g = torch.Generator().manual_seed(derive_seed(seed, "calibration"))
        starts = torch.randint(0, len(stream) - length + 1, (samples,), generator=g)
        return torch.stack([stream[s : s + length] for s in starts.tolist()]).to(self.device)

    def _state(self, model: nn.Module, split: str) -> tuple[Any, ...]:
        # by content, not by object or version counter: a cell's stored network (a copy, its mask applied
        # again) is scored once, and a score is reused only for the very weights it was computed on
        return (split, module_digest(model))

    @torch.no_grad()
    def score(self, model: nn.Module, split: str) -> tuple[float, float]:
        """(perplexity, next-token accuracy in %) of ``split``."""
        key = self._state(model, split)
        if split in self._scored and self._scored[split][0] == key:
            return self._scored[split][1]
        was_training = model.training
        model.eval()
        nll, correct, count = 0.0, 0, 0
        held_out = windows(self.streams[split], self.seqlen).to(self.device)
        for i in range(0, len(held_out), self.eval_batch_size):
            ids = held_out[i : i + self.eval_batch_size]
            logits = self.logits(model, ids)[:, :-1].float()
            target = ids[:, 1:]
            nll += float(nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                                                     reduction="sum"))
            correct += int((logits.argmax(-1) == target).sum())
            count += target.numel()
        model.train(was_training)
        scores = (math.exp(nll / count), 100.0 * correct / count)
        self._scored[split] = (key, scores)
        return scores

    def evaluate(self, model: nn.Module, split: str) -> float:
        return self.score(model, split)[0]

    def report(self, model: nn.Module) -> dict[str, float]:
        """What a result records beyond the metric: the window length and next-token accuracy."""
        return {"seqlen": self.seqlen, "val_next_token_accuracy": self.score(model, "val")[1],
                "test_next_token_accuracy": self.score(model, "test")[1]}


def causal_lm_predictions(logits: Logits) -> Callable[[Any, tuple[torch.Tensor, torch.Tensor]],
                                                     tuple[torch.Tensor, torch.Tensor]]:
    """Each token's next-token logits and the token that follows it, flattened: what a per-token loss reads."""

    def predict(forward: Any, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        ids, labels = batch
        out = logits(forward, ids)[:, :-1]
        return out.reshape(-1, out.shape[-1]), labels[:, 1:].reshape(-1)

    return predict


def causal_lm_loss(logits: Logits) -> Callable[[Any, tuple[torch.Tensor, torch.Tensor]], torch.Tensor]:
    """The training loss: mean cross-entropy of each token given the ones before it."""

    def loss(forward: Any, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        ids, labels = batch
        out = logits(forward, ids)[:, :-1]
        return nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), labels[:, 1:].reshape(-1))

    return loss
