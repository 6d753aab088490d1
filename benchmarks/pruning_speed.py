"""Global magnitude pruning of ResNet-50's 25.5M prunable weights: selection against the stable sort
it replaced, both timed in this run on the same weights, masks compared.

    python benchmarks/pruning_speed.py [--densities 0.8 0.2 0.05] [--repeats 3]

Prints, per density, the median time of each over --repeats calls and the ratio sort / selection.
Weights are a fresh random initialization: the time depends on the count, not on the values.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import harness  # noqa: F401  (the torchvision shim)
from harness.core.masks import full_mask
from methods import pruning
from tasks.spec import get_task


def stable_sort(scores: torch.Tensor, k: int) -> torch.Tensor:
    keep = torch.zeros(scores.numel(), dtype=torch.bool)
    keep[torch.sort(scores, descending=True, stable=True).indices[:k]] = True
    return keep


def timed(weights: dict, mask: dict, density: float, repeats: int) -> tuple[float, dict]:
    times, out = [], {}
    for _ in range(repeats):
        started = time.perf_counter()
        out = pruning.global_magnitude(weights, mask, density)
        times.append(time.perf_counter() - started)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--densities", nargs="+", type=float, default=[0.8, 0.2, 0.05])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    task = get_task("imagenet-resnet50")
    torch.manual_seed(0)
    model = task.make_model()
    weights = {n: p.detach() for n, p in model.named_parameters()}
    mask = full_mask(model, task.prunable(model))
    total = sum(m.numel() for m in mask.values())
    print(f"ResNet-50: {total:,} prunable weights, {torch.get_num_threads()} threads")
    print(f"{'density':>8} {'stable sort (s)':>16} {'selection (s)':>14} {'ratio':>7} {'masks':>7}")
    selection = pruning.largest
    for density in args.densities:
        pruning.largest = stable_sort
        before, old = timed(weights, mask, density, args.repeats)
        pruning.largest = selection
        after, new = timed(weights, mask, density, args.repeats)
        same = all(torch.equal(old[n], new[n]) for n in mask)
        print(f"{density:>8g} {before:>16.3f} {after:>14.3f} {before / after:>6.1f}x {'same' if same else 'DIFFER':>7}")


if __name__ == "__main__":
    main()
