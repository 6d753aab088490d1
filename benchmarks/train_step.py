"""Images per second of the harness's training step against bare PyTorch loops, in one run.

    python benchmarks/train_step.py [--steps 30] [--repeats 3] [--device cpu] [--bf16]

ResNet-20 on CIFAR-shaped batches of 128 (Nesterov SGD, wd 2e-4). Variants:
  bare-nchw           a plain loop on a ready float batch, default memory layout (the baseline)
  bare-channels-last  the same loop in channels_last
  harness             TRAIN^t(W, m, g) of the harness: a density-0.2 mask kept exactly zero,
                      on-device pad/crop/flip augmentation and normalization, LR from S each step
  *-bf16 (--bf16)     the channels_last loop and the harness under bf16 autocast
Figures are medians over repeats, printed as ratios against bare-nchw measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

import harness  # noqa: F401  (the torchvision shim)
from harness.core.masks import full_mask
from harness.data.tensor_data import TensorData
from harness.engine.train import train
from methods.magnitude import global_magnitude
from tasks.cifar10 import normalizer, pad_crop_flip
from tasks.spec import get_task

BATCH = 128


def bare_loop(model: nn.Module, steps: int, channels_last: bool, device: str, bf16: bool) -> float:
    x = torch.randn(BATCH, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (BATCH,), device=device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=2e-4)
    model.train()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=bf16):
            loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync(device)
    return steps * BATCH / (time.perf_counter() - start)


def harness_loop(model: nn.Module, steps: int, device: str, bf16: bool) -> float:
    task = get_task("cifar10-resnet20")
    n = steps * BATCH
    data = TensorData(
        (torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8), torch.randint(0, 10, (n,))),
        (torch.randint(0, 256, (1000, 3, 32, 32), dtype=torch.uint8), torch.randint(0, 10, (1000,))),
        BATCH, augment=pad_crop_flip, prepare=normalizer(device), device=device)
    data.evaluate = lambda model, split: 0.0  # time the training step, not the epoch-end evaluation
    model = model.to(device)
    mask = global_magnitude(dict(model.named_parameters()), full_mask(model, task.prunable(model)), 0.2)
    sync(device)
    start = time.perf_counter()
    train(model, mask, task, data, start_epoch=0, epochs=1, seed=0, bf16=bf16)
    sync(device)
    return steps * BATCH / (time.perf_counter() - start)


def sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bf16", action="store_true")
    args = parser.parse_args()

    def fresh() -> nn.Module:
        torch.manual_seed(0)
        return get_task("cifar10-resnet20").make_model().to(args.device)

    variants = {
        "bare-nchw": lambda: bare_loop(fresh(), args.steps, False, args.device, False),
        "bare-channels-last": lambda: bare_loop(fresh(), args.steps, True, args.device, False),
        "harness": lambda: harness_loop(fresh(), args.steps, args.device, False),
    }
    if args.bf16:
        variants["bare-cl-bf16"] = lambda: bare_loop(fresh(), args.steps, True, args.device, True)
        variants["harness-bf16"] = lambda: harness_loop(fresh(), args.steps, args.device, True)
    for run in variants.values():  # warm-up: allocator, kernels, thread pools
        run()
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):  # interleaved, so drifts in machine load hit every variant alike
        for name, run in variants.items():
            rates[name].append(run())
    medians = {name: statistics.median(r) for name, r in rates.items()}
    base = medians["bare-nchw"]
    print(f"ResNet-20, batch {BATCH}, {args.steps} steps x {args.repeats} repeats, device {args.device}, "
          f"{torch.get_num_threads()} threads")
    print(f"{'variant':<20} {'img/s':>8} {'vs bare-nchw':>13} {'vs its bare loop':>17}")
    for name, rate in medians.items():
        bare = medians["bare-cl-bf16" if name.endswith("bf16") else "bare-channels-last"]
        print(f"{name:<20} {rate:8.0f} {rate / base:12.2f}x {rate / bare:16.2f}x")


if __name__ == "__main__":
    main()
