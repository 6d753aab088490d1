"""A declared hyperparameter of a method or a pruning strategy: its default, the range a search explores, and
how a given value is checked."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.core.errors import HarnessError


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
