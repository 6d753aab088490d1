"""A retraining method is a declarative choice of (which weights, which start epoch, how many epochs).

Every method runs as TRAIN^{epochs(T, t)}(weights, m, start(T, t)). ``weights`` names one of:
  TRAINED  W_T: the network that was just pruned (the base network, or the previous round's result)
  REWOUND  W_{T-t}: the original training run's weights at epoch T - t
  FRESH    W'_0: a new random initialization (only the mask is kept)
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from harness.errors import HarnessError
from harness.registry import Registry


class Weights(enum.Enum):
    TRAINED = "W_T"
    REWOUND = "W_{T-t}"
    FRESH = "W'_0"


EpochsOf = Callable[[float, float], float]  # (T, t) -> epochs


@dataclass(frozen=True)
class Retraining:
    name: str
    formula: str
    weights: Weights
    start: EpochsOf
    epochs: EpochsOf
    summary: str = ""

    def rewind_epoch(self, T: float, t: float) -> float | None:
        """The epoch of the original run whose weights this method starts from, if any."""
        return T - t if self.weights is Weights.REWOUND else None

    def validate(self, T: float, t: float) -> None:
        limit = f"0 <= t <= T = {T:g}" if self.max_t(T) is not None else "t >= 0"
        if t < 0 or self.start(T, t) < 0 or (self.rewind_epoch(T, t) or 0) < 0:
            raise HarnessError(f"retraining epochs t = {t:g} is out of range for {self.name}; valid: {limit}")

    def max_t(self, T: float) -> float | None:
        """The largest t this method allows on a schedule of T epochs (None: unbounded)."""
        big = 1e9 * max(T, 1.0)
        bounded = self.start(T, big) < 0 or (self.rewind_epoch(T, big) or 0) < 0
        return T if bounded else None


METHODS: Registry[Retraining] = Registry("method")


def register_method(method: Retraining) -> Retraining:
    return METHODS.register(method.name)(method)


def get_method(name: str) -> Retraining:
    import methods  # noqa: F401  (registers every method module)

    return METHODS.get(name)
