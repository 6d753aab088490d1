"""Choosing retraining time on validation, reporting on test (the paper's protocol)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any


def best_validated(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Among rows of one (method, density), the retraining time with the highest median validation
    score over seeds, with the median, min and max of its test score.
    """
    by_t: dict[float, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_t[r["retrain_epochs"]].append(r)
    # ties go to the shorter retraining time: the cheaper search
    t = max(sorted(by_t), key=lambda k: statistics.median(r["val"] for r in by_t[k]))
    tests = [r["test"] for r in by_t[t]]
    return {
        "retrain_epochs": t,
        "val_median": statistics.median(r["val"] for r in by_t[t]),
        "test_median": statistics.median(tests), "test_min": min(tests), "test_max": max(tests),
        "seeds": len(tests),
    }
