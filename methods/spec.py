"""A retraining method is a declaration: which weights, which start epoch, how many epochs, and the
learning rate over the run.

Every method runs as TRAIN^{epochs(T, t)}(weights, m, start(T, t)) with its learning-rate rule
(``methods/lr.py``). ``weights`` names one of:
  TRAINED  W_T: the network that was just pruned (the base network, or the previous round's result)
  REWOUND  W_{T-t}: the original training run's weights at epoch T - t
  FRESH    W'_0: a new random initialization (only the mask is kept)
Whether one run can serve every t (a prefix of the longest) follows from these declarations.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from harness.core.errors import HarnessError
from harness.core.masks import Mask
from harness.core.registry import METHODS
from methods.lr import LR_SCALE, LearningRate, Replay

__all__ = ["LR_SCALE", "Length", "Param", "Retraining", "Start", "Weights", "get_method", "overrides",
           "register_method", "resolve_params"]


class Weights(enum.Enum):
    TRAINED = "W_T"
    REWOUND = "W_{T-t}"
    FRESH = "W'_0"


class Start(enum.Enum):
    """Where the run starts on the original schedule's clock (its data order and a replayed S)."""

    ZERO = "0"
    T_MINUS_t = "T-t"
    T = "T"

    def at(self, T: float, t: float) -> float:
        return {Start.ZERO: 0.0, Start.T_MINUS_t: T - t, Start.T: T}[self]


class Length(enum.Enum):
    """How many epochs the run trains."""

    t = "t"
    T_PLUS_t = "T+t"

    def of(self, T: float, t: float) -> float:
        return t if self is Length.t else T + t


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
    choices: tuple[float, ...] = ()  # a search picks among these instead of the range
    search: bool = True  # False: the range only checks a given value (a seed, a sample count), a search keeps it

    def __post_init__(self) -> None:
        if self.choices and self.default not in self.choices:
            raise ValueError(f"default {self.default:g} is not one of the choices {self.choices}")
        if self.low is not None and (self.high is None or not self.low <= self.default <= self.high):
            raise ValueError(f"default {self.default:g} is outside [{self.low:g}, {self.high}]")
        if self.log and (self.low is None or self.low <= 0):
            raise ValueError("a log-scale range needs low > 0")

    @property
    def searchable(self) -> bool:
        return self.search and (bool(self.choices) or self.low is not None)

    def describe(self) -> str:
        """The values a search explores, as --list-space and `harness list` show them."""
        if self.choices:
            return "one of " + ", ".join(f"{c:g}" for c in self.choices)
        if self.low is None or not self.search:
            return "fixed" if self.low is None else f"fixed unless given, in [{self.low:g}, {self.high:g}]"
        kind = "integer" if self.integer else "real"
        return f"{kind} in [{self.low:g}, {self.high:g}]" + (", log scale" if self.log else "")

    def check(self, owner: str, name: str, value: Any) -> float:
        kind = "an integer" if self.integer else "a number"
        valid = f"{kind} in [{self.low:g}, {self.high:g}]" if self.low is not None else kind
        ok = (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
              and (not self.integer or value == int(value))
              and (self.low is None or value >= self.low) and (self.high is None or value <= self.high))
        if ok and self.choices and value not in self.choices:
            ok, valid = False, "one of " + ", ".join(f"{c:g}" for c in self.choices)
        if not ok:
            raise HarnessError(f"{owner} parameter {name} must be {valid}, got {value!r}")
        return int(value) if self.integer else float(value)


def resolve_params(owner: str, declared: Mapping[str, Param], given: Mapping[str, Any]) -> dict[str, float]:
    """What ``owner`` declares, its defaults overridden by ``given``, checked."""
    for name in given:
        if name not in declared:
            raise HarnessError(f"{owner} has no parameter {name!r}; valid: {', '.join(declared) or 'none'}")
    return {n: p.check(owner, n, given.get(n, p.default)) for n, p in declared.items()}


def overrides(owner: str, declared: Mapping[str, Param], given: Mapping[str, Any]) -> tuple[tuple[str, float], ...]:
    """``given`` checked, without the values equal to their defaults: the form cells are hashed in,
    so spelling out a default never makes another cell."""
    resolved = resolve_params(owner, declared, given)
    return tuple(sorted((n, v) for n, v in resolved.items() if n in given and v != declared[n].default))


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
    start_at: Start
    length: Length
    summary: str = ""
    params: Mapping[str, Param] = field(default_factory=dict)
    during: DuringTraining | None = None  # None: prune once, then train
    lr: LearningRate = field(default_factory=Replay)
    cite: str = ""  # the paper that defines the method
    label: str | None = None  # its name on plots and tables [the registered name]
    color: str | None = None  # its colour on every plot [one derived from the name]

    def start(self, T: float, t: float) -> float:
        return self.start_at.at(T, t)

    def epochs(self, T: float, t: float) -> float:
        return self.length.of(T, t)

    def rewind_epoch(self, T: float, t: float) -> float | None:
        """The epoch of the original run whose weights this method starts from, if any."""
        return T - t if self.weights is Weights.REWOUND else None

    def validate(self, T: float, t: float) -> None:
        limit = f"0 <= t <= T = {T:g}" if self.max_t(T) is not None else "t >= 0"
        if t < 0 or (self.max_t(T) is not None and t > T):
            raise HarnessError(f"retraining epochs t = {t:g} is out of range for {self.name}; valid: {limit}")

    def resolve_params(self, given: Mapping[str, Any]) -> dict[str, float]:
        return resolve_params(self.name, self.params, given)

    def overrides(self, given: Mapping[str, Any]) -> tuple[tuple[str, float], ...]:
        return overrides(self.name, self.params, given)

    def shares_prefix(self, T: float) -> bool:
        """Whether the run for t is a prefix of the run for every t' > t, so one run serves all t.

        Derived from the declarations: the starting weights and the start epoch do not depend on t
        (W_T or W'_0, starting at T or 0), nothing is pruned during the run, the run ends t epochs
        after a point that does not depend on t, and the learning rate at each epoch of the run does
        not depend on t either.
        """
        return (self.weights is not Weights.REWOUND and self.during is None
                and self.start_at in (Start.T, Start.ZERO) and not self.lr.depends_on_t)

    @property
    def needs_training_run(self) -> bool:
        """Whether the method needs a training run of ours (its T, schedule S or rewind points): all but those
        that start from W_T at T with their own schedule, so a pretrained checkpoint can be retrained by them."""
        return not (self.weights is Weights.TRAINED and self.start_at is Start.T and self.during is None)

    def max_t(self, T: float) -> float | None:
        """The largest t this method allows on a schedule of T epochs (None: unbounded)."""
        return T if self.weights is Weights.REWOUND or self.start_at is Start.T_MINUS_t else None

    @property
    def display(self) -> str:
        return self.label or self.name




def register_method(method: Retraining) -> Retraining:
    return METHODS.register(method.name)(method)


def get_method(name: str) -> Retraining:
    return METHODS.get(name)
