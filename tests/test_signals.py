"""harness.core.signals: stops that wait for bookkeeping to end (deferred) and are raised where it is safe (allowed)."""

from __future__ import annotations

import os
import signal

import pytest

from harness.core import signals


@pytest.fixture
def handlers():
    saved = {s: signal.getsignal(s) for s in signals.STOPS}
    signals.install()
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)
    signals.received = None


def test_a_stop_inside_deferred_is_raised_when_the_block_ends(handlers):
    reached_end = False
    with pytest.raises(signals.Stopped) as stop:
        with signals.deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            reached_end = True
    assert reached_end and stop.value.exit_code == 143


def test_allowed_raises_a_pending_stop_on_entry_and_a_new_one_at_once(handlers):
    with pytest.raises(signals.Stopped), signals.deferred():
        os.kill(os.getpid(), signal.SIGHUP)
        with signals.allowed():
            pytest.fail("a pending stop must be raised on entering allowed()")
    ran_after = False
    with pytest.raises(signals.Stopped), signals.deferred():
        with signals.allowed():
            os.kill(os.getpid(), signal.SIGINT)
            ran_after = True
    assert not ran_after


def test_without_a_stop_nothing_is_raised(handlers):
    with signals.deferred(), signals.allowed():
        pass
