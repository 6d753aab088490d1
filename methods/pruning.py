"""How a pruning strategy is declared: given the trained weights and the current mask, the next mask.
The strategies are modules of their own (``magnitude.py``, ``random_pruning.py``, ``semi_structured.py``,
``structured.py``).

A strategy is a declaration, like a retraining method: what it removes (single weights, N of every M
weights, whole filters), how its target is given (a density, a density fixed by its parameters, or a
configuration's level), its parameters, whether iterative rounds or gradual pruning can use it, what it
needs (``calibrated``: activations on the task's calibration data) and what it does beyond a mask
(``updates_weights``: it changes the weights it keeps, and the engine stores them). What a cell may
combine is decided from those declarations when the cells are planned.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from harness.core.errors import HarnessError
from harness.core.masks import Mask
from harness.core.registry import PRUNING
from methods.calibration import Calibration
from methods.spec import Param, overrides, resolve_params


class Prunes(enum.Enum):
    WEIGHTS = "single weights"
    GROUPS = "N of every M weights"
    FILTERS = "whole filters"


class Target(enum.Enum):
    DENSITY = "a density"
    FIXED = "a density fixed by its parameters"
    LEVEL = "a configuration's level k"


@dataclass(frozen=True)
class PruningInput:
    """What a strategy may look at."""

    weights: dict[str, torch.Tensor]
    mask: Mask  # what is still kept; a strategy keeps a subset of it
    target: float  # the density to reach, or the level k
    params: Mapping[str, float]
    # the architecture; for a calibrated strategy, the network itself, holding ``weights`` on the run's device
    model: nn.Module
    seed: int  # the cell's seed, for strategies that draw at random
    calibration: Calibration | None = None  # for a calibrated strategy: the task's calibration data


@dataclass(frozen=True)
class Pruned:
    """What a strategy that updates the weights it keeps returns: the mask, and every weight of the network."""

    mask: Mask
    weights: dict[str, torch.Tensor]


Pruner = Callable[[dict[str, torch.Tensor], Mask, float], Mask]  # (weights, mask, density) -> mask


@dataclass(frozen=True)
class PruningStrategy:
    name: str
    summary: str
    prunes: Prunes
    target: Target
    select: Callable[[PruningInput], Mask | Pruned]
    params: Mapping[str, Param] = field(default_factory=dict)
    iterative: bool = True  # can prune again what a previous round kept
    gradual: bool = True  # can tighten the mask step by step inside TRAIN
    # params -> the density they fix (Target.FIXED; a density strategy's N:M parameters), or None
    fixed_density: Callable[[Mapping[str, float]], float | None] | None = None
    levels: tuple[int, ...] = ()  # Target.LEVEL: the valid k
    task: str | None = None  # made for this task only
    cite: str = ""
    calibrated: bool = False  # reads the network's activations on the task's calibration data
    updates_weights: bool = False  # also changes the weights it keeps: ``select`` returns ``Pruned``

    def resolve_params(self, given: Mapping[str, Any]) -> dict[str, float]:
        return resolve_params(f"pruning strategy {self.name}", self.params, given)

    def overrides(self, given: Mapping[str, Any]) -> tuple[tuple[str, float], ...]:
        return overrides(f"pruning strategy {self.name}", self.params, given)

    def prune(self, weights: dict[str, torch.Tensor], mask: Mask, target: float, params: Mapping[str, float],
              model: nn.Module, seed: int, calibration: Calibration | None = None) -> Mask:
        return self.pruned(weights, mask, target, params, model, seed, calibration).mask

    def pruned(self, weights: dict[str, torch.Tensor], mask: Mask, target: float, params: Mapping[str, float],
               model: nn.Module, seed: int, calibration: Calibration | None = None) -> Pruned:
        """The mask, and the weights it applies to (those given, unless the strategy updates them)."""
        if self.calibrated and calibration is None:
            raise HarnessError(f"pruning strategy {self.name} reads calibration data, and none was given")
        chosen = self.select(PruningInput(weights, mask, target, self.resolve_params(params), model, seed,
                                          calibration))
        if isinstance(chosen, Pruned) != self.updates_weights:
            raise TypeError(f"pruning strategy {self.name} declares updates_weights={self.updates_weights} but "
                            f"returned {type(chosen).__name__}")
        return chosen if isinstance(chosen, Pruned) else Pruned(chosen, weights)

    def pruner(self, params: Mapping[str, float], model: nn.Module, seed: int) -> Pruner:
        """The strategy as gradual pruning calls it, once per mask update (its parameters checked once)."""
        resolved = self.resolve_params(params)
        return lambda weights, mask, density: self.select(PruningInput(weights, mask, density, resolved, model, seed))

    def check(self, task: str, *, iterative: bool = False, during_training: str | None = None,
              density: float | None = None, levels: tuple[int, ...] = (),
              params: Mapping[str, Any] | None = None) -> None:
        """Refuse, in one line, a combination this strategy cannot run: before any training."""
        resolved = self.resolve_params(params or {})
        if self.task is not None and self.task != task:
            same = [n for n in PRUNING.names() if PRUNING.get(n).task in (None, task)]
            raise HarnessError(f"pruning strategy {self.name} is for {self.task}, not {task}; valid for {task}: "
                               f"{', '.join(same)}")
        if during_training is not None and not self.gradual:
            raise HarnessError(f"{during_training} prunes during training, which pruning strategy {self.name} "
                               f"({self.prunes.value}) cannot; valid: {', '.join(strategies_where(gradual=True))}")
        if iterative and not self.iterative:
            raise HarnessError(f"pruning strategy {self.name} prunes one-shot only; drop --iterative/--rounds, or "
                               f"use one of {', '.join(strategies_where(iterative=True))}")
        if self.target is Target.LEVEL:
            if density is not None:
                raise HarnessError(f"pruning strategy {self.name} takes a level k (--level), not a density")
            for k in levels:
                if k not in self.levels:
                    raise HarnessError(f"--level must be one of {', '.join(map(str, self.levels))} for {self.name}, "
                                       f"got {k}")
        elif levels:
            raise HarnessError(f"--level is for structured configurations; pruning strategy {self.name} takes "
                               "a density")
        fixed = self.fixed_density(resolved) if self.fixed_density is not None else None
        if fixed is not None and density is not None:
            if not math.isclose(density, fixed, rel_tol=1e-6):
                raise HarnessError(f"pruning strategy {self.name} with {fmt_params(resolved)} keeps density "
                                   f"{fixed:g}, not {density:g}; drop --density or change its parameters")

    def density_for(self, params: Mapping[str, Any], asked: float | None) -> float | None:
        """The density a cell prunes to: the one asked for, or the one the parameters fix."""
        fixed = self.fixes_density(params)
        return fixed if fixed is not None else asked

    def fixes_density(self, params: Mapping[str, Any]) -> float | None:
        """The density these parameters fix (2:4 keeps 0.5), or None when the cell gives it."""
        return self.fixed_density(self.resolve_params(params)) if self.fixed_density is not None else None


def fmt_params(params: Mapping[str, float]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in params.items()) or "no parameters"




def register_pruning(strategy: PruningStrategy) -> PruningStrategy:
    return PRUNING.register(strategy.name)(strategy)


def get_pruning(name: str) -> PruningStrategy:
    return PRUNING.get(name)


def strategies_where(**declared: bool) -> list[str]:
    return [n for n in PRUNING.names() if all(getattr(PRUNING.get(n), k) == v for k, v in declared.items())]


def largest(scores: torch.Tensor, k: int) -> torch.Tensor:
    """A mask of the k largest ``scores`` (|w| >= 0, or -1 for a weight already pruned), ties going to
    the lower index: the first k of a stable descending sort, found by selection instead.

    The scores' float bits, read as integers, are ordered like the scores; a histogram of their high
    16 bits finds the bucket holding the k-th largest, and only that bucket is searched for it.
    """
    if k <= 0:
        return torch.zeros(scores.numel(), dtype=torch.bool)
    if torch.isnan(scores).any():  # NaN ranks above everything in the sort; keep its exact order
        keep = torch.zeros(scores.numel(), dtype=torch.bool)
        keep[torch.sort(scores, descending=True, stable=True).indices[:k]] = True
        return keep
    alive = scores >= 0
    bucket = torch.where(alive, (scores.contiguous().view(torch.int32) >> 16) + 1, 0)
    at_or_above = torch.bincount(bucket, minlength=1 << 16).flip(0).cumsum(0).flip(0)
    b = int((at_or_above >= k).nonzero().max())
    above = int(at_or_above[b + 1]) if b + 1 < at_or_above.numel() else 0
    candidates = scores[bucket == b]
    kth = candidates.kthvalue(candidates.numel() - (k - above) + 1).values
    keep = scores > kth
    ties = k - int(keep.sum())
    keep[(scores == kth).nonzero().flatten()[:ties]] = True
    return keep


def masked_scores(scores: dict[str, torch.Tensor], mask: Mask) -> dict[str, torch.Tensor]:
    """Scores (>= 0) with every weight the mask already removed at -1, below all of them."""
    return {n: torch.where(mask[n], scores[n].float(), torch.full_like(scores[n], -1.0, dtype=torch.float))
            for n in mask}


def keep_largest_across(scores: dict[str, torch.Tensor], mask: Mask, density: float) -> Mask:
    """Keep the ``density`` fraction of all the mask's weights with the largest scores, across layers."""
    names = list(mask)
    flat = torch.cat([s.flatten() for s in masked_scores(scores, mask).values()])
    keep_count = round(density * flat.numel())
    alive = int(sum(mask[n].sum().item() for n in names))
    if keep_count > alive:
        raise HarnessError(f"cannot prune to density {density:g}: only {alive / flat.numel():g} remains")
    keep = largest(flat, keep_count)
    out, offset = {}, 0
    for n in names:
        size = mask[n].numel()
        out[n] = keep[offset : offset + size].view_as(mask[n])
        offset += size
    return out


def keep_largest_per_layer(scores: dict[str, torch.Tensor], mask: Mask, density: float) -> Mask:
    """Keep the ``density`` fraction of each layer's weights with the largest scores."""
    out = {}
    for n, s in masked_scores(scores, mask).items():
        keep_count = round(density * s.numel())
        if keep_count > int(mask[n].sum()):
            raise HarnessError(f"cannot prune {n} to density {density:g}: only "
                               f"{float(mask[n].float().mean()):g} of it remains")
        out[n] = largest(s.flatten(), keep_count).view_as(mask[n])
    return out
