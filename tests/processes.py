"""Processes a test starts in a session of their own, so that everything they start can be found and
killed: the tests of stopping (signals, SIGKILL) for `sweep`, `run` and `tune`."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

# every stop signal, sent to a process that inherited SIGINT as default and as ignored (a script's background job)
STOP_CASES = [(stop, ignored) for stop in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP) for ignored in (False, True)]
STOP_IDS = [f"{signal.Signals(stop).name}-sigint-{'ignored' if ignored else 'default'}" for stop, ignored in STOP_CASES]


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
