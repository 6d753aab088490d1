"""A watcher that outlives a driver to end the processes the driver started and left behind.

A local Ray cluster's agents (``ray::DashboardAgent``, ``ray::RuntimeEnvAgent``) are children of the
raylet, not of the driver, so ``PR_SET_PDEATHSIG`` on the driver's side cannot reach them. When the
driver dies by SIGKILL, the raylet goes with it, and the agents then spend about a minute trying to
report to a GCS that is gone. The watcher holds the read end of a pipe whose write end only the driver
holds: end of file means the driver is gone, however it died. Meanwhile it keeps a snapshot of the
driver's descendants, and at the end kills those of them still alive (matched by start time, so a
reused process id is never hit).

Linux only (it reads ``/proc``); elsewhere ``watch_descendants`` does nothing.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from pathlib import Path

SNAPSHOT_SECONDS = 0.5
_pipes: list[int] = []  # the write ends: open for as long as this process lives


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, start time) for every live process."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":  # fields: state, ppid, ..., starttime (the 20th after the name)
            out[int(entry.name)] = (int(fields[1]), fields[19])
    return out


def descendants(pid: int) -> set[tuple[int, str]]:
    """(pid, start time) of every live descendant of ``pid``."""
    table = _processes()
    children: dict[int, list[int]] = {}
    for child, (parent, _) in table.items():
        children.setdefault(parent, []).append(child)
    found, todo = set(), list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.add((child, table[child][1]))
        todo.extend(children.get(child, []))
    return found


def watch(driver: int, pipe: int) -> None:
    me = os.getpid()
    seen: set[tuple[int, str]] = set()
    while True:
        readable, _, _ = select.select([pipe], [], [], SNAPSHOT_SECONDS)
        if readable and not os.read(pipe, 1):
            break
        seen |= {p for p in descendants(driver) if p[0] != me}
    alive = _processes()
    for pid, started in seen:
        if pid in alive and alive[pid][1] == started:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def watch_descendants() -> None:
    """Start the watcher for this process (once). It leaves no trace when this process exits normally."""
    if _pipes or not sys.platform.startswith("linux"):
        return
    read, write = os.pipe()
    # run as a plain script: the package would import torch, for a process that only reads /proc
    subprocess.Popen([sys.executable, "-I", __file__, str(os.getpid()), str(read)], pass_fds=(read,),
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(read)
    _pipes.append(write)


if __name__ == "__main__":
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # a stop is for the driver; this follows it
        signal.signal(signum, signal.SIG_IGN)
    watch(int(sys.argv[1]), int(sys.argv[2]))
