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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from harness.core.errors import HarnessError
from harness.core.masks import Mask
from harness.core.registry import METHODS
from methods.lr import LR_SCALE, LearningRate, Replay
from methods.objective import Objective, TaskLoss
from methods.params import Param, overrides, resolve_params
from methods.trainable import EveryWeight, Scope

__all__ = ["LR_SCALE", "Budget", "Length", "Param", "Retraining", "Start", "Weights", "get_method", "overrides",
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


class Budget(enum.Enum):
    """What t counts."""

    EPOCHS = "epochs of the retraining data"
    CALIBRATION = "epochs' worth of batches, drawn in turn from the calibration samples, for each layer"


# (step, model, mask) -> the new mask, or None to keep it; called before every step, so it must be cheap
MaskUpdate = Callable[[int, torch.nn.Module, Mask], Mask | None]


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
    trains: Scope = field(default_factory=EveryWeight)  # what it trains
    minimizes: Objective = field(default_factory=TaskLoss)  # what it minimizes
    budget: Budget = Budget.EPOCHS  # what its t counts

    def __post_init__(self) -> None:
        if self.minimizes.trains_by_steps != (self.budget is Budget.EPOCHS):
            raise ValueError(f"{self.name}: t counts epochs of the retraining data exactly when TRAIN runs the method")
        # the scope's and the objective's own parameters are the method's too
        object.__setattr__(self, "params", {**self.params, **self.trains.params, **self.minimizes.params})

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
        not depend on t either; and TRAIN runs it (a layer-wise reconstruction is not one run).
        """
        return (self.weights is not Weights.REWOUND and self.during is None and self.minimizes.trains_by_steps
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
