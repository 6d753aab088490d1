"""Running a study: its jobs on an executor, in dependency order, each finished job in the store.

Nothing here decides what a result is: a job is ``Runner.base`` or ``Runner.retrain_group`` on the
shared results store, so a cell computed by a sweep, by ``harness run`` or on another machine of a
Ray cluster is the same folder, and a rerun finds it done. Executors:

- ``local``, in process (``workers=1``) or a pool of worker processes;
- ``ray``: every job a Ray task with its CPU/GPU needs, its dependencies passed as object refs so
  that Ray itself runs base training before cells and round r before round r + 1.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.experiment import Reporter, Runner
from harness.plan import Job
from harness.store import Store
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


@dataclass
class Outcome:
    job_id: str
    executed_epochs: float = 0.0
    seconds: float = 0.0
    cached: bool = False
    error: str | None = None
    attempts: int = 1


_RUNNERS: dict[WorkerContext, Runner] = {}


def runner_for(context: WorkerContext, reporter: Reporter | None = None) -> Runner:
    """One Runner per worker process and context, so each worker loads a data set once."""
    import torch

    torch.set_num_threads(context.threads)
    if context not in _RUNNERS:
        _RUNNERS[context] = Runner(Store(context.store), context.data_options, bf16=context.bf16)
    runner = _RUNNERS[context]
    runner.reporter = reporter or Reporter()
    return runner


def run_job(job: Job, context: WorkerContext, *upstream: Any, reporter: Reporter | None = None) -> Outcome:
    """Execute one job (``upstream``: the outcomes it waited for, unused but for ordering)."""
    runner = runner_for(context, reporter)
    before, started = runner.executed_epochs, time.time()
    if job.kind == "base":
        run = runner.base(job.base, job.rewind_epochs)
        cached = not run.trained_now
    else:
        rows = runner.retrain_group(list(job.cells))
        cached = all(r["cached"] for r in rows)
    return Outcome(job.id, runner.executed_epochs - before, time.time() - started, cached)


def describe_error(e: BaseException) -> str:
    if isinstance(e, HarnessError):
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


class InProcess(Executor):
    """Jobs run one by one in this process, with step-level progress."""

    def __init__(self, context: WorkerContext, reporter_for: Callable[[Job], Reporter] | None = None) -> None:
        self.context = context
        self.reporter_for = reporter_for
        self._done: dict[int, Outcome | BaseException] = {}

    def capacity(self, running: int) -> int:
        return 0 if running else 1

    def submit(self, job: Job, upstream: list[Any]) -> Any:
        handle = len(self._done)
        try:
            reporter = self.reporter_for(job) if self.reporter_for else None
            self._done[handle] = run_job(job, self.context, reporter=reporter)
        except Exception as e:  # reported as the job's failure; the study goes on
            self._done[handle] = e
        return handle

    def wait_any(self, handles: list[Any]) -> list[tuple[Any, Outcome | BaseException]]:
        return [(h, self._done.pop(h)) for h in handles]


class LocalPool(Executor):
    """A pool of worker processes on this machine."""

    def __init__(self, context: WorkerContext, workers: int) -> None:
        self.context = context
        self.workers = workers
        self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))

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
            elif num_cpus:
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
    import socket

    valid = "valid: the head's host:port (ray start --head prints it), ray://host:10001, or auto"
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise HarnessError(f"Ray address {address!r} has no host:port; {valid}")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        raise HarnessError(f"cannot reach the Ray cluster at {address} ({e.strerror or e}); {valid}") from None


# -- the driver -------------------------------------------------------------------------------


class Listener:
    """Hears about jobs as they start and end (the CLI draws its progress display from this)."""

    def planned(self, jobs: list[Job], cells: set[Any], pending: dict[str, float]) -> None:
        """Before anything runs: the jobs, the study's cells, each job's epochs still to train."""

    def started(self, job: Job) -> None:
        pass

    def finished(self, job: Job, outcome: Outcome) -> None:
        pass


def execute(jobs: list[Job], executor: Executor, listener: Listener, retries: int = 0,
            done: set[str] | None = None) -> dict[str, Outcome]:
    """Run ``jobs`` (listed dependencies first); ``done``: ids already complete in the store.

    A failed job is retried up to ``retries`` times; the jobs that need it are marked failed
    without running, and every other job goes on.
    """
    by_id = {j.id: j for j in jobs}
    outcomes: dict[str, Outcome] = {}
    for job_id in done or set():
        outcomes[job_id] = Outcome(job_id, cached=True, attempts=0)
        listener.finished(by_id[job_id], outcomes[job_id])
    waiting = [j for j in jobs if j.id not in outcomes]
    running: dict[Any, Job] = {}
    handle_of: dict[str, Any] = {}
    attempts: dict[str, int] = {}
    native = executor.native_dependencies

    def failed(job_id: str) -> bool:
        return job_id in outcomes and outcomes[job_id].error is not None

    try:
        while waiting or running:
            still = []
            for job in waiting:
                if any(failed(a) for a in job.after):
                    culprit = next(a for a in job.after if failed(a))
                    outcomes[job.id] = Outcome(job.id, error=f"not run: {by_id[culprit].label} failed", attempts=0)
                    listener.finished(job, outcomes[job.id])
                    continue
                ready = all(a in outcomes for a in job.after) or (
                    native and all(a in outcomes or a in handle_of for a in job.after))
                if ready and executor.capacity(len(running)) > 0:
                    upstream = [handle_of[a] for a in job.after if a in handle_of] if native else []
                    attempts[job.id] = attempts.get(job.id, 0) + 1
                    listener.started(job)
                    handle = executor.submit(job, upstream)
                    running[handle] = job
                    handle_of[job.id] = handle
                else:
                    still.append(job)
            waiting = still
            if not running:
                if waiting:  # nothing can start: a dependency outside this plan
                    raise RuntimeError(f"job {waiting[0].label} waits on jobs that are not in the plan")
                break
            for handle, result in executor.wait_any(list(running)):
                job = running.pop(handle)
                if isinstance(result, BaseException):
                    dependency = next((a for a in job.after if failed(a)), None)
                    if dependency is not None:
                        outcomes[job.id] = Outcome(job.id, error=f"not run: {by_id[dependency].label} failed",
                                                   attempts=0)
                    elif not native and attempts[job.id] <= retries:
                        handle_of.pop(job.id, None)
                        waiting.insert(0, job)
                        continue
                    else:
                        outcomes[job.id] = Outcome(job.id, error=describe_error(result), attempts=attempts[job.id])
                else:
                    result.attempts = attempts[job.id]
                    outcomes[job.id] = result
                listener.finished(job, outcomes[job.id])
    finally:
        executor.close()
    # Under Ray a cell whose dependency failed fails too, maybe before the dependency's failure is
    # seen here: name the cause, in dependency order.
    for job in jobs:
        o = outcomes.get(job.id)
        culprit = next((a for a in job.after if failed(a)), None)
        if o is not None and o.error and culprit is not None and not o.error.startswith("not run"):
            outcomes[job.id] = Outcome(job.id, error=f"not run: {by_id[culprit].label} failed", attempts=0)
    return outcomes


@contextlib.contextmanager
def make_executor(kind: str, context: WorkerContext, workers: int | None = None, address: str | None = None,
                  retries: int = 0, cpus_per_job: float = 1, gpus_per_job: float = 0,
                  reporter_for: Callable[[Job], Reporter] | None = None) -> Iterator[Executor]:
    if context.threads < 1:
        raise HarnessError(f"--threads-per-job must be a positive integer, got {context.threads}")
    if kind == "local":
        if workers is None:  # on CPU, one single-threaded worker per core; a GPU is shared by none
            workers = 1 if context.data_options.device != "cpu" else max(1, (os.cpu_count() or 1) // context.threads)
        if workers < 1:
            raise HarnessError(f"--workers must be a positive integer, got {workers}")
        yield InProcess(context, reporter_for) if workers == 1 else LocalPool(context, workers)
    elif kind == "ray":
        if cpus_per_job < context.threads:
            raise HarnessError(f"--cpus-per-job ({cpus_per_job:g}) must be at least --threads-per-job "
                               f"({context.threads})")
        yield RayExecutor(context, address, retries, cpus_per_job, gpus_per_job,
                          num_cpus=None if address else (os.cpu_count() or 1))
    else:
        raise HarnessError(f"unknown executor {kind!r}; valid: local, ray")


# -- a study, end to end ----------------------------------------------------------------------


@dataclass
class StudyReport:
    folder: Path
    cells: int
    jobs: int
    minimal_epochs: float  # the whole grid's minimum: base once per seed, shared prefixes once
    pending_epochs: float  # the minimum of what was not in the store when this run began
    executed_epochs: float
    seconds: float
    counts: dict[str, int]  # cells done (trained now), cached, failed
    failures: list[tuple[str, str]]  # (job label, error)
    rows: list[dict[str, Any]]

    @property
    def ratio(self) -> float | None:
        return self.executed_epochs / self.pending_epochs if self.pending_epochs else None


def study_folder(store: Store, study: Any) -> Path:
    return store.root / "studies" / f"{study.name}-{study.hash}"


def run_study(study: Any, store: Store, executor: Executor, listener: Listener, retries: int = 0,
              tracker: Any = None) -> StudyReport:
    """Plan a study, run what the store does not hold yet, and write its results table."""
    import csv
    import io

    from harness import store as st
    from harness.plan import is_done, pending_epochs, plan
    from harness.study import describe

    started = time.time()
    cells = study.cells()
    jobs = plan(cells)
    folder = study_folder(store, study)
    st.atomic_write_json(folder / "study.json", describe(study))
    done = {j.id for j in jobs if is_done(j, store)}
    pending_by_job = {j.id: 0.0 if j.id in done else pending_epochs(j, store) for j in jobs}
    pending = sum(pending_by_job.values())
    listener.planned(jobs, set(cells), pending_by_job)
    study_run = None
    task = None
    if tracker is not None:
        from tasks.spec import get_task

        task = get_task(study.task).resolved(study.base(0))
        study_run = tracker.start_study(folder, task, study.name, {
            "task": study.task, "cells": len(cells), "methods": ",".join(study.methods),
            "seeds": ",".join(map(str, study.seeds)), "epochs_scale": study.epochs_scale, "hash": study.hash})

    class Mirror(Listener):
        def planned(self, jobs: list[Job], cells: set[Any], pending: dict[str, float]) -> None:
            listener.planned(jobs, cells, pending)

        def started(self, job: Job) -> None:
            listener.started(job)

        def finished(self, job: Job, outcome: Outcome) -> None:
            if tracker is not None and outcome.error is None and job.kind == "cells":
                for hp in job.cells:
                    tracker.mirror_retrain(store.retrain_dir(hp), task, hp, store.base_dir(hp.base),
                                           study=(study_run, study.name) if study_run else None)
            listener.finished(job, outcome)

    outcomes = execute(jobs, executor, Mirror(), retries=retries, done=done)

    wanted = set(cells)
    counts = {"done": 0, "cached": 0, "failed": 0}
    failures = []
    for job in jobs:
        o = outcomes[job.id]
        n = sum(hp in wanted for hp in job.cells)
        counts["failed" if o.error else "cached" if o.cached else "done"] += n
        if o.error:
            failures.append((job.label, o.error))
    rows = [st.read_json(store.retrain_dir(hp) / "result.json") for hp in cells
            if (store.retrain_dir(hp) / "result.json").exists()]
    report = StudyReport(
        folder, len(cells), len(jobs), sum(j.epochs for j in jobs), pending,
        sum(o.executed_epochs for o in outcomes.values()), time.time() - started, counts, failures, rows)
    if rows:
        columns = sorted({k for r in rows for k in r if not isinstance(r[k], dict)})
        text = io.StringIO()
        writer = csv.DictWriter(text, columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        st.atomic_write_bytes(folder / "results.csv", text.getvalue().encode())
    st.atomic_write_json(folder / "summary.json", {
        "cells": report.cells, "jobs": report.jobs, "counts": counts, "failures": failures,
        "minimal_epochs": report.minimal_epochs, "pending_epochs": pending,
        "executed_epochs": report.executed_epochs, "seconds": report.seconds})
    if tracker is not None and study_run is not None:
        tracker.end_study(study_run, {"cells_failed": counts["failed"], "executed_epochs": report.executed_epochs,
                                      "minimal_epochs": report.minimal_epochs}, failed=bool(failures))
    return report
