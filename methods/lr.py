"""The learning rate of a retraining run, declared by its method as a function of (S, T, t, params).

A rule gives, once per run, the rate at each position of it, given as the epoch g on the run's clock
(the run covers [start, start + epochs)). ``depends_on_t`` declares whether the rate at a given g can
change with t: a run whose rate does never serves a shorter t as its prefix.

- ``Replay``: S[g], the original schedule from the run's start epoch (the paper's methods; past T it
  stays at S[T], so fine-tuning's constant rate is S replayed from T).
- ``Compressed``: S squeezed into the retraining budget after a warm-up (SLR, Le & Hua 2021).
- ``OneCycle``: warm-up from a low rate to S's peak, then cosine annealing (CLR, Le & Hua 2021).
- ``LinearDecay``: warm-up to a peak, then linear decay to zero (LLR, Zimmer et al. 2023); with
  ``adaptive`` the peak is set by how much pruning changed the network (ALLR).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Protocol

from harness.core.schedule import Schedule

LR_SCALE = "lr_scale"  # a parameter by this name multiplies the rate a rule gives
WARMUP = "warmup"  # a parameter by this name is the warm-up's fraction of the run


@dataclass(frozen=True)
class PruningEffect:
    """What one pruning step did to the network it pruned."""

    relative_norm_drop: float  # ||W ⊙ (m_before - m_after)|| / ||W||, over all parameters
    pruned_fraction: float  # the share of the weights left before this step that it removed


@dataclass(frozen=True)
class Window:
    """Where a retraining run sits: S and T of the task, the budget t, the run's start epoch and
    length, and (for rules that adapt to it) the pruning's effect."""

    S: Schedule
    T: float
    t: float
    start: float
    epochs: float
    effect: PruningEffect | None = None

    def progress(self, g: float) -> float:
        """The fraction of the run done at epoch g."""
        return 0.0 if self.epochs <= 0 else min(max((g - self.start) / self.epochs, 0.0), 1.0)


class LearningRate(Protocol):
    depends_on_t: ClassVar[bool]
    needs_effect: ClassVar[bool]

    def rates(self, window: Window, params: Mapping[str, float]) -> Rate:
        """The run's rate at each epoch g of it (what does not change along the run computed once)."""
        ...

    def describe(self) -> str:
        ...


Rate = Callable[[float], float]


def peak(S: Schedule) -> float:
    """The largest rate of S: its initial rate after any warm-up."""
    return max([S.lr, *(v for _, v in S.drops)])


def cosine_ramp(x: float, low: float, high: float) -> float:
    """From ``low`` at x = 0 to ``high`` at x = 1 along half a cosine."""
    return high + (low - high) * (1.0 + math.cos(math.pi * x)) / 2.0


def warmed(window: Window, params: Mapping[str, float], warming: Callable[[float], float],
           after: Callable[[float], float]) -> Rate:
    """``warming(x)`` over the warm-up's share of the run, then ``after(x)``, each x in [0, 1] of its part."""
    w = params.get(WARMUP, 0.0)

    def rate(g: float) -> float:
        x = window.progress(g)
        if x < w:
            return warming(x / w)
        return after(0.0 if w >= 1.0 else (x - w) / (1.0 - w))

    return rate


@dataclass(frozen=True)
class Replay:
    depends_on_t: ClassVar[bool] = False
    needs_effect: ClassVar[bool] = False

    def rates(self, window: Window, params: Mapping[str, float]) -> Rate:
        scale = params.get(LR_SCALE, 1.0)
        return window.S if scale == 1.0 else window.S.scaled(lr_factor=scale)

    def describe(self) -> str:
        return "S replayed from the start epoch"


@dataclass(frozen=True)
class Compressed:
    depends_on_t: ClassVar[bool] = True
    needs_effect: ClassVar[bool] = False

    def rates(self, window: Window, params: Mapping[str, float]) -> Rate:
        S, top, scale = window.S, peak(window.S), params.get(LR_SCALE, 1.0)

        def squeezed(x: float) -> float:
            position = x * S.epochs
            return scale * (top if position < S.warmup_epochs else S(position))

        return warmed(window, params, lambda x: scale * cosine_ramp(x, 0.0, top), squeezed)

    def describe(self) -> str:
        return "warm-up, then S compressed into the rest of t"


@dataclass(frozen=True)
class OneCycle:
    divide: float = 100.0  # the run starts at peak / divide
    final_divide: float = 100.0  # and ends at peak / divide / final_divide
    depends_on_t: ClassVar[bool] = True
    needs_effect: ClassVar[bool] = False

    def rates(self, window: Window, params: Mapping[str, float]) -> Rate:
        top = params.get(LR_SCALE, 1.0) * peak(window.S)
        low = top / self.divide
        return warmed(window, params, lambda x: cosine_ramp(x, low, top),
                      lambda x: cosine_ramp(x, top, low / self.final_divide))

    def describe(self) -> str:
        low = self.divide * self.final_divide
        return f"one cycle: peak/{self.divide:g} up to S's peak, cosine down to peak/{low:g}"


@dataclass(frozen=True)
class LinearDecay:
    adaptive: bool = False
    depends_on_t: ClassVar[bool] = True

    @property
    def needs_effect(self) -> bool:  # type: ignore[override]
        return self.adaptive

    def top(self, window: Window, params: Mapping[str, float]) -> float:
        top = peak(window.S)
        if self.adaptive:
            if window.effect is None:
                raise ValueError("an adaptive rate needs the pruning's effect")
            floor = (min(window.t / window.T, 1.0) if window.T > 0 else 1.0) * top  # T = 0: a checkpoint
            s = window.effect.pruned_fraction
            wanted = window.effect.relative_norm_drop / math.sqrt(s) * top if s > 0 else floor
            top = min(max(wanted, floor), top)
        return params.get(LR_SCALE, 1.0) * top

    def rates(self, window: Window, params: Mapping[str, float]) -> Rate:
        top = self.top(window, params)
        return warmed(window, params, lambda x: cosine_ramp(x, 0.0, top), lambda x: top * (1.0 - x))

    def describe(self) -> str:
        start = "a peak set by the pruning's norm drop" if self.adaptive else "S's peak"
        return f"warm-up to {start}, then linear to 0"


def rate_at_step(rule: LearningRate, window: Window, params: Mapping[str, float],
                 steps_per_epoch: int) -> Callable[[int], float]:
    """The rate of each optimizer step (steps counted on the run's clock, like the data order)."""
    rate = rule.rates(window, params)
    return lambda step: rate(step / steps_per_epoch)
