"""A study's cells as a graph of jobs: base training per seed, then cells, round r after r - 1.

A job is the unit an executor runs: the base network of one (task, seed) with every rewind point
the study needs, or a group of cells that one training run serves (the retraining times of a
prefix-sharing method), or a single cell. The minimal training epochs of a study is the sum of its
jobs' epochs: base training once per seed, each shared prefix once, every other cell's epochs.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any

from harness.core.canonical import content_hash
from harness.core.hparams import BaseHparams, RetrainHparams
from harness.engine.checkpoints import base_checkpoint_steps
from harness.engine.gate import check_cell
from harness.storage.paths import RESULT
from harness.storage.store import Store, intact_result
from methods.spec import get_method
from tasks.spec import get_task


@dataclass(frozen=True)
class Job:
    kind: str  # "base" or "cells"
    base: BaseHparams
    cells: tuple[RetrainHparams, ...] = ()  # one training run for all of them (sorted by t)
    rewind_epochs: tuple[float, ...] = ()  # base jobs: the W_g the study rewinds to
    after: tuple[str, ...] = ()  # ids of the jobs this one needs
    epochs: float = 0.0  # training epochs of the job's run
    T: float = 0.0  # epochs of the task's (resolved) schedule

    @property
    def id(self) -> str:
        return content_hash(self.cells or self.base)

    @property
    def label(self) -> str:
        if self.kind == "base":
            return f"base {self.base.task} seed {self.base.seed}"
        hp = self.cells[-1]
        times = ",".join(f"{c.retrain_epochs:g}" for c in self.cells)
        return f"{hp.method_label} {hp.label} r{hp.round} t={times} s{hp.base.seed}"


def epochs_of(hp: RetrainHparams, T: float) -> float:
    return get_method(hp.method).epochs(T, hp.retrain_epochs)


def with_dependencies(cells: list[RetrainHparams]) -> list[RetrainHparams]:
    """The cells and every earlier round their iterative chains pass through."""
    seen: dict[RetrainHparams, None] = {}
    for hp in cells:
        chain = []
        while hp is not None and hp not in seen:
            chain.append(hp)
            hp = hp.previous()
        for c in reversed(chain):
            seen[c] = None
    return list(seen)


def plan(cells: list[RetrainHparams]) -> list[Job]:
    """Jobs in an order that respects their dependencies (a one-shot cell and the first round of an
    iterative chain to the same density are one computation, computed once)."""
    declared = list(dict.fromkeys(with_dependencies(cells)))
    for hp in declared:  # as declared: an iterative first round is checked as iterative
        check_cell(hp, "densities")
    every = list(dict.fromkeys(hp.computation for hp in declared))
    T_of = {b: get_task(b.task).resolved(b).epochs for b in {hp.base for hp in every}}

    rewinds: dict[BaseHparams, set[float]] = defaultdict(set)
    groups: dict[Any, list[RetrainHparams]] = defaultdict(list)
    for hp in every:
        method = get_method(hp.method)
        T = T_of[hp.base]
        if (g := method.rewind_epoch(T, hp.retrain_epochs)) is not None:
            rewinds[hp.base].add(g)
        shared = hp.round == 1 and method.shares_prefix(T)
        groups[replace(hp, retrain_epochs=0.0) if shared else hp].append(hp)

    jobs = [Job("base", b, rewind_epochs=tuple(sorted(rewinds[b])), epochs=T_of[b], T=T_of[b]) for b in sorted(
        T_of, key=lambda b: (b.task, b.seed))]
    base_id = {job.base: job.id for job in jobs}
    members_of = [sorted(m, key=lambda h: h.retrain_epochs) for m in groups.values()]
    job_of = {hp: content_hash(tuple(members)) for members in members_of for hp in members}
    cell_jobs = []
    for members in members_of:
        last = members[-1]
        previous = last.previous()
        after = (base_id[last.base],) + (() if previous is None else (job_of[previous],))
        cell_jobs.append(Job("cells", last.base, cells=tuple(members), after=after,
                             epochs=epochs_of(last, T_of[last.base]), T=T_of[last.base]))
    cell_jobs.sort(key=lambda j: (j.cells[-1].round, j.base.seed))
    return jobs + cell_jobs


def is_done(job: Job, store: Store) -> bool:
    """Whether a job's results are all in the store (a base job: its result and checkpoints)."""
    if job.kind == "cells":
        return all(store.cell_result(hp) is not None for hp in job.cells)
    result = intact_result(store.base_dir(job.base) / RESULT)
    if result is None or "steps_per_epoch" not in result:  # none yet, damaged, or from before sweeps
        return False
    steps = base_checkpoint_steps(job.T, result["steps_per_epoch"], job.rewind_epochs)
    return not store.base_progress(job.base, steps)[1]


def pending_epochs(job: Job, store: Store) -> float:
    """The epochs a job that is not done still has to train: a base job all of them, a group of
    cells the longest of its cells without a result."""
    todo = [hp for hp in job.cells if store.cell_result(hp) is None]
    return epochs_of(todo[-1], job.T) if todo else job.epochs if job.kind == "base" else 0.0


def summary(jobs: list[Job], store: Store) -> list[dict[str, Any]]:
    """What a plan holds, by the base networks and by method: jobs, cells, training epochs, and how
    much of it the store already holds."""
    groups: dict[str, dict[str, Any]] = {}
    for job in jobs:
        name = "base networks" if job.kind == "base" else job.cells[-1].method_label
        done = is_done(job, store)
        group = groups.setdefault(name, {"group": name, "jobs": 0, "cells": 0, "epochs": 0.0, "cached_jobs": 0,
                                         "epochs_to_train": 0.0})
        group["jobs"] += 1
        group["cells"] += len(job.cells)
        group["epochs"] += job.epochs
        group["cached_jobs"] += done
        group["epochs_to_train"] += 0.0 if done else pending_epochs(job, store)
    return list(groups.values())
