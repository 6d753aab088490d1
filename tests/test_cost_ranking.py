"""Methods ranked and compared at equal cost (``harness.analysis.cost``): the ranking within each budget, and the
sign test over seeds of a method against fine-tuning, tested by simulation under the null (cells of one seed
correlated) and under a known effect."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness.analysis.cost import AXES, against_baseline, at_equal_cost, axis_of
from harness.core.errors import HarnessError


def table(rng: np.random.Generator, seeds: int, effect: float, shared: float = 1.0, noise: float = 0.3,
          metric: str = "accuracy") -> pd.DataFrame:
    """Fine-tuning and one method at two densities and two token budgets per seed; each seed draws one shock
    shared by all of its cells (a base network), so cells of a seed are correlated."""
    rows = []
    for seed in range(seeds):
        shock = rng.normal(0, shared)
        for density in (0.5, 0.3):
            for tokens in (1000, 2000):
                base = 80 + tokens / 1000
                for method, gain in (("fine-tuning", 0.0), ("other", effect)):
                    score = base + shock * (method == "other") + gain + rng.normal(0, noise)
                    rows.append({"task": "t", "pruning": "p", "schedule": "one-shot", "method": method,
                                 "density": density, "retraining_epochs": tokens / 1000, "seed": seed,
                                 "val_acc": score, "test_acc": score, "metric": metric, "retraining_tokens": tokens,
                                 "retraining_samples": tokens, "trainable_parameters": 10,
                                 "retraining_flops": tokens})
    return pd.DataFrame(rows)


def test_under_the_null_with_correlated_cells_the_sign_test_over_seeds_keeps_its_level():
    rng = np.random.default_rng(0)
    rejections = [against_baseline(table(rng, 8, 0.0), AXES["tokens"])[0].p <= 0.05 for _ in range(800)]
    assert np.mean(rejections) <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / 800)


def test_under_a_known_effect_it_finds_the_better_method():
    rng = np.random.default_rng(1)
    found = [against_baseline(table(rng, 8, 2.0), AXES["tokens"])[0] for _ in range(200)]
    assert np.mean([v.p <= 0.05 for v in found]) >= 0.8
    assert all(v.pairs == 8 * 4 and v.seeds == 8 for v in found)
    assert np.median([v.median_difference for v in found]) == pytest.approx(2.0, abs=0.3)


def test_a_lower_is_better_metric_is_read_the_right_way_round():
    rng = np.random.default_rng(2)
    worse = against_baseline(table(rng, 8, 3.0, shared=0.1, metric="perplexity"), AXES["tokens"])[0]
    assert worse.median_difference < 0 and worse.seed_wins == 0 and worse.p == 1.0


def test_the_ranking_within_a_budget_leaves_out_methods_that_need_more():
    df = pd.DataFrame([
        {"task": "t", "pruning": "p", "schedule": "one-shot", "method": m, "density": 0.5, "retraining_epochs": 1.0,
         "seed": 0, "val_acc": acc, "test_acc": acc, "metric": "accuracy", "trainable_parameters": params,
         "retraining_flops": 1}
        for m, acc, params in (("cheap", 80.0, 10), ("dear", 90.0, 1000))])
    ranked = at_equal_cost(df, axis_of("params"))
    assert ranked[ranked["budget"] == 10]["method"].tolist() == ["cheap"]
    assert ranked[ranked["budget"] == 1000]["method"].tolist() == ["dear", "cheap"]
    with pytest.raises(HarnessError, match="valid: epochs, tokens, params, memory, flops"):
        axis_of("dollars")
