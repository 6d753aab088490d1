"""Seconds of one cifar10-resnet56 training epoch on a device, with the physical reference next to it.

    python benchmarks/gpu_epoch.py [--device cuda] [--images 50000] [--fp32] [--peak-tflops X]

The data are fabricated CIFAR-shaped tensors (uint8 images, labels) held on the device, where
`--device cuda` puts CIFAR-10. The harness's TRAIN runs one epoch of them with a density-0.2 mask,
on-device augmentation and normalization, channels_last, and bf16 autocast unless `--fp32`. The
epoch is run twice and the second is timed: the first warms the allocator and the kernels.

The script prints the epoch's seconds and images per second. Next to them is the model's FLOP rate
as a share of the device's dense bf16 peak. Training costs about three times the forward pass: the
forward, then a backward pass of twice its cost. The forward FLOPs are the task's count (dense, a
multiply-add is 2 FLOPs). The peak comes from a table of known GPUs, or from `--peak-tflops`. It
runs on CPU too (`--device cpu --images 512`), which is how the tests run it.
"""

from __future__ import annotations

import argparse
import time

import torch

import harness  # noqa: F401  (the torchvision shim)
from harness.core.masks import full_mask
from harness.data.tensor_data import TensorData
from harness.engine.train import train
from methods.magnitude import global_magnitude
from tasks.cifar10 import normalizer, pad_crop_flip
from tasks.spec import get_task

TASK = "cifar10-resnet56"
# dense bf16 tensor-core peaks in TFLOP/s, by a substring of torch.cuda.get_device_name (vendor sheets)
BF16_PEAK_TFLOPS = {"H200": 989.0, "H100 PCIe": 756.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0}


def peak_tflops(device: torch.device, given: float | None) -> float | None:
    if given is not None:
        return given
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in BF16_PEAK_TFLOPS.items() if key in name), None)


def epoch_seconds(device: torch.device, images: int, batch: int, bf16: bool) -> float:
    task = get_task(TASK)
    generator = torch.Generator().manual_seed(0)
    train_set = (torch.randint(0, 256, (images, 3, 32, 32), dtype=torch.uint8, generator=generator),
                 torch.randint(0, 10, (images,), generator=generator))
    test_set = (train_set[0][:batch], train_set[1][:batch])
    data = TensorData(train_set, test_set, batch, augment=pad_crop_flip, prepare=normalizer(str(device)),
                      device=str(device))
    data.evaluate = lambda model, split: 0.0  # an epoch of training steps, not its evaluation
    torch.manual_seed(0)
    model = task.make_model().to(device)
    mask = global_magnitude(dict(model.named_parameters()), full_mask(model, task.prunable(model)), 0.2)
    seconds = 0.0
    for _ in range(2):  # the first epoch warms up; the second is timed
        sync(device)
        start = time.perf_counter()
        train(model, mask, task, data, start_epoch=0, epochs=1, seed=0, bf16=bf16)
        sync(device)
        seconds = time.perf_counter() - start
    return seconds


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--images", type=int, default=50_000, help="images in the epoch (CIFAR-10: 50,000)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    parser.add_argument("--peak-tflops", type=float, help="the device's peak, where the table does not know it")
    args = parser.parse_args()
    device = torch.device(args.device)
    seconds = epoch_seconds(device, args.images, args.batch, bf16=not args.fp32)
    task = get_task(TASK)
    _, forward_flops = task.flops(task.make_model())
    rate = args.images / seconds
    achieved = 3 * forward_flops * rate / 1e12
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(f"{TASK}, one epoch of {args.images:,} images, batch {args.batch}, {'fp32' if args.fp32 else 'bf16'}, "
          f"channels_last, on {name}")
    print(f"  epoch          {seconds:.2f} s")
    print(f"  images/s       {rate:,.0f}")
    peak = peak_tflops(device, args.peak_tflops)
    share = f", {achieved / peak:.1%} of the {peak:g} TFLOP/s bf16 peak" if peak else " (peak unknown: --peak-tflops)"
    print(f"  model FLOPs    {achieved:.2f} TFLOP/s (3 x {forward_flops / 1e6:.0f} MFLOPs per image){share}")


if __name__ == "__main__":
    main()
