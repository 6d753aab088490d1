"""A synthetic results table shaped like the paper's released results, for the leaderboard's
benchmark and its large-input tests: 16 (network, pruning, schedule) groups on the paper's grids
(T = 182, 90 and 5), 5 methods, 10 retraining times, 5 to 25 densities, 3 seeds, about 22,000 rows.

The numbers are made up but behave like the paper's: accuracy falls as density falls, a seed's base
network shifts all its methods alike, and both rewinding methods gain over fine-tuning between about
25% and 90% of T.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.analysis.results_table import normalize

METHODS = ("fine-tuning", "weight-rewinding", "lr-rewinding", "low-lr-rewinding", "reinit")

# (task, T, unpruned score, metric, pruning, schedule, number of densities)
GROUPS = (
    ("cifar10-resnet20", 182, 91.7, "accuracy", "global-magnitude", "one-shot", 25),
    ("cifar10-resnet20", 182, 91.7, "accuracy", "global-magnitude", "iterative", 20),
    ("cifar10-resnet56", 182, 93.5, "accuracy", "global-magnitude", "one-shot", 12),
    ("cifar10-resnet56", 182, 93.5, "accuracy", "global-magnitude", "iterative", 10),
    ("cifar10-resnet110", 182, 93.8, "accuracy", "global-magnitude", "one-shot", 10),
    ("cifar10-resnet110", 182, 93.8, "accuracy", "global-magnitude", "iterative", 9),
    ("cifar10-resnet56", 182, 93.5, "accuracy", "resnet56-A", "one-shot", 5),
    ("cifar10-resnet56", 182, 93.5, "accuracy", "resnet56-B", "one-shot", 5),
    ("cifar10-resnet110", 182, 93.8, "accuracy", "resnet110-A", "one-shot", 5),
    ("cifar10-resnet110", 182, 93.8, "accuracy", "resnet110-B", "one-shot", 5),
    ("imagenet-resnet34", 90, 73.6, "accuracy", "global-magnitude", "one-shot", 9),
    ("imagenet-resnet34", 90, 73.6, "accuracy", "global-magnitude", "iterative", 8),
    ("imagenet-resnet50", 90, 76.2, "accuracy", "global-magnitude", "one-shot", 9),
    ("imagenet-resnet50", 90, 76.2, "accuracy", "global-magnitude", "iterative", 7),
    ("wmt16-gnmt", 5, 26.9, "bleu", "global-magnitude", "one-shot", 5),
    ("wmt16-gnmt", 5, 26.9, "bleu", "global-magnitude", "iterative", 5),
)


def rewinding_gain(fraction: np.ndarray) -> np.ndarray:
    """Points gained over fine-tuning: none at short t, a plateau from about 25% to 90% of T."""
    return np.clip((fraction - 0.15) / 0.1, 0, 1) * np.clip((0.98 - fraction) / 0.08, 0, 1)


def paper_shaped(seed: int = 0, seeds: int = 3, groups: tuple = GROUPS) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for task, T, unpruned, metric, pruning, schedule, count in groups:
        times = np.unique(np.round(T * np.arange(1, 11) / 10, 1))
        densities = 0.8 ** np.arange(1, count + 1) if pruning == "global-magnitude" else 0.85 ** np.arange(1, count + 1)
        d, t, s, m = np.meshgrid(densities, times, np.arange(seeds), np.arange(len(METHODS)), indexing="ij")
        d, t, s, m = d.ravel(), t.ravel(), s.ravel(), m.ravel()
        fraction = t / T
        loss = 30 * np.exp(-12 * d) * unpruned / 100  # accuracy lost to pruning before retraining
        recovered = loss * (1 - np.exp(-4 * fraction))
        base_shift = rng.normal(0, 0.25, (len(densities), seeds))[np.searchsorted(-densities, -d), s]
        gain = np.where(np.isin(m, (1, 2)), 0.8 * rewinding_gain(fraction), 0.0)
        gain = gain - np.where(m == 3, 0.5, 0.0) - np.where(m == 4, 1.0 + loss * 0.2, 0.0)
        test = unpruned - loss + recovered + gain + base_shift + rng.normal(0, 0.25, len(d))
        val = test + rng.normal(0, 0.3, len(d))
        frames.append(pd.DataFrame({
            "task": task, "pruning": pruning, "schedule": schedule, "method": np.array(METHODS)[m],
            "density": d, "retraining_epochs": t, "seed": s, "val_acc": val.clip(0, 100), "test_acc": test.clip(0, 100),
            "T": float(T), "metric": metric, "unpruned_test_acc": unpruned, "source": "synthetic",
        }))
    return normalize(pd.concat(frames, ignore_index=True))
