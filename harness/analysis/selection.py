"""Choosing retraining time on validation, reporting on test (the paper's protocol), for the result
rows of one (method, density); the rule itself is ``harness.analysis.statistics.best_validated``."""

from __future__ import annotations

from typing import Any

import pandas as pd

from harness.analysis import results_table, statistics
from harness.storage.record import CellRecord


def best_validated(rows: list[CellRecord]) -> dict[str, Any]:
    """Among rows of one (method, density), the retraining time with the best median validation score
    over seeds (in the direction of their metric), with the median, min and max of its test score."""

    table = pd.DataFrame({
        "retraining_epochs": [r.retraining_epochs for r in rows], "seed": [r.seed for r in rows],
        "val_acc": [r.val_acc for r in rows], "test_acc": [r.test_acc for r in rows],
        "metric": [r.metric for r in rows],
    }).assign(task="", pruning="", schedule="", method="", density=1.0)
    best = statistics.best_validated(results_table.normalize(table)).iloc[0]
    return {"retraining_epochs": float(best["retraining_epochs"]), "val_median": float(best["val_median"]),
            "test_median": float(best["test_median"]), "test_min": float(best["test_min"]),
            "test_max": float(best["test_max"]), "seeds": int(best["seeds"])}
