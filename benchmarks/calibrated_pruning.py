"""Seconds and calibration tokens per second of Wanda and SparseGPT on tinylm, against magnitude pruning
of the same network in the same run.

    python benchmarks/calibrated_pruning.py [--samples 128] [--repeats 3] [--device cpu]

Each strategy prunes tinylm's 28 block linears to density 0.5 (and 2:4) from the same weights, the
calibrated ones on ``--samples`` sequences of 128 tokens drawn from the training split. Figures are medians
over repeats; "vs magnitude" is the ratio of times against global magnitude pruning measured in the run.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import harness  # noqa: F401  (transformers next to torchaudio)
from harness.core.masks import full_mask
from methods.calibration import Calibration
from methods.pruning import get_pruning
from tasks.lm import models
from tasks.spec import DataOptions, get_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    task = get_task("tinylm")
    data = task.load_data(DataOptions(batch_size=task.batch_size, device=args.device))
    torch.manual_seed(0)
    trained = {k: v.clone() for k, v in task.make_model().state_dict().items()}
    inputs = data.calibration(args.samples, 0).to(args.device)
    variants = {
        "global-magnitude": ("global-magnitude", {}), "wanda": ("wanda", {}), "sparsegpt": ("sparsegpt", {}),
        "wanda 2:4": ("wanda", {"n": 2, "m": 4}), "sparsegpt 2:4": ("sparsegpt", {"n": 2, "m": 4}),
    }

    def prune(strategy: str, params: dict[str, float]) -> float:
        spec = get_pruning(strategy)
        model = task.make_model()
        model.load_state_dict(trained)
        model.to(args.device)
        calibration = Calibration(inputs, models.feed) if spec.calibrated else None
        density = spec.density_for(params, 0.5)
        start = time.perf_counter()
        spec.pruned(trained, full_mask(model, task.prunable(model)), density, params, model, 0, calibration)
        if torch.device(args.device).type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    for strategy, params in variants.values():  # warm-up
        prune(strategy, params)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, (strategy, params) in variants.items():
            times[name].append(prune(strategy, params))
    medians = {name: statistics.median(t) for name, t in times.items()}
    tokens = inputs.numel()
    print(f"tinylm (28 layers), {args.samples} calibration sequences x {inputs.shape[1]} = {tokens} tokens, "
          f"{args.repeats} repeats, device {args.device}, {torch.get_num_threads()} threads")
    print(f"{'strategy':<18} {'seconds':>8} {'tokens/s':>9} {'vs magnitude':>13}")
    for name, seconds in medians.items():
        rate = f"{tokens / seconds:9.0f}" if get_pruning(variants[name][0]).calibrated else f"{'-':>9}"
        print(f"{name:<18} {seconds:8.3f} {rate} {seconds / medians['global-magnitude']:12.1f}x")


if __name__ == "__main__":
    main()
