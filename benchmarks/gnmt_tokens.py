"""GNMT training speed: seconds per 1,000 target tokens, full-size (4x1024) against tiny (4x64).

    python benchmarks/gnmt_tokens.py [--sentences 64] [--length 25] [--steps 5] [--device cpu]

One training step as the harness runs it on a wmt16-gnmt task (label-smoothed loss, gradient
clipping, Adam, the mask re-applied at density 0.5), on random token batches of --sentences pairs
of --length tokens each side; the median of --steps timed steps after one warm-up. Both models are
measured in the same run and the full model's figure is printed as a ratio of the tiny one's.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from harness.core.masks import apply_mask, full_mask, mask_gradients
from methods.pruning import PRUNERS
from tasks.spec import get_task


def seconds_per_1k_tokens(task_name: str, sentences: int, length: int, steps: int, device: str) -> tuple[float, int]:
    task = get_task(task_name)
    torch.manual_seed(0)
    model = task.make_model().to(device)
    params = sum(p.numel() for p in model.parameters())
    mask = PRUNERS.get("global-magnitude")(dict(model.named_parameters()),
                                           full_mask(model, task.prunable(model)), 0.5)
    apply_mask(model, mask)
    optimizer = task.optimizer.build(model.parameters(), 1e-3)
    g = torch.Generator().manual_seed(0)
    src = torch.randint(4, 32000, (sentences, length), generator=g).to(device)
    tgt = torch.randint(4, 32000, (sentences, length), generator=g).to(device)
    sample = {"net_input": {"src_tokens": src, "src_lengths": torch.full((sentences,), length, device=device),
                            "prev_output_tokens": tgt.roll(1, dims=1)}, "target": tgt}
    times = []
    for i in range(steps + 1):
        started = time.perf_counter()
        loss = task.loss(model, sample)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        mask_gradients(model, mask)
        torch.nn.utils.clip_grad_norm_(model.parameters(), task.grad_clip)
        optimizer.step()
        apply_mask(model, mask)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if i:  # the first step warms up
            times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times) / (sentences * length), params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=64)
    parser.add_argument("--length", type=int, default=25)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    print(f"device {args.device}, {torch.get_num_threads()} threads; batches of {args.sentences} pairs x "
          f"{args.length} tokens; median of {args.steps} steps")
    tiny, tiny_params = seconds_per_1k_tokens("wmt16-gnmt-tiny", args.sentences, args.length, args.steps, args.device)
    full, full_params = seconds_per_1k_tokens("wmt16-gnmt", args.sentences, args.length, args.steps, args.device)
    print(f"{'model':<16} {'parameters':>12} {'s / 1k tokens':>14} {'vs tiny':>8}")
    print(f"{'wmt16-gnmt-tiny':<16} {tiny_params:>12,} {tiny:>14.4f} {1.0:>7.1f}x")
    print(f"{'wmt16-gnmt':<16} {full_params:>12,} {full:>14.4f} {full / tiny:>7.1f}x")


if __name__ == "__main__":
    main()
