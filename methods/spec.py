"""A retraining method is a declarative choice of (which weights, which start epoch, how many epochs).

Every method runs as TRAIN^{epochs(T, t)}(weights, m, start(T, t)). ``weights`` names one of:
  TRAINED  W_T: the network that was just pruned (the base network, or the previous round's result)
  REWOUND  W_{T-t}: the original training run's weights at epoch T - t
  FRESH    W'_0: a new random initialization (only the mask is kept)
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from harness.errors import HarnessError
from harness.masks import Mask
from harness.registry import Registry


class Weights(enum.Enum):
    TRAINED = "W_T"
    REWOUND = "W_{T-t}"
    FRESH = "W'_0"


EpochsOf = Callable[[float, float], float]  # (T, t) -> epochs
# (step, model, mask) -> the new mask, or None to keep it; called before every step, so it must be cheap
MaskUpdate = Callable[[int, torch.nn.Module, Mask], Mask | None]


@dataclass(frozen=True)
class Param:
    """A hyperparameter a method declares: its default and the range a search may explore."""

    default: float
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    help: str = ""

    def check(self, method: str, name: str, value: Any) -> float:
        kind = "an integer" if self.integer else "a number"
        valid = f"{kind} in [{self.low:g}, {self.high:g}]" if self.low is not None else kind
        ok = (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
              and (not self.integer or value == int(value))
              and (self.low is None or value >= self.low) and (self.high is None or value <= self.high))
        if not ok:
            raise HarnessError(f"{method} parameter {name} must be {valid}, got {value!r}")
        return int(value) if self.integer else float(value)


class DuringTraining(Protocol):
    """Pruning that happens inside TRAIN (gradual pruning) instead of once before it."""

    def mask_update(
        self, first_step: int, last_step: int, params: Mapping[str, float],
        densities: tuple[float, float], prune: Callable[[dict[str, torch.Tensor], Mask, float], Mask],
    ) -> MaskUpdate:
        """The mask updates of a run over steps [first_step, last_step] from densities[0] to densities[1]."""
        ...


@dataclass(frozen=True)
class Retraining:
    name: str
    formula: str
    weights: Weights
    start: EpochsOf
    epochs: EpochsOf
    summary: str = ""
    params: Mapping[str, Param] = field(default_factory=dict)
    during: DuringTraining | None = None  # None: prune once, then train

    def rewind_epoch(self, T: float, t: float) -> float | None:
        """The epoch of the original run whose weights this method starts from, if any."""
        return T - t if self.weights is Weights.REWOUND else None

    def validate(self, T: float, t: float) -> None:
        limit = f"0 <= t <= T = {T:g}" if self.max_t(T) is not None else "t >= 0"
        if t < 0 or self.start(T, t) < 0 or (self.rewind_epoch(T, t) or 0) < 0:
            raise HarnessError(f"retraining epochs t = {t:g} is out of range for {self.name}; valid: {limit}")

    def resolve_params(self, given: Mapping[str, Any]) -> dict[str, float]:
        """The method's hyperparameters: its declared defaults overridden by ``given``, checked."""
        for name in given:
            if name not in self.params:
                valid = ", ".join(self.params) or "none"
                raise HarnessError(f"{self.name} has no parameter {name!r}; valid: {valid}")
        return {n: p.check(self.name, n, given.get(n, p.default)) for n, p in self.params.items()}

    def shares_prefix(self, T: float) -> bool:
        """Whether the run for t is a prefix of the run for every t' > t, so one run serves all t.

        True when neither the starting weights nor the start epoch depend on t, and t only decides
        where training stops (fine-tuning at the constant S[T], reinitialization from epoch 0).
        """
        if self.weights is Weights.REWOUND or self.during is not None:
            return False
        probes = (0.1 * T, 0.5 * T, T)
        end = self.start(T, 0.0) + self.epochs(T, 0.0)
        return len({self.start(T, t) for t in probes}) == 1 and all(
            math.isclose(self.start(T, t) + self.epochs(T, t), end + t) for t in probes)

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
