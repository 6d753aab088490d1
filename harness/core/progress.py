"""One protocol for what long work tells whoever watches it: the command line's bars, a notebook, a test.

Work comes in units (a sweep's jobs, a search's trials), and a unit trains in steps:

    begin(plan)                  once, before the first unit: what is about to run
    started(unit, total_steps)   a unit begins
    track(description, total)    a training inside it: yields ``advance(done_steps, epoch_record)``
    finished(unit, outcome)      a unit ends
    end()                        after the last unit, or on a stop or an error
    note(message), warn(message) a line to show; a warning is shown even where progress is not

A plain run is one training: it only tracks and notes. ``plan``, ``unit`` and ``outcome`` are the
typed records of the work that sends them (``harness.sweep.driver.SweepPlan`` with its ``Job`` and
``Outcome``; ``harness.tune.search.SearchPlan`` with Optuna's trial and study). Every method does
nothing by default (a warning is printed), so an observer overrides only what it shows.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

# advance(done_steps, record): ``record`` is the ``EpochRecord`` of an evaluation at that step, else None
Advance = Callable[[int, Any], None]


class Progress:
    """Silent but for warnings: the library's default."""

    def begin(self, plan: Any) -> None:
        pass

    def started(self, unit: Any, total_steps: int = 0) -> None:
        pass

    @contextlib.contextmanager
    def track(self, description: str, total_steps: int) -> Iterator[Advance | None]:
        yield None

    def finished(self, unit: Any, outcome: Any = None) -> None:
        pass

    def end(self) -> None:
        pass

    def note(self, message: str) -> None:
        pass

    def warn(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)
