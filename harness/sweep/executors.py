"""Where a study's jobs run: in this process, in a pool of worker processes, or on a Ray cluster.

A job is ``Runner.base`` or ``Runner.retrain_group`` on the shared results store, so a cell
computed by any executor, by ``harness run`` or on another machine is the same folder.

- ``local``, in process (``jobs=1``) or a pool of worker processes;
- ``ray``: every job a Ray task with its CPU/GPU needs, its dependencies passed as object refs so
  that Ray itself runs base training before cells and round r before round r + 1.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import socket
import time
import traceback
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from harness.core.errors import DamagedFile, HarnessError, StoreFault
from harness.core.hparams import Compute
from harness.core.progress import Progress
from harness.core.registry import EXECUTORS
from harness.core.signals import die_with_parent
from harness.engine.runner import Runner
from harness.storage.store import Store
from harness.sweep import reaper
from harness.sweep.plan import Job
from tasks.spec import DataOptions


@dataclass(frozen=True)
class WorkerContext:
    """What a worker needs to build its Runner; never part of any result's identity."""

    store: str
    data_options: DataOptions = field(default_factory=DataOptions)
    bf16: bool = False
    # CPU results are bit-identical only for the same number of intra-op threads (reductions split
    # differently), so every executor gives each job the same number: 1 unless asked otherwise.
    threads: int = 1

    @property
    def compute(self) -> Compute:
        """What the cells a worker runs must declare (``BaseHparams.compute``)."""
        return Compute.of(self.data_options.device, self.bf16, self.threads)


@dataclass
class Outcome:
    job_id: str
    executed_epochs: float = 0.0
    seconds: float = 0.0
    cached: bool = False
    error: str | None = None
    attempts: int = 1


_RUNNERS: dict[WorkerContext, Runner] = {}


def runner_for(context: WorkerContext, progress: Progress | None = None) -> Runner:
    """One Runner per worker process and context, so each worker loads a data set once."""

    torch.set_num_threads(context.threads)
    if context not in _RUNNERS:
        _RUNNERS[context] = Runner(Store(context.store), context.data_options, bf16=context.bf16,
                                   threads=context.threads)
    runner = _RUNNERS[context]
    runner.progress = progress or Progress()
    return runner


def run_job(job: Job, context: WorkerContext, *upstream: Any, progress: Progress | None = None) -> Outcome:
    """Execute one job (``upstream``: the outcomes it waited for, unused but for ordering)."""
    runner = runner_for(context, progress)
    before, started = runner.executed_epochs, time.time()
    if job.kind == "base":
        run = runner.base(job.base, job.rewind_epochs)
        cached = not run.trained_now
    else:
        rows = runner.retrain_group(list(job.cells))
        cached = all(r.cached for r in rows)
    return Outcome(job.id, runner.executed_epochs - before, time.time() - started, cached)


def describe_error(e: BaseException) -> str:
    if isinstance(e, HarnessError | StoreFault | DamagedFile):
        return str(e)
    frame = traceback.extract_tb(e.__traceback__)[-1:] if e.__traceback__ else []
    where = f" ({Path(frame[0].filename).name}:{frame[0].lineno})" if frame else ""
    return f"{type(e).__name__}: {' '.join(str(e).split())[:300]}{where}"


# -- executors --------------------------------------------------------------------------------


class Executor:
    native_dependencies = False  # True: the executor orders jobs by the handles passed to submit

    def submit(self, job: Job, upstream: list[Any]) -> Any:
        raise NotImplementedError

    def wait_any(self, handles: list[Any]) -> list[tuple[Any, Outcome | BaseException]]:
        raise NotImplementedError

    def capacity(self, running: int) -> int:
        return 1 << 30

    def close(self) -> None:
        pass

    def abort(self) -> None:
        """Stop now (the study was stopped): what runs is lost, what is stored stays."""
        self.close()


class InProcess(Executor):
    """Jobs run one by one in this process, with step-level progress."""

    def __init__(self, context: WorkerContext, progress: Progress | None = None) -> None:
        self.context = context
        self.progress = progress
        self._done: dict[int, Outcome | BaseException] = {}
        # jobs run on the context's thread count; the process (a notebook's) gets its own back on close
        self._threads = torch.get_num_threads()

    def capacity(self, running: int) -> int:
        return 0 if running else 1

    def close(self) -> None:
        torch.set_num_threads(self._threads)

    def submit(self, job: Job, upstream: list[Any]) -> Any:
        handle = len(self._done)
        try:
            self._done[handle] = run_job(job, self.context, progress=self.progress)
        except Exception as e:  # reported as the job's failure; the study goes on
            self._done[handle] = e
        return handle

    def wait_any(self, handles: list[Any]) -> list[tuple[Any, Outcome | BaseException]]:
        return [(h, self._done.pop(h)) for h in handles]


# what the fork server imports for every worker; torch imports torch._dynamo when a process builds its
# first optimizer (about 1 CPU-second), so that is paid here once, not by each worker. The first module
# ties the fork server's life to the driver's.
WORKER_PRELOAD = ["harness.sweep.forkserver", "harness.sweep.executors", "tasks", "methods", "torch._dynamo"]


def worker_context() -> multiprocessing.context.BaseContext:
    """Workers forked from a server process that has imported the harness once: each worker then
    starts in milliseconds instead of importing torch anew (1.5 CPU-seconds), and none inherits this
    process's threads, locks or CUDA state, as spawned workers would not. (Forking this process
    instead would hang a worker's first multi-threaded op once this process has run one: OpenMP's
    thread pool does not survive a fork.)"""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(WORKER_PRELOAD)
    return context


