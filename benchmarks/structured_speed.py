"""Structured pruning: parameters, FLOPs and measured speed-up of the compacted networks.

    python benchmarks/structured_speed.py [--configs resnet56-A ...] [--levels 1 2 3 4 5]
                                          [--batches 1 128] [--repeats 3] [--device cpu]

For each Li et al. configuration and level k: remaining parameters, compression ratio (prunable
weights / remaining), theoretical FLOPs (a multiply-add is 2 FLOPs) and the latency of the
compacted network against the unpruned one measured in the same run (median of --repeats forward
passes after a warm-up, channels_last). Weights are random: latency does not depend on their values,
and L1 filter selection on random weights keeps the configuration's filter counts.
"""

from __future__ import annotations

import argparse

import torch

import harness  # noqa: F401  (the torchvision shim)
from harness.core.masks import apply_mask, compression_ratio, full_mask
from harness.engine.speed import compare
from methods.pruning import Target, get_pruning, strategies_where
from methods.structured import LEVELS
from tasks.spec import get_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    configs = [n for n in strategies_where(gradual=False, iterative=False) if get_pruning(n).target is Target.LEVEL]
    parser.add_argument("--configs", nargs="+", default=configs)
    parser.add_argument("--levels", nargs="+", type=int, default=list(LEVELS))
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 128])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    cols = "".join(f" {'b' + str(b) + ' speed-up':>13}" for b in args.batches)
    print(f"device {args.device}, {torch.get_num_threads()} threads; FLOPs per sample, a multiply-add = 2 FLOPs")
    print(f"{'config':<12} {'k':>2} {'params':>11} {'compress':>9} {'GFLOPs':>8} {'FLOPs %':>8}{cols}")
    for name in args.configs:
        strategy = get_pruning(name)
        task = get_task(strategy.task)
        torch.manual_seed(0)
        model = task.make_model().to(args.device).eval()
        dense_params = sum(p.numel() for p in model.parameters())
        print(f"{name:<12} {'-':>2} {dense_params:>11,} {1:>8.2f}x {'':>8} {'100.0%':>8}")
        for k in args.levels:
            everything = full_mask(model, task.prunable(model))
            mask = strategy.prune(dict(model.named_parameters()), everything, k, {}, model, 0)
            pruned = task.make_model().to(args.device)
            pruned.load_state_dict(model.state_dict())
            apply_mask(pruned, mask)
            r = compare(pruned, mask, task.input_shape, task.channels_last, args.repeats, tuple(args.batches))
            speed = "".join(f" {r.speedup(b):12.2f}x" for b in args.batches)
            print(f"{name:<12} {k:>2} {r.compact_parameters:>11,} {compression_ratio(mask):>8.2f}x "
                  f"{r.compact_flops / 1e9:>8.3f} {r.compact_flops / r.dense_flops:>8.1%}{speed}", flush=True)


if __name__ == "__main__":
    main()
