"""Imported first by the fork server that sweep workers are forked from (``executors.WORKER_PRELOAD``):
the server dies with the process that started it, even when that process is killed by SIGKILL, and
its workers die with it (they set the same on start)."""

from harness.core.signals import die_with_parent

die_with_parent()
