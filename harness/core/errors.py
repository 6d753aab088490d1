"""The errors the CLI turns into one line: bad input (exit 2), faults of the store (exit 1)."""

from __future__ import annotations

import errno
from pathlib import Path


class HarnessError(ValueError):
    """Bad input from the user: the message says what was wrong and what is valid."""


class StoreFault(OSError):
    """The store could not be written (no space, no permission): nothing computed so far is lost."""

    def __str__(self) -> str:
        return str(self.strerror)

    @property
    def disk_full(self) -> bool:
        return self.errno in (errno.ENOSPC, errno.EDQUOT)


class DamagedFile(Exception):
    """A file of the store that does not hold what it should: moved aside and recomputed.

    ``invalidates``: files that stand for the same work and must go with it (a cell's ``result.json``
    when its ``weights.pt`` is damaged), so that the work is done again.
    """

    def __init__(self, path: Path | str, reason: str, invalidates: tuple[Path, ...] = ()) -> None:
        super().__init__(str(path), reason, invalidates)
        self.path = Path(path)
        self.reason = reason
        self.invalidates = tuple(invalidates)

    def __str__(self) -> str:
        return f"damaged file {self.path} ({self.reason})"
