"""Where a run's progress goes: bars on the command line, nothing in the library by default."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from harness.engine.train import Progress


class Reporter:
    """Where progress goes; the CLI shows bars, the library is silent by default."""

    @contextlib.contextmanager
    def track(self, description: str, total_steps: int) -> Iterator[Progress | None]:
        yield None

    def note(self, message: str) -> None:
        pass

    def warn(self, message: str) -> None:
        """What must be seen even when progress is not shown (a damaged file set aside)."""
        print(message, file=sys.stderr, flush=True)
