"""A base network far under its task's documented unpruned score is under-trained (a shortened
schedule, a broken data folder), and a comparison of retraining methods on it says little: methods
that train longer "beat" the unpruned network. Said wherever results are shown."""

from __future__ import annotations

from collections.abc import Iterable
from statistics import median
from typing import Any

from harness.core.metrics import metric_of
from tasks.spec import TASKS, get_task

POINTS = 5.0  # how far under the documented score a base network is called under-trained


def undertrained(bases: Iterable[tuple[str, float, float | None]]) -> list[str]:
    """One warning per (task, epochs_scale) whose median unpruned test score is more than ``POINTS``
    under the task's documented one; ``bases`` are (task, epochs_scale, unpruned test score)."""


    scores: dict[tuple[str, float], list[float]] = {}
    for task, scale, score in bases:
        if score is not None and score == score:  # not NaN
            scores.setdefault((task, float(scale)), []).append(float(score))
    warnings = []
    for (task, scale), values in sorted(scores.items()):
        spec = get_task(task) if task in TASKS else None
        documented = spec.documented_unpruned if spec is not None else None
        if documented is None:
            continue
        behind = metric_of(spec.metric).sign * (documented - median(values))  # points worse than documented
        if behind <= POINTS:
            continue
        schedule = f" at --epochs-scale {scale:g}" if scale != 1.0 else ""
        worse = "under" if metric_of(spec.metric).higher_is_better else "over"
        warnings.append(f"warning: the base network of {task}{schedule} is under-trained: unpruned test "
                        f"{median(values):.2f}, {behind:.1f} points {worse} the documented "
                        f"{documented:g}; methods that train longer can beat it, so rankings here are not "
                        "the paper's")
    return warnings


def of_records(records: Iterable[Any]) -> list[str]:
    """``undertrained`` for cell records (or anything with task, epochs_scale and unpruned_test_acc)."""
    return undertrained((r.task, r.epochs_scale, r.unpruned_test_acc) for r in records)
