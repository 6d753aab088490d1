"""The metrics a task's ``Data.evaluate`` can return, declared: name, unit, valid range, and whether
higher or lower is better. Selection, the Pareto frontier, compression without a drop, the safe zone,
searches, the under-training check and every table and plot read the direction from here, so a task
whose metric is lower-better (an error rate, perplexity) is ranked the right way round everywhere.

A new metric is one ``register_metric`` next to the task that reports it (``harness.extend``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.core.registry import METRICS


@dataclass(frozen=True)
class Metric:
    name: str  # as records, CSVs and MLflow name it (``metric``)
    unit: str  # shown after values and on axes
    higher_is_better: bool
    low: float = -math.inf  # the valid range of a value
    high: float = math.inf
    label: str = ""  # what axes and tables call it (default: the name)

    @property
    def sign(self) -> float:
        """+1 when higher is better, -1 when lower is: ``sign * value`` is higher-is-better."""
        return 1.0 if self.higher_is_better else -1.0

    @property
    def span(self) -> float:
        """The largest difference two values can have."""
        return self.high - self.low



def register_metric(metric: Metric) -> Metric:
    return METRICS.register(metric.name)(metric)


def metric_of(name: str) -> Metric:
    return METRICS.get(name)


ACCURACY = register_metric(Metric("accuracy", "%", higher_is_better=True, low=0.0, high=100.0))
BLEU = register_metric(Metric("bleu", "BLEU", higher_is_better=True, low=0.0, high=100.0, label="BLEU"))
