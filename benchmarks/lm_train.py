"""Tokens per second of the harness's TRAIN on tinylm against a bare PyTorch loop, in one run.

    python benchmarks/lm_train.py [--steps 30] [--repeats 5] [--device cpu] [--threads 1]

The same model (tinylm's Llama, 0.84M parameters), the same batches (16 windows of 128 tokens of the
embedded corpus, in the order TRAIN visits them), the same AdamW and gradient clipping. Variants:
  bare      a plain loop: forward, causal LM loss, backward, clip, step (the baseline)
  harness   TRAIN^t(W, m, g) with a density-0.5 global-magnitude mask kept exactly zero and the learning
            rate of the warm-up/cosine schedule set each step
Figures are medians over repeats, printed as a ratio against the bare loop measured in the same run. Both
train on ``--threads`` CPU threads: one by default, as every command of the harness trains.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

import harness  # noqa: F401  (transformers next to torchaudio)
from harness.core.masks import full_mask
from harness.engine.train import train
from methods.magnitude import global_magnitude
from tasks.spec import DataOptions, get_task


def sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def bare_loop(model: nn.Module, batches: list[torch.Tensor], device: str) -> float:
    task = get_task("tinylm")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
    model.train()
    sync(device)
    start = time.perf_counter()
    for ids in batches:
        logits = model(input_ids=ids, use_cache=False).logits[:, :-1]
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), task.grad_clip)
        opt.step()
    sync(device)
    return sum(b.numel() for b in batches) / (time.perf_counter() - start)


class Timed:
    """tinylm's data with the epoch-end evaluation left out: the training step is timed, not the scoring."""

    def __init__(self, data, steps: int) -> None:
        self.data, self.steps_per_epoch = data, steps

    def batch(self, seed: int, epoch: int, index: int):
        return self.data.batch(seed, epoch, index)

    def evaluate(self, model, split):
        return 0.0


def harness_loop(model: nn.Module, data, steps: int, device: str) -> float:
    task = get_task("tinylm")
    mask = global_magnitude(dict(model.named_parameters()), full_mask(model, task.prunable(model)), 0.5)
    sync(device)
    start = time.perf_counter()
    train(model, mask, task, Timed(data, steps), start_epoch=0, epochs=1, seed=0)
    sync(device)
    return steps * data.batch_size * data.seqlen / (time.perf_counter() - start)


def interleaved(variants: dict[str, Callable[[], float]], repeats: int) -> dict[str, float]:
    """Each variant's median rate over ``repeats``, after a warm-up; interleaved, so that drifts in the
    machine's load hit every variant alike."""
    for run in variants.values():
        run()
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, run in variants.items():
            rates[name].append(run())
    return {name: statistics.median(r) for name, r in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = get_task("tinylm")
    data = task.load_data(DataOptions(batch_size=task.batch_size, device=args.device))
    batches = [data.batch(0, 0, i)[0] for i in range(args.steps)]

    def fresh() -> nn.Module:
        torch.manual_seed(0)
        return task.make_model().to(args.device)

    variants = {"bare": lambda: bare_loop(fresh(), batches, args.device),
                "harness": lambda: harness_loop(fresh(), data, args.steps, args.device)}
    medians = interleaved(variants, args.repeats)
    print(f"tinylm, batch {task.batch_size} x {data.seqlen} tokens, {args.steps} steps x {args.repeats} repeats, "
          f"device {args.device}, {torch.get_num_threads()} threads")
    print(f"{'variant':<10} {'tokens/s':>9} {'vs bare':>8}")
    for name, rate in medians.items():
        print(f"{name:<10} {rate:9.0f} {rate / medians['bare']:7.2f}x")


if __name__ == "__main__":
    main()
