"""LoRA retraining's step against a bare PyTorch loop with the same adapters, and layer-wise reconstruction's time
per layer, on tinylm, in one run.

    python benchmarks/lora_train.py [--steps 30] [--repeats 5] [--threads 1] [--samples 128]

LoRA: tinylm pruned to density 0.5 (global magnitude), MaskLoRA adapters of rank 8 on its 28 prunable layers
(``methods/lora.py``), the same batches, AdamW on the adapters, gradient clipping. Variants:
  bare      a plain loop over the adapted network: forward, causal LM loss, backward, clip, step (the baseline)
  harness   TRAIN^t(W_T + s(BA ⊙ m), m, T): the mask kept exactly zero, the rate set each step
Reconstruction: ``methods/layerwise.reconstruct`` with the steps of a quarter epoch on ``--samples`` calibration
sequences, its time per layer against one forward pass of the calibration sequences through the network
measured in the same run. Figures are medians over repeats; both train on ``--threads`` CPU threads.
"""

from __future__ import annotations

import argparse
import time

import torch
from lm_train import Timed, interleaved  # the same scaffolding as the TRAIN benchmark (this script's folder)
from torch import nn

import harness  # noqa: F401  (transformers next to torchaudio)
from harness.core.masks import apply_mask, full_mask
from harness.engine.train import train, trained_parameters
from methods import layerwise
from methods.magnitude import global_magnitude
from methods.trainable import Adapters
from tasks.spec import DataOptions, get_task

ADAPTERS = {"rank": 8, "alpha": 16}


def pruned() -> tuple[nn.Module, dict]:
    task = get_task("tinylm")
    torch.manual_seed(0)
    model = task.make_model()
    mask = global_magnitude(dict(model.named_parameters()), full_mask(model, task.prunable(model)), 0.5)
    apply_mask(model, mask)
    return model, mask


def adapted():
    model, mask = pruned()
    torch.manual_seed(1)
    return Adapters("mask").prepare(model, mask, ADAPTERS)


def bare_loop(batches: list[torch.Tensor]) -> float:
    module = adapted().module
    task = get_task("tinylm")
    opt = torch.optim.AdamW(trained_parameters(module), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
    module.train()
    start = time.perf_counter()
    for ids in batches:
        logits = module(input_ids=ids, use_cache=False).logits[:, :-1]
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(module.parameters(), task.grad_clip)
        opt.step()
    return sum(b.numel() for b in batches) / (time.perf_counter() - start)


def harness_loop(data, steps: int) -> float:
    prepared = adapted()
    start = time.perf_counter()
    train(prepared.module, prepared.mask, get_task("tinylm"), Timed(data, steps), start_epoch=0, epochs=1, seed=0)
    return steps * data.batch_size * data.seqlen / (time.perf_counter() - start)


def reconstruction(data, samples: int, steps: int) -> tuple[float, float, int]:
    """(seconds per layer, seconds of one forward pass over the calibration batches, layers)."""
    task = get_task("tinylm")
    model, mask = pruned()
    torch.manual_seed(0)
    dense = task.make_model()
    batches = [data.batch(7, 0, i) for i in range(max(1, samples // data.batch_size))]
    feed = lambda m, b: task.loss(m, b)  # noqa: E731
    start = time.perf_counter()
    with torch.no_grad():
        for batch in batches:
            feed(dense, batch)
    forward = time.perf_counter() - start
    start = time.perf_counter()
    layerwise.reconstruct(model, dense, mask, batches, feed, steps, 1e-3, dense_inputs=False)
    return (time.perf_counter() - start) / len(mask), forward, len(mask)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--samples", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = get_task("tinylm")
    data = task.load_data(DataOptions(batch_size=task.batch_size))
    batches = [data.batch(0, 0, i)[0] for i in range(args.steps)]
    variants = {"bare": lambda: bare_loop(batches), "harness": lambda: harness_loop(data, args.steps)}
    medians = interleaved(variants, args.repeats)
    print(f"tinylm MaskLoRA rank {ADAPTERS['rank']}, batch {task.batch_size} x {data.seqlen} tokens, {args.steps} "
          f"steps x {args.repeats} repeats, {torch.get_num_threads()} threads")
    print(f"{'variant':<10} {'tokens/s':>9} {'vs bare':>8}")
    for name, rate in medians.items():
        print(f"{name:<10} {rate:9.0f} {rate / medians['bare']:7.2f}x")
    steps = max(1, round(0.25 * data.steps_per_epoch))
    per_layer, forward, layers = reconstruction(data, args.samples, steps)
    print(f"reconstruction, {layers} layers, {steps} steps each on {args.samples} calibration sequences: "
          f"{per_layer:.2f} s a layer ({per_layer / forward:.1f}x one forward pass over them, {forward:.2f} s)")


if __name__ == "__main__":
    main()
