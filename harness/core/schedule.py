"""The learning-rate schedule S of a task: S[g] for any (fractional) epoch g, S[g > T] = S[T]."""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field, replace

# Fields added after base networks were first named: a task's fingerprint leaves them out while they hold
# their defaults (``harness.core.canonical.flatten``), so the tasks defined before them keep their folders.
LATER = {"identity": "when not default"}
ANNEALS = ("", "cosine", "linear")


@dataclass(frozen=True)
class Schedule:
    """Piecewise constant by epoch, with an optional warmup before the first drop; or, with ``anneal``,
    a warm-up followed by a cosine or linear decay to ``final_lr`` at T (what transformers train with).

    ``drops`` maps an epoch boundary to the learning rate that holds from it on; boundaries may be
    fractional. During ``warmup_epochs`` the rate rises from ``warmup_from * lr`` to ``lr``: linearly, or
    with ``exponential_warmup`` geometrically, ``lr * warmup_from ** (1 - g / warmup_epochs)`` (GNMT's).
    """

    lr: float
    epochs: float  # T
    drops: tuple[tuple[float, float], ...] = ()
    warmup_epochs: float = 0.0
    warmup_from: float = 0.0
    exponential_warmup: bool = False
    anneal: str = field(default="", metadata=LATER)  # "", or "cosine" / "linear" from lr to final_lr at T
    final_lr: float = field(default=0.0, metadata=LATER)
    _boundaries: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        bounds = tuple(b for b, _ in self.drops)
        if list(bounds) != sorted(bounds):
            raise ValueError(f"schedule drops must be in increasing epoch order, got {bounds}")
        if self.anneal not in ANNEALS or (self.anneal and self.drops):
            raise ValueError(f"anneal must be one of {ANNEALS} and, when set, the schedule has no drops")
        object.__setattr__(self, "_boundaries", bounds)

    def __call__(self, epoch: float) -> float:
        g = min(max(epoch, 0.0), self.epochs)
        if g < self.warmup_epochs:
            frac = g / self.warmup_epochs
            if self.exponential_warmup:
                return self.lr * self.warmup_from ** (1.0 - frac)
            return self.lr * (self.warmup_from + (1.0 - self.warmup_from) * frac)
        if self.anneal:
            span = self.epochs - self.warmup_epochs
            x = 1.0 if span <= 0 else (g - self.warmup_epochs) / span
            shape = (1.0 + math.cos(math.pi * x)) / 2.0 if self.anneal == "cosine" else 1.0 - x
            return self.final_lr + (self.lr - self.final_lr) * shape
        i = bisect.bisect_right(self._boundaries, g)
        return self.lr if i == 0 else self.drops[i - 1][1]

    def scaled(self, epochs_factor: float = 1.0, lr_factor: float = 1.0) -> Schedule:
        """Every boundary times ``epochs_factor``, every rate times ``lr_factor``."""
        return replace(
            self,
            lr=self.lr * lr_factor,
            epochs=self.epochs * epochs_factor,
            drops=tuple((b * epochs_factor, v * lr_factor) for b, v in self.drops),
            warmup_epochs=self.warmup_epochs * epochs_factor,
            final_lr=self.final_lr * lr_factor,
        )

    def describe(self) -> str:
        parts = []
        if self.warmup_epochs:
            kind = "exponential warmup" if self.exponential_warmup else "warmup"
            parts.append(f"{kind} to {self.lr:g} over {self.warmup_epochs:g}")
        else:
            parts.append(f"{self.lr:g}")
        parts += [f"{v:g} from {b:g}" for b, v in self.drops]
        if self.anneal:
            parts.append(f"{self.anneal} to {self.final_lr:g} at T")
        return "; ".join(parts) + f" (T={self.epochs:g})"
