"""Processes a test starts in a session of their own, so that everything they start can be found and
killed: the tests of stopping (signals, SIGKILL) for `sweep`, `run` and `tune`."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest


# every stop signal, sent to a process that inherited SIGINT as default and as ignored (a script's background job)
def _stop_cases(quick: set[tuple[int, bool]] | None) -> list:
    return [pytest.param(stop, ignored, id=f"{signal.Signals(stop).name}-sigint-{'ignored' if ignored else 'default'}",
                         marks=() if quick is None or (stop, ignored) in quick else pytest.mark.slow)
            for stop in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP) for ignored in (False, True)]


STOP_CASES = _stop_cases(None)
# for the slow ones (a server or a search started for each case): the two a CI job meets in every run, a
# background job's ignored SIGINT and a runner's SIGTERM; the other four with `slow`
STOP_CASES_QUICK = _stop_cases({(signal.SIGINT, True), (signal.SIGTERM, False)})


def session(sid: int) -> list[int]:
    """The live processes of session ``sid`` (the harness and everything it started)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":  # fields: state, ppid, pgrp, session
            pids.append(int(entry.name))
    return pids


def gone_within(sid: int, seconds: float) -> bool:
    deadline = time.time() + seconds
    while session(sid) and time.time() < deadline:
        time.sleep(0.2)
    return not session(sid)


def start(command: list[str], sigint_ignored: bool, stdout: int = subprocess.DEVNULL) -> subprocess.Popen:
    def prepare() -> None:
        os.setsid()  # a session of its own: every process it starts can be found, and killed after the test
        signal.signal(signal.SIGINT, signal.SIG_IGN if sigint_ignored else signal.SIG_DFL)

    return subprocess.Popen(command, stdout=stdout, stderr=subprocess.PIPE, text=True,
                            preexec_fn=prepare)


def wait_for_work(proc: subprocess.Popen, store: Path, pattern: str = "retrain/*/resume.pt") -> None:
    deadline = time.time() + 180
    while not list(store.glob(pattern)):
        assert proc.poll() is None, f"it finished before it could be stopped: {proc.stderr.read()[-2000:]}"
        assert time.time() < deadline
        time.sleep(0.02)


def cleanup(sid: int) -> None:
    for pid in session(sid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
