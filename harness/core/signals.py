"""How the harness stops: SIGINT, SIGTERM and SIGHUP each raise ``Stopped`` in the main thread,
whatever disposition the process inherited.

A process started from a script's background job inherits SIGINT as ignored (POSIX), and Python
then installs no KeyboardInterrupt handler, so Ctrl-C-style stops (``kill -INT``, a test runner's
interrupt) would do nothing. ``Stopped`` subclasses KeyboardInterrupt, so every cleanup written for
Ctrl-C runs for the other two as well; the console script exits 128 + the signal's number (130 for
SIGINT, 143 for SIGTERM, 129 for SIGHUP).

Bookkeeping that a stop must not cut in two (a search's write of a trial's state to its storage)
runs under ``deferred()``: a stop received there is raised when the block ends, or at once on entering
an ``allowed()`` block inside it (the training itself).

Worker processes are tied to their parent the other way: ``die_with_parent`` asks the kernel to
kill this process when the process that started it dies, even by SIGKILL, which no handler sees.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import sys
from collections.abc import Iterator
from types import FrameType

STOPS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PR_SET_PDEATHSIG = 1  # linux/prctl.h


class Stopped(KeyboardInterrupt):
    """The process was asked to stop by ``signum``."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


received: int | None = None  # the stop signal this process got, if any (typer turns the exception into exit 130)


_deferring = False
_pending: int | None = None  # a stop received while deferring


def _stop(signum: int, frame: FrameType | None) -> None:
    global received, _pending
    received = signum
    if _deferring:
        _pending = signum
        return
    raise Stopped(signum)


def _raise_pending() -> None:
    global _pending
    if _pending is not None and not _deferring:
        signum, _pending = _pending, None
        raise Stopped(signum)


@contextlib.contextmanager
def _deferring_set(value: bool) -> Iterator[None]:
    global _deferring
    outer, _deferring = _deferring, value
    try:
        _raise_pending()
        yield
    finally:
        _deferring = outer
    _raise_pending()


def deferred() -> contextlib.AbstractContextManager[None]:
    """A stop received in this block is raised when it ends (or in an ``allowed()`` block inside it)."""
    return _deferring_set(True)


def allowed() -> contextlib.AbstractContextManager[None]:
    """Inside ``deferred()``: where a stop is raised at once, a pending one on entry."""
    return _deferring_set(False)


def install() -> None:
    """The harness's own handlers for the three stop signals (main thread only)."""
    for signum in STOPS:
        signal.signal(signum, _stop)


def exit_code(stop: BaseException | None = None) -> int:
    """The exit code for a stop: 128 + its signal (the one received, when ``stop`` does not say),
    130 for a plain KeyboardInterrupt."""
    if isinstance(stop, Stopped):
        return stop.exit_code
    return 128 + (received or signal.SIGINT)


def die_with_parent(signum: int = signal.SIGKILL) -> None:
    """Have the kernel send ``signum`` to this process when its parent dies (Linux; elsewhere a no-op).
    A SIGKILL mid-epoch leaves at most a temporary file: every store write is atomic."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
