"""Running a study: its jobs on an executor (``harness/sweep/executors.py``) in dependency order,
failures retried and reported, finished cells mirrored to MLflow, the study's tables written.

Nothing here decides what a result is, so a rerun finds every finished cell in the store."""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.errors import StoreFault
from harness.core.progress import Progress
from harness.storage import paths
from harness.storage import store as st
from harness.storage.record import CellRecord
from harness.storage.store import Store
from harness.sweep.executors import Executor, Outcome, describe_error
from harness.sweep.plan import Job, is_done, pending_epochs, plan
from harness.sweep.study import describe
from tasks.spec import get_task

# -- the driver -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepPlan:
    """What a sweep tells its ``Progress`` before anything runs (``begin``); its units are ``Job``s,
    each ``finished`` with its ``Outcome``."""

    jobs: list[Job]
    cells: set[Any]  # the study's cells (a job may also compute rounds a chain passes through)
    pending: dict[str, float]  # each job's epochs still to train


def execute(jobs: list[Job], executor: Executor, progress: Progress, retries: int = 0,
            done: set[str] | None = None) -> dict[str, Outcome]:
    """Run ``jobs`` (listed dependencies first); ``done``: ids already complete in the store.

    A failed job is retried up to ``retries`` times; the jobs that need it are marked failed
    without running, and every other job goes on.
    """
    by_id = {j.id: j for j in jobs}
    outcomes: dict[str, Outcome] = {}
    for job_id in done or set():
        outcomes[job_id] = Outcome(job_id, cached=True, attempts=0)
        progress.finished(by_id[job_id], outcomes[job_id])
    waiting = [j for j in jobs if j.id not in outcomes]
    running: dict[Any, Job] = {}
    handle_of: dict[str, Any] = {}
    attempts: dict[str, int] = {}
    native = executor.native_dependencies

    def failed(job_id: str) -> bool:
        return job_id in outcomes and outcomes[job_id].error is not None

    def blocked(job: Job) -> Outcome | None:
        """A job that needs a failed one does not run (under Ray it fails with it)."""
        culprit = next((a for a in job.after if failed(a)), None)
        return None if culprit is None else Outcome(job.id, error=f"not run: {by_id[culprit].label} failed",
                                                    attempts=0)

    try:
        while waiting or running:
            still = []
            for job in waiting:
                if (outcome := blocked(job)) is not None:
                    outcomes[job.id] = outcome
                    progress.finished(job, outcome)
                    continue
                ready = all(a in outcomes for a in job.after) or (
                    native and all(a in outcomes or a in handle_of for a in job.after))
                if ready and executor.capacity(len(running)) > 0:
                    upstream = [handle_of[a] for a in job.after if a in handle_of] if native else []
                    attempts[job.id] = attempts.get(job.id, 0) + 1
                    progress.started(job)
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
                if isinstance(result, StoreFault) and result.disk_full:
                    raise result  # every other job would fail the same way: stop, keep what is done
                if isinstance(result, BaseException):
                    if not native and attempts[job.id] <= retries:
                        handle_of.pop(job.id, None)
                        waiting.insert(0, job)
                        continue
                    result = blocked(job) or Outcome(job.id, error=describe_error(result), attempts=attempts[job.id])
                else:
                    result.attempts = attempts[job.id]
                outcomes[job.id] = result
                progress.finished(job, result)
    except KeyboardInterrupt:  # stopped (harness.core.signals): do not wait on the running jobs
        executor.abort()
        raise
    finally:
        executor.close()
    # Under Ray a dependent may fail before its dependency's failure is seen here: name the cause.
    for job in jobs:
        if outcomes[job.id].error and not outcomes[job.id].error.startswith("not run"):
            outcomes[job.id] = blocked(job) or outcomes[job.id]
    return outcomes


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
    rows: list[CellRecord]
    figures: list[Path]  # accuracy against compression, next to results.csv
    tracker: Any = None  # the MLflow mirror the cells went to, if any

    @property
    def ratio(self) -> float | None:
        return self.executed_epochs / self.pending_epochs if self.pending_epochs else None