class LocalPool(Executor):
    """A pool of worker processes on this machine."""

    def __init__(self, context: WorkerContext, workers: int) -> None:
        self.context = context
        self.workers = workers
        # a worker dies with the fork server, which dies with this process, even by SIGKILL
        self.pool = ProcessPoolExecutor(workers, mp_context=worker_context(), initializer=die_with_parent)

    def capacity(self, running: int) -> int:
        return max(0, self.workers - running)

    def submit(self, job: Job, upstream: list[Any]) -> Future:
        return self.pool.submit(run_job, job, self.context)

    def wait_any(self, handles: list[Future]) -> list[tuple[Any, Outcome | BaseException]]:
        done, _ = wait(handles, return_when=FIRST_COMPLETED)
        out: list[tuple[Any, Outcome | BaseException]] = []
        for f in done:
            e = f.exception()
            out.append((f, e if e is not None else f.result()))
        return out

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def abort(self) -> None:
        """Kill the workers instead of waiting for their jobs: a stopped sweep exits in seconds, and a
        job killed mid-epoch resumes from its last saved epoch on the next run (its writes are atomic)."""
        for process in list(getattr(self.pool, "_processes", {}).values()):
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        self.pool.shutdown(wait=True, cancel_futures=True)


class RayExecutor(Executor):
    """Each job a Ray task; Ray holds a cell back until the refs of its dependencies resolve."""

    native_dependencies = True

    def __init__(self, context: WorkerContext, address: str | None, retries: int, cpus: float, gpus: float,
                 num_cpus: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise HarnessError("--executor ray needs Ray: pip install '.[ray]'") from None
        self.ray = ray
        if address and address != "auto":
            check_reachable(address)
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address:
                kwargs["address"] = address
            else:  # a cluster of our own: what it starts must end with this process, even by SIGKILL
                reaper.watch_descendants()
                if num_cpus:
                    kwargs["num_cpus"] = num_cpus
            try:
                ray.init(**kwargs)
            except ConnectionError as e:
                raise HarnessError(f"cannot reach the Ray cluster at {address!r} ({e}); "
                                   "valid: an address from `ray start --head`, or 'auto'") from None
        self.context = context
        self.remote = ray.remote(run_job)
        self.options = {"num_cpus": cpus, "num_gpus": gpus, "max_retries": retries, "retry_exceptions": True}

    def submit(self, job: Job, upstream: list[Any]) -> Any:
        return self.remote.options(name=job.label[:100], **self.options).remote(job, self.context, *upstream)

    def wait_any(self, handles: list[Any]) -> list[tuple[Any, Outcome | BaseException]]:
        done, _ = self.ray.wait(handles, num_returns=1)
        out: list[tuple[Any, Outcome | BaseException]] = []
        for ref in done:
            try:
                out.append((ref, self.ray.get(ref)))
            except Exception as e:  # RayTaskError wraps the job's own exception
                out.append((ref, getattr(e, "cause", None) or e))
        return out


def check_reachable(address: str) -> None:
    """Ray keeps retrying an address nobody answers at: fail at once instead."""

    valid = "valid: the head's host:port (ray start --head prints it), ray://host:10001, or auto"
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise HarnessError(f"Ray address {address!r} has no host:port; {valid}")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        raise HarnessError(f"cannot reach the Ray cluster at {address} ({e.strerror or e}); {valid}") from None


@dataclass(frozen=True)
class ExecutorOptions:
    """What `harness sweep` was told about where jobs run (each executor reads what it needs)."""

    jobs: int | None = None
    address: str | None = None
    retries: int = 0
    cpus_per_job: float = 1
    gpus_per_job: float = 0
    progress: Progress | None = None  # the steps of jobs that run in this process


def local(context: WorkerContext, options: ExecutorOptions) -> Executor:
    jobs = options.jobs
    if jobs is None:  # on CPU, one single-threaded worker process per core; a GPU is shared by none
        jobs = 1 if context.data_options.device != "cpu" else max(1, (os.cpu_count() or 1) // context.threads)
    if jobs < 1:
        raise HarnessError(f"--jobs must be a positive integer, got {jobs}")
    return InProcess(context, options.progress) if jobs == 1 else LocalPool(context, jobs)


def ray(context: WorkerContext, options: ExecutorOptions) -> Executor:
    if options.cpus_per_job < context.threads:
        raise HarnessError(f"--cpus-per-job ({options.cpus_per_job:g}) must be at least --threads-per-job "
                           f"({context.threads})")
    return RayExecutor(context, options.address, options.retries, options.cpus_per_job, options.gpus_per_job,
                       num_cpus=None if options.address else (os.cpu_count() or 1))


EXECUTORS.register("local")(local)
EXECUTORS.register("ray")(ray)


@contextlib.contextmanager
def make_executor(kind: str, context: WorkerContext, jobs: int | None = None, address: str | None = None,
                  retries: int = 0, cpus_per_job: float = 1, gpus_per_job: float = 0,
                  progress: Progress | None = None) -> Iterator[Executor]:
    """The executor registered as ``kind`` (``harness.extend.register_executor``), closed afterwards."""
    if context.threads < 1:
        raise HarnessError(f"--threads-per-job must be a positive integer, got {context.threads}")
    executor = EXECUTORS.get(kind)(context, ExecutorOptions(jobs, address, retries, cpus_per_job, gpus_per_job,
                                                            progress))
    yield executor
