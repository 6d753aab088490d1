"""The paper's protocol, as constants: the one home of what every command, study and table assumes
unless told otherwise (Renda, Frankle & Carbin 2020, section 3 and appendix A)."""

from __future__ import annotations

import math

from harness.core.errors import HarnessError

DEFAULT_PRUNING = "global-magnitude"  # the paper's strategy: the largest |w| across all layers
ITERATIVE_RATE = 0.2  # each iterative round prunes 20% of the remaining weights
DEFAULT_DENSITY = 0.2  # one-shot target when none is given
SCHEDULES = ("one-shot", "iterative")  # how a density is reached: one round, or rounds of ITERATIVE_RATE

PAPER_GRID_POINTS = 10  # the paper's ten retraining times evenly spread over (0, T]


def paper_retraining_times(T: float, points: int = PAPER_GRID_POINTS) -> list[float]:
    """``points`` retraining times evenly spread over (0, T]: t_k = k T / points.

    When those are not whole epochs but T is whole and they are at least 10 epochs apart, they
    are taken on whole epochs, t_k = k floor(T / points) and t_n = T, so that rewind points fall
    on epoch boundaries (CIFAR's T = 182: 18, 36, ..., 162, 182).
    """
    times = [T * k / points for k in range(1, points + 1)]
    if all(float(t).is_integer() for t in times) or not float(T).is_integer() or T / points < 10:
        return times
    step = T // points
    return [float(step * k) for k in range(1, points)] + [float(T)]


def density_chain(
    density: float | None = None, rounds: int | None = None, iterative: bool = False
) -> tuple[float, ...]:
    """Target density after each round: one round for one-shot, 0.8, 0.64, ... for iterative.

    Iterative to a density that is not a power of 0.8 ends with a last round that prunes to it.
    """
    if density is not None and not 0.0 < density <= 1.0:
        raise HarnessError(f"density must be in (0, 1], got {density:g}{as_fraction(density)}")
    if rounds is not None and rounds < 1:
        raise HarnessError(f"rounds must be a positive integer, got {rounds}")
    keep = 1.0 - ITERATIVE_RATE
    if rounds is not None:
        if density is not None:
            raise HarnessError("give --density or --rounds, not both")
        return tuple(keep**r for r in range(1, rounds + 1)) if iterative else (keep**rounds,)
    density = DEFAULT_DENSITY if density is None else density
    if not iterative:
        return (density,)
    n = max(1, math.ceil(math.log(density) / math.log(keep) - 1e-9))
    return (*tuple(keep ** r for r in range(1, n)), density)


def as_fraction(density: float) -> str:
    """A hint for a density given as a percentage (``20`` for 0.20), for the end of its error line."""
    return f"; did you mean {density / 100:.2f} ({density:g}%)?" if 1 < density <= 100 else ""