def study_folder(store: Store, study: Any) -> Path:
    return paths.study(store.root, study.name, study.hash)


def run_study(study: Any, store: Store, executor: Executor, progress: Progress, retries: int = 0,
              tracker: Any = None) -> StudyReport:
    """Plan a study, run what the store does not hold yet, and write its results table."""


    started = time.time()
    cells = study.cells()
    jobs = plan(cells)
    folder = study_folder(store, study)
    st.atomic_write_json(folder / paths.STUDY, describe(study))
    done = {j.id for j in jobs if is_done(j, store)}
    pending_by_job = {j.id: 0.0 if j.id in done else pending_epochs(j, store) for j in jobs}
    pending = sum(pending_by_job.values())
    study_run = None
    task = None
    if tracker is not None:
        task = get_task(study.task).resolved(study.base(0))
        study_run = tracker.start_study(folder, task, study.name, {
            "task": study.task, "cells": len(cells), "methods": ",".join(study.methods),
            "seeds": ",".join(map(str, study.seeds)), "epochs_scale": study.epochs_scale,
            "batch_size": study.batch_size, "hash": study.hash})

    class Mirror(Progress):
        """The caller's progress, and each finished cell mirrored to MLflow."""

        def started(self, job: Job, total_steps: int = 0) -> None:
            progress.started(job, total_steps)

        def finished(self, job: Job, outcome: Any = None) -> None:
            if tracker is not None and outcome.error is None and job.kind == "cells":
                for hp in job.cells:
                    tracker.mirror_retrain(store.retrain_dir(hp), task, hp, store.base_dir(hp.base),
                                           study=(study_run, study.name) if study_run else None)
            progress.finished(job, outcome)

    progress.begin(SweepPlan(jobs, set(cells), pending_by_job))
    try:
        outcomes = execute(jobs, executor, Mirror(), retries=retries, done=done)
    finally:
        progress.end()

    wanted = set(cells)
    counts = {"done": 0, "cached": 0, "failed": 0}
    failures = []
    for job in jobs:
        o = outcomes[job.id]
        n = sum(hp in wanted for hp in job.cells)
        counts["failed" if o.error else "cached" if o.cached else "done"] += n
        if o.error:
            failures.append((job.label, o.error))
    rows = [r for hp in cells if (r := store.cell_result(hp)) is not None]
    # start-up: pandas and matplotlib load only when a study has rows to plot, not with `harness --help`
    from harness.analysis.results_table import from_records
    from leaderboard.plots import study_compression_pngs

    figures = study_compression_pngs(from_records(rows), folder) if rows else []
    report = StudyReport(
        folder, len(cells), len(jobs), sum(j.epochs for j in jobs), pending,
        sum(o.executed_epochs for o in outcomes.values()), time.time() - started, counts, failures, rows, figures,
        tracker)
    if rows:
        text = io.StringIO()
        writer = csv.DictWriter(text, list(rows[0].row()), lineterminator="\n")
        writer.writeheader()
        writer.writerows(r.row() for r in rows)
        st.atomic_write_bytes(folder / paths.RESULTS_CSV, text.getvalue().encode())
    st.atomic_write_json(folder / paths.SUMMARY, {
        "cells": report.cells, "jobs": report.jobs, "counts": counts, "failures": failures,
        "minimal_epochs": report.minimal_epochs, "pending_epochs": pending,
        "executed_epochs": report.executed_epochs, "seconds": report.seconds})
    if tracker is not None and study_run is not None:
        tracker.end_study(study_run, {"cells_failed": counts["failed"], "executed_epochs": report.executed_epochs,
                                      "minimal_epochs": report.minimal_epochs}, failed=bool(failures))
    return report
